"""An optional heartbeat to an external monitor (NOTIFY_HEARTBEAT_URL): a dead notifier is noticed by its silence."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import httpx

from services.notify.metrics import HEARTBEAT_FAILURES

log = logging.getLogger(__name__)


async def heartbeat(url: str, interval: float, healthy: Callable[[], Awaitable[bool]]) -> None:
    """GETs `url` every `interval` seconds while the service is healthy (Postgres answers); silence means trouble."""
    async with httpx.AsyncClient(timeout=10.0) as client:
        while True:
            try:
                if await healthy():
                    response = await client.get(url)
                    if response.status_code >= 400:
                        HEARTBEAT_FAILURES.inc()
                        log.warning("heartbeat answered HTTP %s", response.status_code)
            except httpx.HTTPError as exc:
                HEARTBEAT_FAILURES.inc()
                log.warning("heartbeat failed: %r", exc)
            await asyncio.sleep(interval)
