"""Waiting with a time limit without losing a cancellation (Python 3.11).

`asyncio.wait_for` on Python 3.11 swallows a cancellation that arrives in the same loop
iteration as the awaited thing finishing (CPython gh-86296, fixed in 3.12 by rebuilding it on
`asyncio.timeout`). A background loop waiting with it — `wait_for(wake.wait(), 0.2)` — then
keeps running after `task.cancel()`, and a service's shutdown waits for it forever: that hung
the test suite once (the outbox relay woken by a NOTIFY just as the runtime stopped).

`within` is the same wait built on `asyncio.wait`, which never swallows the caller's
cancellation; `wait_event` waits for an event under `asyncio.timeout`, which counts cancellations
and re-raises the one it did not cause. ruff bans `asyncio.wait_for` (TID251) so the bug cannot
come back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def within(awaitable: Awaitable[T], seconds: float | None) -> T:
    """`await awaitable`, raising TimeoutError after `seconds` (None: no limit); cancellation always passes.

    Like `wait_for`, the awaitable runs as its own task and is cancelled (and waited for) when the
    time is up, so library code that is not written for a cancellation landing in its caller's
    task (aiokafka's connection set-up is one) sees exactly what it saw before. Unlike it, a
    cancellation of the caller is never traded for the inner result.
    """
    inner = asyncio.ensure_future(awaitable)
    try:
        done, _ = await asyncio.wait((inner,), timeout=seconds)
    except asyncio.CancelledError:
        inner.cancel()
        await _settle(inner)
        raise
    if done:
        return inner.result()
    inner.cancel()
    await _settle(inner)
    if inner.cancelled():
        raise TimeoutError(f"not done within {seconds:g} s")
    return inner.result()  # it finished (or failed) while being cancelled: that outcome stands


async def _settle(task: asyncio.Future[T]) -> None:
    """Waits until a cancelled task has unwound, and marks its outcome as seen."""
    await asyncio.wait((task,))
    if not task.cancelled():
        task.exception()


async def wait_event(event: asyncio.Event, seconds: float) -> bool:
    """Waits until `event` is set or `seconds` pass; True if it was set. Cancellation always passes."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return event.is_set()
    return True
