"""A feed of alert changes from Postgres NOTIFY, for pages that show alerts live (the console, by SSE)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import asyncpg

from shared.aio import within
from shared.db import connection_alive


async def alert_changes(pool: asyncpg.Pool, schema: str, idle: float = 15.0) -> AsyncIterator[uuid.UUID | None]:
    """Yields the id of each alert that changed (raised, delivered to, acknowledged, escalated, resolved).

    Yields None after `idle` quiet seconds, so a caller can send a keep-alive; NOTIFY is a hint,
    so a caller that must not miss anything re-reads the list on reconnect.
    """
    queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=10_000)

    def on_notify(_conn: object, _pid: int, _channel: str, payload: object) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            queue.put_nowait(str(payload))

    def on_lost(*_: object) -> None:
        # The connection dropped (a restart, a terminated backend): without this the feed would wait
        # for notifications that can no longer come, and every console would go quiet for good.
        with contextlib.suppress(asyncio.QueueFull):
            queue.put_nowait(None)

    channel = f"notify_alerts_{schema}"
    conn = await pool.acquire()
    try:
        await conn.add_listener(channel, on_notify)
        conn.add_termination_listener(on_lost)
        while True:
            try:
                payload = await within(queue.get(), idle)
            except TimeoutError:
                if not connection_alive(conn):
                    raise asyncpg.exceptions.ConnectionDoesNotExistError("the LISTEN connection was lost") from None
                yield None
                continue
            if payload is None:
                raise asyncpg.exceptions.ConnectionDoesNotExistError("the LISTEN connection was lost")
            with contextlib.suppress(ValueError):
                yield uuid.UUID(payload)
    finally:
        if connection_alive(conn):
            with contextlib.suppress(Exception):
                conn.remove_termination_listener(on_lost)
                await conn.remove_listener(channel, on_notify)
        # A no-op for a connection the pool already took back when it dropped.
        await pool.release(conn)
