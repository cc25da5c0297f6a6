"""Inbox: remembers which events a consumer applied, in the same transaction as the effect."""

from __future__ import annotations

import uuid

from shared.db import Conn


async def claim(conn: Conn, consumer: str, event_id: uuid.UUID) -> bool:
    """True the first time `consumer` sees `event_id`; False for a redelivery (apply nothing then)."""
    if not conn.is_in_transaction():
        raise RuntimeError("inbox.claim must run inside the transaction that applies the effect")
    status = await conn.execute(
        "INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        consumer,
        event_id,
    )
    return bool(status == "INSERT 0 1")
