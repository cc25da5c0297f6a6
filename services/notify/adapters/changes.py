"""A feed of alert changes from Postgres NOTIFY, for pages that show alerts live (the console, by SSE)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import asyncpg

from shared.aio import within


async def alert_changes(pool: asyncpg.Pool, schema: str, idle: float = 15.0) -> AsyncIterator[uuid.UUID | None]:
    """Yields the id of each alert that changed (raised, delivered to, acknowledged, escalated, resolved).

    Yields None after `idle` quiet seconds, so a caller can send a keep-alive; NOTIFY is a hint,
    so a caller that must not miss anything re-reads the list on reconnect.
    """
    queue: asyncio.Queue[str] = asyncio.Queue(maxsize=10_000)

    def on_notify(_conn: object, _pid: int, _channel: str, payload: object) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            queue.put_nowait(str(payload))

    channel = f"notify_alerts_{schema}"
    conn = await pool.acquire()
    try:
        await conn.add_listener(channel, on_notify)
        while True:
            try:
                payload = await within(queue.get(), idle)
            except TimeoutError:
                yield None
                continue
            with contextlib.suppress(ValueError):
                yield uuid.UUID(payload)
    finally:
        with contextlib.suppress(Exception):
            await conn.remove_listener(channel, on_notify)
        await pool.release(conn)
