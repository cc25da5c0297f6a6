"""The council deliveries' tables (migrations/0007): planning, leases, and the record of what was sent to whom.

Two durable queues on one timer: `council_deliveries` (one row per plan entry and period: rendered
once when due) and `council_delivery_sends` (one row per recipient: sent once). Rows are claimed under
a lease set and judged by Postgres's clock (clock_timestamp()), committed at once; the work (rendering,
the SMTP conversation) happens with no transaction open; every result is written only by the lease's
holder. Due times are on the service's clock (corrected to Postgres's, shared/runtime.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import asyncpg
from asyncpg import Record

from shared.db import Conn

# Rows rebuild carries from the live schema into the rebuilt one (services/reporting/entrypoints/cli.py):
# they record what was sent, and are not derived from the topics. Parents first.
DELIVERY_TABLES = ("council_deliveries", "council_delivery_sends")

DeliveryKey = tuple[str, str]  # entry id, period
SendKey = tuple[str, str, str]  # entry id, period, recipient


@dataclass(frozen=True, slots=True)
class PlannedRow:
    entry_id: str
    period: str
    scope: str
    focus_area: str | None
    due_at: datetime


@dataclass(frozen=True, slots=True)
class RenderJob:
    entry_id: str
    period: str
    attempts: int  # this try included

    @property
    def key(self) -> DeliveryKey:
        return (self.entry_id, self.period)


@dataclass(frozen=True, slots=True)
class Rendered:
    """What every recipient of one delivery gets: the same PDF and text on every try."""

    filename: str
    subject: str
    body: str
    pdf: bytes
    pdf_sha256: str
    rendered_at: datetime


@dataclass(frozen=True, slots=True)
class SendJob:
    entry_id: str
    period: str
    recipient: str
    message_id: str
    attempts: int  # this try included
    # A try before this one reached DATA and its answer was not recorded: the server may have the
    # message already, and this try is a repeat under the same Message-ID.
    in_doubt: bool
    filename: str
    subject: str
    body: str
    pdf: bytes
    composed_at: datetime

    @property
    def key(self) -> SendKey:
        return (self.entry_id, self.period, self.recipient)


# --- planning ---


async def plan(conn: Conn, rows: Sequence[PlannedRow], now: datetime) -> int:
    """Puts the rows on the timer; a row already there keeps its state, and moves only while untouched
    (the plan's schedule changed before it fired). Returns how many are new."""
    if not rows:
        return 0
    status = await conn.fetch(
        """
        INSERT INTO council_deliveries AS d (entry_id, period, scope, focus_area, due_at, next_attempt_at, planned_at)
        SELECT r.entry_id, r.period, r.scope, r.focus_area, r.due_at, r.due_at, $6
        FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
             AS r(entry_id, period, scope, focus_area, due_at)
        ON CONFLICT (entry_id, period) DO UPDATE SET due_at = EXCLUDED.due_at, next_attempt_at = EXCLUDED.due_at
            WHERE d.state = 'scheduled' AND d.attempts = 0 AND d.due_at IS DISTINCT FROM EXCLUDED.due_at
        RETURNING (xmax = 0) AS inserted
        """,
        [r.entry_id for r in rows],
        [r.period for r in rows],
        [r.scope for r in rows],
        [r.focus_area for r in rows],
        [r.due_at for r in rows],
        now,
    )
    return sum(1 for r in status if r["inserted"])


async def planned_periods(conn: Conn) -> dict[str, list[str]]:
    """The periods planned so far, per entry id."""
    found: dict[str, list[str]] = {}
    for row in await conn.fetch("SELECT entry_id, period FROM council_deliveries"):
        found.setdefault(row["entry_id"], []).append(row["period"])
    return found


# --- rendering ---

_CLAIM_RENDERS = """
WITH due AS (
    SELECT entry_id, period FROM council_deliveries
    WHERE state = 'scheduled' AND next_attempt_at <= $1 AND (lease_until IS NULL OR lease_until < clock_timestamp())
    ORDER BY next_attempt_at LIMIT $4 FOR UPDATE SKIP LOCKED
)
UPDATE council_deliveries d SET lease_owner = $2, lease_until = clock_timestamp() + $3::interval,
    attempts = d.attempts + 1
FROM due WHERE d.entry_id = due.entry_id AND d.period = due.period
RETURNING d.entry_id, d.period, d.attempts
"""


async def claim_renders(conn: Conn, now: datetime, owner: str, lease: timedelta, limit: int) -> list[RenderJob]:
    rows = await conn.fetch(_CLAIM_RENDERS, now, owner, lease, limit)
    return [RenderJob(r["entry_id"], r["period"], r["attempts"]) for r in rows]


async def rendered(
    conn: Conn, key: DeliveryKey, owner: str, document: Rendered, sends: Sequence[tuple[str, str]], now: datetime
) -> bool:
    """Stores the document and writes a send row per (recipient, Message-ID), if `owner` still holds the row."""
    status = await conn.execute(
        "UPDATE council_deliveries SET state = 'rendered', rendered_at = $4, filename = $5, subject = $6, body = $7,"
        " pdf = $8, pdf_sha256 = $9, lease_owner = NULL, lease_until = NULL, last_error = NULL"
        " WHERE entry_id = $1 AND period = $2 AND lease_owner = $3 AND state = 'scheduled'",
        *key, owner, document.rendered_at, document.filename, document.subject, document.body, document.pdf,
        document.pdf_sha256,
    )  # fmt: skip
    if status != "UPDATE 1":
        return False
    await _add_sends(conn, key, sends, now, state="pending")
    return True


async def _add_sends(
    conn: Conn, key: DeliveryKey, sends: Sequence[tuple[str, str]], now: datetime, *, state: str,
    error: str | None = None,
) -> None:  # fmt: skip
    await conn.execute(
        "INSERT INTO council_delivery_sends (entry_id, period, recipient, message_id, state, created_at,"
        " next_attempt_at, failed_at, last_error)"
        " SELECT $1, $2, s.recipient, s.message_id, $5::text, $6::timestamptz, $6::timestamptz,"
        " CASE WHEN $5::text = 'failed' THEN $6::timestamptz END, $7::text"
        " FROM unnest($3::text[], $4::text[]) AS s(recipient, message_id)"
        " ON CONFLICT DO NOTHING",
        *key, [r for r, _ in sends], [m for _, m in sends], state, now, error,
    )  # fmt: skip


async def render_retry(conn: Conn, key: DeliveryKey, owner: str, error: str, at: datetime) -> bool:
    status = await conn.execute(
        "UPDATE council_deliveries SET next_attempt_at = $4, last_error = $5, lease_owner = NULL, lease_until = NULL"
        " WHERE entry_id = $1 AND period = $2 AND lease_owner = $3 AND state = 'scheduled'",
        *key, owner, at, error,
    )  # fmt: skip
    return bool(status == "UPDATE 1")


async def render_failed(
    conn: Conn, key: DeliveryKey, owner: str, error: str, sends: Sequence[tuple[str, str]], now: datetime
) -> bool:
    """No report could be made: the delivery and a row per recipient are failed, with the reason."""
    status = await conn.execute(
        "UPDATE council_deliveries SET state = 'failed', last_error = $4, lease_owner = NULL, lease_until = NULL"
        " WHERE entry_id = $1 AND period = $2 AND lease_owner = $3 AND state = 'scheduled'",
        *key, owner, error,
    )  # fmt: skip
    if status != "UPDATE 1":
        return False
    await _add_sends(conn, key, sends, now, state="failed", error=f"the report could not be made: {error}"[:500])
    return True


async def cancel(conn: Conn, key: DeliveryKey, owner: str, reason: str) -> bool:
    status = await conn.execute(
        "UPDATE council_deliveries SET state = 'cancelled', last_error = $4, lease_owner = NULL, lease_until = NULL"
        " WHERE entry_id = $1 AND period = $2 AND lease_owner = $3 AND state = 'scheduled'",
        *key, owner, reason,
    )  # fmt: skip
    return bool(status == "UPDATE 1")


# --- sending ---

_CLAIM_SENDS = """
WITH due AS (
    SELECT entry_id, period, recipient FROM council_delivery_sends
    WHERE state = 'pending' AND next_attempt_at <= $1 AND (lease_until IS NULL OR lease_until < clock_timestamp())
    ORDER BY next_attempt_at LIMIT $4 FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE council_delivery_sends s SET lease_owner = $2, lease_until = clock_timestamp() + $3::interval,
        attempts = s.attempts + 1
    FROM due WHERE s.entry_id = due.entry_id AND s.period = due.period AND s.recipient = due.recipient
    RETURNING s.entry_id, s.period, s.recipient, s.message_id, s.attempts, s.data_started_at
)
SELECT c.*, d.filename, d.subject, d.body, d.pdf, d.rendered_at
FROM claimed c JOIN council_deliveries d ON d.entry_id = c.entry_id AND d.period = c.period
"""


async def claim_sends(conn: Conn, now: datetime, owner: str, lease: timedelta, limit: int) -> list[SendJob]:
    rows = await conn.fetch(_CLAIM_SENDS, now, owner, lease, limit)
    return [_send_job(r) for r in rows]


def _send_job(r: Record) -> SendJob:
    return SendJob(
        entry_id=r["entry_id"], period=r["period"], recipient=r["recipient"], message_id=r["message_id"],
        attempts=r["attempts"], in_doubt=r["data_started_at"] is not None, filename=r["filename"],
        subject=r["subject"], body=r["body"], pdf=bytes(r["pdf"]), composed_at=r["rendered_at"],
    )  # fmt: skip


async def data_starting(conn: Conn, key: SendKey, owner: str, lease: timedelta, now: datetime) -> bool:
    """Records, before the message itself goes, that the server may have it from now on; renews the lease.

    False when `owner` no longer holds a live lease on the row (another instance took it over): the
    message must then not be sent by this one.
    """
    status = await conn.execute(
        "UPDATE council_delivery_sends SET data_started_at = $5,"
        " in_doubt_resends = in_doubt_resends + (data_started_at IS NOT NULL)::int,"
        " lease_until = clock_timestamp() + $4::interval"
        " WHERE entry_id = $1 AND period = $2 AND recipient = $3 AND lease_owner = $6 AND state = 'pending'"
        " AND lease_until > clock_timestamp()",
        *key, lease, now, owner,
    )  # fmt: skip
    return bool(status == "UPDATE 1")


async def sent(conn: Conn, key: SendKey, owner: str, now: datetime, reply: str) -> bool:
    status = await conn.execute(
        "UPDATE council_delivery_sends SET state = 'sent', sent_at = $5, smtp_reply = $6, last_error = NULL,"
        " lease_owner = NULL, lease_until = NULL"
        " WHERE entry_id = $1 AND period = $2 AND recipient = $3 AND lease_owner = $4 AND state = 'pending'",
        *key, owner, now, reply,
    )  # fmt: skip
    return bool(status == "UPDATE 1")


async def send_retry(conn: Conn, key: SendKey, owner: str, error: str, at: datetime) -> bool:
    status = await conn.execute(
        "UPDATE council_delivery_sends SET next_attempt_at = $5, last_error = $6, lease_owner = NULL,"
        " lease_until = NULL"
        " WHERE entry_id = $1 AND period = $2 AND recipient = $3 AND lease_owner = $4 AND state = 'pending'",
        *key, owner, at, error,
    )  # fmt: skip
    return bool(status == "UPDATE 1")


async def send_failed(conn: Conn, key: SendKey, owner: str, error: str, now: datetime) -> bool:
    status = await conn.execute(
        "UPDATE council_delivery_sends SET state = 'failed', failed_at = $5, last_error = $6, lease_owner = NULL,"
        " lease_until = NULL"
        " WHERE entry_id = $1 AND period = $2 AND recipient = $3 AND lease_owner = $4 AND state = 'pending'",
        *key, owner, now, error,
    )  # fmt: skip
    return bool(status == "UPDATE 1")


async def hand_back(conn: Conn, key: SendKey, owner: str) -> bool:
    """A send claimed but not started (too little lease left): for the next round; the claim is no attempt."""
    status = await conn.execute(
        "UPDATE council_delivery_sends SET lease_owner = NULL, lease_until = NULL, attempts = attempts - 1"
        " WHERE entry_id = $1 AND period = $2 AND recipient = $3 AND lease_owner = $4 AND state = 'pending'",
        *key, owner,
    )  # fmt: skip
    return bool(status == "UPDATE 1")


# --- leases and the timer ---


async def renew(
    conn: Conn, renders: Sequence[DeliveryKey], sends: Sequence[SendKey], owner: str, lease: timedelta
) -> None:
    """Extends the leases `owner` still holds on rows it is rendering or sending (rows being recorded are skipped)."""
    if renders:
        await conn.execute(
            "WITH held AS (SELECT entry_id, period FROM council_deliveries"
            " WHERE (entry_id, period) IN (SELECT * FROM unnest($1::text[], $2::text[]))"
            " AND lease_owner = $3 AND state = 'scheduled' FOR UPDATE SKIP LOCKED)"
            " UPDATE council_deliveries d SET lease_until = clock_timestamp() + $4::interval FROM held"
            " WHERE d.entry_id = held.entry_id AND d.period = held.period",
            [k[0] for k in renders], [k[1] for k in renders], owner, lease,
        )  # fmt: skip
    if sends:
        await conn.execute(
            "WITH held AS (SELECT entry_id, period, recipient FROM council_delivery_sends"
            " WHERE (entry_id, period, recipient) IN (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]))"
            " AND lease_owner = $4 AND state = 'pending' FOR UPDATE SKIP LOCKED)"
            " UPDATE council_delivery_sends s SET lease_until = clock_timestamp() + $5::interval FROM held"
            " WHERE s.entry_id = held.entry_id AND s.period = held.period AND s.recipient = held.recipient",
            [k[0] for k in sends], [k[1] for k in sends], [k[2] for k in sends], owner, lease,
        )  # fmt: skip


async def next_due(conn: Conn) -> datetime | None:
    value: datetime | None = await conn.fetchval(
        "SELECT min(t) FROM ("
        " SELECT min(greatest(next_attempt_at, coalesce(lease_until, next_attempt_at))) AS t"
        " FROM council_deliveries WHERE state = 'scheduled'"
        " UNION ALL"
        " SELECT min(greatest(next_attempt_at, coalesce(lease_until, next_attempt_at)))"
        " FROM council_delivery_sends WHERE state = 'pending') AS due"
    )
    return value


async def records(conn: Conn, *, limit: int = 200) -> list[dict[str, object]]:
    """The newest send records, with their delivery's due time: what was sent to whom, and when."""
    rows = await conn.fetch(
        "SELECT s.entry_id, s.period, s.recipient, s.state, s.message_id, s.attempts, s.in_doubt_resends,"
        " s.sent_at, s.failed_at, s.last_error, d.due_at, d.filename"
        " FROM council_delivery_sends s JOIN council_deliveries d USING (entry_id, period)"
        " ORDER BY d.due_at DESC, s.entry_id, s.recipient LIMIT $1",
        limit,
    )
    return [dict(r) for r in rows]


class DeliveryStore(Protocol):
    """The delivery tables as the worker (entrypoints/deliveries.py) uses them; each call is its own transaction.

    Every write that takes an `owner` changes a row only while that owner holds it (its lease), and
    says whether it did.
    """

    async def planned_periods(self) -> dict[str, list[str]]: ...

    async def plan(self, rows: Sequence[PlannedRow], now: datetime) -> int: ...

    async def claim_renders(self, now: datetime, owner: str, lease: timedelta, limit: int) -> list[RenderJob]: ...

    async def rendered(self, key: DeliveryKey, owner: str, document: Rendered, sends: Sequence[tuple[str, str]],
                       now: datetime) -> bool: ...  # fmt: skip

    async def render_retry(self, key: DeliveryKey, owner: str, error: str, at: datetime) -> bool: ...

    async def render_failed(self, key: DeliveryKey, owner: str, error: str, sends: Sequence[tuple[str, str]],
                            now: datetime) -> bool: ...  # fmt: skip

    async def cancel(self, key: DeliveryKey, owner: str, reason: str) -> bool: ...

    async def claim_sends(self, now: datetime, owner: str, lease: timedelta, limit: int) -> list[SendJob]: ...

    async def data_starting(self, key: SendKey, owner: str, lease: timedelta, now: datetime) -> bool: ...

    async def sent(self, key: SendKey, owner: str, now: datetime, reply: str) -> bool: ...

    async def send_retry(self, key: SendKey, owner: str, error: str, at: datetime) -> bool: ...

    async def send_failed(self, key: SendKey, owner: str, error: str, now: datetime) -> bool: ...

    async def hand_back(self, key: SendKey, owner: str) -> bool: ...

    async def renew(self, renders: Sequence[DeliveryKey], sends: Sequence[SendKey], owner: str,
                    lease: timedelta) -> None: ...  # fmt: skip

    async def next_due(self) -> datetime | None: ...


class PostgresDeliveryStore:
    """The DeliveryStore on a pool: each call on a connection of its own, in a transaction of its own."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def planned_periods(self) -> dict[str, list[str]]:
        async with self._pool.acquire() as conn:
            return await planned_periods(conn)

    async def plan(self, rows: Sequence[PlannedRow], now: datetime) -> int:
        async with self._pool.acquire() as conn:
            return await plan(conn, rows, now)

    async def claim_renders(self, now: datetime, owner: str, lease: timedelta, limit: int) -> list[RenderJob]:
        async with self._pool.acquire() as conn:
            return await claim_renders(conn, now, owner, lease, limit)

    async def rendered(self, key: DeliveryKey, owner: str, document: Rendered, sends: Sequence[tuple[str, str]],
                       now: datetime) -> bool:  # fmt: skip
        async with self._pool.acquire() as conn, conn.transaction():
            return await rendered(conn, key, owner, document, sends, now)

    async def render_retry(self, key: DeliveryKey, owner: str, error: str, at: datetime) -> bool:
        async with self._pool.acquire() as conn:
            return await render_retry(conn, key, owner, error, at)

    async def render_failed(self, key: DeliveryKey, owner: str, error: str, sends: Sequence[tuple[str, str]],
                            now: datetime) -> bool:  # fmt: skip
        async with self._pool.acquire() as conn, conn.transaction():
            return await render_failed(conn, key, owner, error, sends, now)

    async def cancel(self, key: DeliveryKey, owner: str, reason: str) -> bool:
        async with self._pool.acquire() as conn:
            return await cancel(conn, key, owner, reason)

    async def claim_sends(self, now: datetime, owner: str, lease: timedelta, limit: int) -> list[SendJob]:
        async with self._pool.acquire() as conn:
            return await claim_sends(conn, now, owner, lease, limit)

    async def data_starting(self, key: SendKey, owner: str, lease: timedelta, now: datetime) -> bool:
        async with self._pool.acquire() as conn:
            return await data_starting(conn, key, owner, lease, now)

    async def sent(self, key: SendKey, owner: str, now: datetime, reply: str) -> bool:
        async with self._pool.acquire() as conn:
            return await sent(conn, key, owner, now, reply)

    async def send_retry(self, key: SendKey, owner: str, error: str, at: datetime) -> bool:
        async with self._pool.acquire() as conn:
            return await send_retry(conn, key, owner, error, at)

    async def send_failed(self, key: SendKey, owner: str, error: str, now: datetime) -> bool:
        async with self._pool.acquire() as conn:
            return await send_failed(conn, key, owner, error, now)

    async def hand_back(self, key: SendKey, owner: str) -> bool:
        async with self._pool.acquire() as conn:
            return await hand_back(conn, key, owner)

    async def renew(self, renders: Sequence[DeliveryKey], sends: Sequence[SendKey], owner: str,
                    lease: timedelta) -> None:  # fmt: skip
        async with self._pool.acquire() as conn:
            await renew(conn, renders, sends, owner, lease)

    async def next_due(self) -> datetime | None:
        async with self._pool.acquire() as conn:
            return await next_due(conn)
