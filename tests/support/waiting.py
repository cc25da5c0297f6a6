"""Waiting for something to become true, without fixed sleeps in assertions."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable


async def eventually(
    predicate: Callable[[], object],
    *,
    timeout: float = 30.0,
    step: float = 0.2,
    what: str = "",
) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if loop.time() >= end:
            raise AssertionError(f"not within {timeout}s: {what or predicate}")
        await asyncio.sleep(step)
