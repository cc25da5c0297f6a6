"""Postgres storage of notify: alerts, deliveries, audit trail, case references; SQL and row mapping only.

`PostgresNotifyRepository` is the use cases' `NotifyRepository` (handlers.py) on one connection;
each of its calls is written here once, as the fake of tests/unit/notify/fakes.py writes it once in
memory (tests/support/contracts proves them equal). The module functions take the caller's
connection: the delivery worker's claims and leases, the read queries of the API, the console and
the gauges, and the message view of an alert (`alert_views`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from services.notify.domain import messages
from services.notify.domain.alert import Alert
from services.notify.domain.delivery import Delivery
from services.notify.domain.policy import Chain
from services.notify.handlers import AuditEntry, Unreadable
from shared import tracing
from shared.db import Conn
from shared.events import CloudEvent, EventData, envelope
from shared.outbox import enqueue_many

SOURCE = "/mvsj/notify"
_EVENT_NS = uuid.UUID("b5f0a0f1-0c8e-4a4a-8b36-1d3c1f6a7e21")

_ALERT_COLUMNS = (
    "id", "case_id", "deadline_id", "deadline_rule", "title", "category", "kommune", "due_at", "policy_rule",
    "reason", "severity", "state", "chain", "level", "reminders", "raised_at", "updated_at", "happened_at",
    "notified", "last_step", "next_timer_at", "acknowledged_at", "acknowledged_by", "acknowledged_by_name",
    "resolved_at",
    "resolved_reason", "fraction", "generation", "resolved_action", "resolved_action_at", "trace_context",
)  # fmt: skip
# Built once from the column names above (no value is ever formatted in): hence the S608 exemption.
# trace_context is the trace that raised the alert: written with the new row, never updated.
_UPSERT_ALERT = (
    f"INSERT INTO alerts ({', '.join(_ALERT_COLUMNS)}) VALUES "  # noqa: S608
    f"({', '.join(f'${i}' for i in range(1, len(_ALERT_COLUMNS) + 1))}) ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(
        f"{c} = EXCLUDED.{c}" for c in _ALERT_COLUMNS if c not in ("id", "case_id", "deadline_rule", "trace_context")
    )
)


def alert_from_row(row: asyncpg.Record | dict[str, Any]) -> Alert:
    data = {c: row[c] for c in _ALERT_COLUMNS}
    data["chain"] = Chain.from_snapshot(data["chain"])
    data["notified"] = tuple(data["notified"])
    data["last_step"] = tuple(data["last_step"])
    return Alert(**data)


def _alert_args(alert: Alert) -> tuple[Any, ...]:
    values = {c: getattr(alert, c) for c in _ALERT_COLUMNS}
    values["chain"] = alert.chain.to_snapshot()
    values["notified"] = list(alert.notified)
    values["last_step"] = list(alert.last_step)
    # A new alert is in the trace of what raised it (shared/tracing.py); an existing row keeps its own.
    values["trace_context"] = alert.trace_context or tracing.current_traceparent()
    return tuple(values[c] for c in _ALERT_COLUMNS)


_DELIVERY_COLUMNS = tuple(f.name for f in dataclasses.fields(Delivery))


def delivery_from_row(row: asyncpg.Record | dict[str, Any]) -> Delivery:
    return Delivery(**{c: row[c] for c in _DELIVERY_COLUMNS})


def event_id_for(data: EventData) -> uuid.UUID:
    """Deterministic: the same fact computed twice (a retry after a crash) is the same event, sent once."""
    # The hash input is the payload's JSON exactly as it was first written: ids already on the bus
    # must come out the same for a redelivered cause (tests/unit/platform/test_emitted_ids.py).
    unset = {f for f in data.added_fields if getattr(data, f) is None}
    return uuid.uuid5(_EVENT_NS, f"{data.event_type}/{data.model_dump_json(exclude=unset)}")


def to_cloud_events(events: Sequence[EventData], kommune: str) -> list[CloudEvent]:
    """The envelopes of one alert's events: subject the case, time the event's own, ids deterministic."""
    return [envelope(e, source=SOURCE, kommune=kommune, event_id=event_id_for(e)) for e in events]


# --- the escalation timer ---


async def next_timer(conn: Conn) -> datetime | None:
    value: datetime | None = await conn.fetchval(
        "SELECT min(next_timer_at) FROM alerts WHERE next_timer_at IS NOT NULL"
    )
    return value


# --- deliveries ---

# Leases are measured by Postgres's clock alone (clock_timestamp(): the moment of the row's update,
# not the start of the transaction), so instances whose clocks disagree, or a claim that waited for a
# connection, never shorten a lease another instance holds. Due times stay on the service's clock.
_CLAIM_DELIVERIES = """
WITH due AS (
    SELECT d.id FROM deliveries d
    WHERE d.state = 'pending' AND d.next_attempt_at <= $1
      AND (d.lease_until IS NULL OR d.lease_until < clock_timestamp())
    ORDER BY d.next_attempt_at LIMIT $4 FOR UPDATE SKIP LOCKED
)
UPDATE deliveries d SET lease_owner = $2, lease_until = clock_timestamp() + $3::interval, attempts = d.attempts + 1
FROM due WHERE d.id = due.id
RETURNING d.*
"""


async def claim_deliveries(conn: Conn, now: datetime, owner: str, lease: timedelta, limit: int) -> list[Delivery]:
    """Takes due deliveries under a lease (committed at once): the sending happens with no transaction open.

    A worker that dies mid-send leaves its lease to run out; then another takes the delivery again
    with the same id, so a receiver that deduplicates by webhook-id or Message-ID sees it once.
    """
    return [delivery_from_row(r) for r in await conn.fetch(_CLAIM_DELIVERIES, now, owner, lease, limit)]


async def renew_leases(conn: Conn, ids: Sequence[uuid.UUID], owner: str, lease: timedelta) -> list[uuid.UUID]:
    """Extends the leases `owner` still holds on these deliveries (it is still sending or recording them).

    A row whose result is being recorded at this moment is locked and skipped: no other worker can
    claim it while it is locked, and once recorded it needs no lease. Returns the ids renewed.
    """
    rows = await conn.fetch(
        "WITH held AS (SELECT id FROM deliveries WHERE id = ANY($1) AND lease_owner = $2 AND state = 'pending'"
        " FOR UPDATE SKIP LOCKED)"
        " UPDATE deliveries d SET lease_until = clock_timestamp() + $3::interval FROM held WHERE d.id = held.id"
        " RETURNING d.id",
        list(ids),
        owner,
        lease,
    )
    return [r["id"] for r in rows]


async def release_delivery(conn: Conn, delivery_id: uuid.UUID, owner: str) -> bool:
    """Hands back a delivery claimed but not sent, for the next round; the claim does not count as an attempt."""
    status = await conn.execute(
        "UPDATE deliveries SET lease_owner = NULL, lease_until = NULL, attempts = attempts - 1"
        " WHERE id = $1 AND lease_owner = $2 AND state = 'pending'",
        delivery_id,
        owner,
    )
    return bool(status == "UPDATE 1")


async def alert_rows(conn: Conn, alert_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, asyncpg.Record]:
    """The alerts' rows with their case's reference, by id: for the console's cards and the message views."""
    rows = await conn.fetch(
        "SELECT a.*, c.reference FROM alerts a LEFT JOIN case_refs c ON c.case_id = a.case_id WHERE a.id = ANY($1)",
        list(set(alert_ids)),
    )
    return {r["id"]: r for r in rows}


def view_from_row(row: asyncpg.Record | dict[str, Any]) -> messages.AlertView:
    """An alert row (with its case's reference) as a message sees it, with the category's and kommune's labels."""
    return messages.AlertView(
        alert_id=str(row["id"]),
        case_id=str(row["case_id"]),
        reference=row["reference"],
        category=row["category"],
        category_da=messages.category_da(row["category"]),
        kommune=row["kommune"],
        kommune_name=messages.kommune_name(row["kommune"]),
        title=row["title"],
        reason=row["reason"],
        severity=row["severity"],
        state=row["state"],
        due_at=row["due_at"],
        acknowledged_by=row["acknowledged_by"],
        acknowledged_by_name=row.get("acknowledged_by_name"),
        resolved_reason=row["resolved_reason"],
        generation=row["generation"],
        resolved_action=row.get("resolved_action"),
        resolved_action_at=row.get("resolved_action_at"),
    )


async def alert_views(conn: Conn, alert_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, messages.AlertView]:
    """What the messages of these alerts say, as of now (the state an e-mail reports is the current one)."""
    return {alert_id: view_from_row(row) for alert_id, row in (await alert_rows(conn, alert_ids)).items()}


async def disabled_targets(conn: Conn, targets: Sequence[str]) -> set[str]:
    rows = await conn.fetch("SELECT target FROM disabled_endpoints WHERE target = ANY($1)", list(set(targets)))
    return {r["target"] for r in rows}


async def next_delivery(conn: Conn) -> datetime | None:
    value: datetime | None = await conn.fetchval(
        "SELECT min(greatest(next_attempt_at, coalesce(lease_until, next_attempt_at))) FROM deliveries"
        " WHERE state = 'pending'"
    )
    return value


class PostgresNotifyRepository:
    """The NotifyRepository of handlers.py on one connection, inside the unit of work's transaction."""

    def __init__(self, conn: Conn, *, topic: str) -> None:
        self._conn = conn
        self._topic = topic

    async def remember_case(self, case_id: uuid.UUID, reference: str, category: str, kommune: str) -> bool:
        """Keeps a case's reference; True if this was the first (the first one wins, and is never changed)."""
        status = await self._conn.execute(
            "INSERT INTO case_refs (case_id, reference, category, kommune) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (case_id) DO NOTHING",
            case_id,
            reference,
            category,
            kommune,
        )
        return bool(status == "INSERT 0 1")

    async def reference_of(self, case_id: uuid.UUID) -> str | None:
        value: str | None = await self._conn.fetchval("SELECT reference FROM case_refs WHERE case_id = $1", case_id)
        return value

    async def lock_alert(self, alert_id: uuid.UUID) -> Alert | None:
        """The alert, locked until the transaction ends: ack, resolve, timer and events on it take turns."""
        row = await self._conn.fetchrow("SELECT * FROM alerts WHERE id = $1 FOR UPDATE", alert_id)
        return alert_from_row(row) if row else None

    async def lock_alert_of_case(self, alert_id: uuid.UUID, case_id: uuid.UUID) -> tuple[Alert | None, str | None]:
        """`lock_alert`, and the case's reference as known now, in one statement (a new alert names its case).

        The lateral sub-select locks the alert row as `lock_alert` does (waiting for a holder, then
        reading its latest version); the outer row is there whether or not the alert exists.
        """
        row = await self._conn.fetchrow(
            "SELECT (SELECT reference FROM case_refs WHERE case_id = $2) AS known_reference, a.*"
            " FROM (VALUES (1)) AS one LEFT JOIN LATERAL (SELECT * FROM alerts WHERE id = $1 FOR UPDATE) AS a ON true",
            alert_id,
            case_id,
        )
        assert row is not None  # the VALUES row is always there
        return (alert_from_row(row) if row["id"] is not None else None), row["known_reference"]

    async def lock_new_alert(self, alert_id: uuid.UUID) -> None:
        """Two events of one deadline may reach two consumers during a rebalance: one creates, the other waits."""
        await self._conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"alert:{alert_id}")

    async def save_alert(self, alert: Alert) -> None:
        await self._conn.execute(_UPSERT_ALERT, *_alert_args(alert))

    async def add_deliveries(self, deliveries: Sequence[Delivery]) -> list[Delivery]:
        """Writes the deliveries; one already there (same id: a stage to a recipient on a channel) is not written
        twice. Returns the new ones."""
        if not deliveries:
            return []
        trace_context = tracing.current_traceparent()
        written = await self._conn.fetch(
            "INSERT INTO deliveries (id, alert_id, notice_id, stage, stoppable, recipient_id, recipient_name,"
            " channel_no, channel, target, state, attempts, next_attempt_at, happened_at, delivered_at, trace_context)"
            " SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::bool[], $6::text[], $7::text[],"
            " $8::int[], $9::text[], $10::text[], $11::text[], $12::int[], $13::timestamptz[], $14::timestamptz[],"
            " $15::timestamptz[], $16::text[])"
            " ON CONFLICT DO NOTHING RETURNING id",
            *[[getattr(d, c) for d in deliveries] for c in _DELIVERY_COLUMNS if c != "trace_context"],
            # The send continues the trace of what wrote the delivery (shared/tracing.py).
            [d.trace_context or trace_context for d in deliveries],
        )
        new = {r["id"] for r in written}
        return [d for d in deliveries if d.id in new]

    async def audit_many(self, alert_id: uuid.UUID, at: datetime, entries: Sequence[AuditEntry]) -> None:
        """The rows in the order given; executemany sends them all before one Sync: one round trip."""
        if not entries:
            return
        await self._conn.executemany(
            "INSERT INTO audit (alert_id, at, kind, actor, detail) VALUES ($1, $2, $3, $4, $5)",
            [(alert_id, at, kind, actor, detail) for kind, detail, actor in entries],
        )

    async def cancel_stoppable(self, alert_id: uuid.UUID, why: str) -> int:
        """Escalations and reminders not yet sent are not sent at all once someone has acknowledged."""
        status = await self._conn.execute(
            # A delivery in flight (leased) finishes; its result is recorded, and it is not retried.
            "UPDATE deliveries SET state = 'cancelled', last_error = $2"
            " WHERE alert_id = $1 AND state = 'pending' AND stoppable AND (lease_until IS NULL OR lease_until < now())",
            alert_id,
            why,
        )
        return int(status.split()[-1])

    async def audit(
        self, alert_id: uuid.UUID, at: datetime, kind: str, detail: dict[str, Any], actor: str | None = None
    ) -> None:
        await self._conn.execute(
            "INSERT INTO audit (alert_id, at, kind, actor, detail) VALUES ($1, $2, $3, $4, $5)",
            alert_id,
            at,
            kind,
            actor,
            detail,
        )

    async def emit(self, events: Sequence[EventData], *, kommune: str) -> list[CloudEvent]:
        if not events:
            return []
        envelopes = to_cloud_events(events, kommune)
        await enqueue_many(self._conn, envelopes, topic=self._topic)
        return envelopes

    async def claim_due_alerts(self, now: datetime, limit: int) -> list[Alert | Unreadable]:
        """Alerts whose ack timeout or reminder is due and that nobody else holds; locked until commit."""
        rows = await self._conn.fetch(
            "SELECT * FROM alerts WHERE next_timer_at <= $1 ORDER BY next_timer_at LIMIT $2 FOR UPDATE SKIP LOCKED",
            now,
            limit,
        )
        claimed: list[Alert | Unreadable] = []
        for row in rows:
            try:
                claimed.append(alert_from_row(row))
            except Exception as exc:
                claimed.append(Unreadable(row["id"], exc))
        return claimed

    async def park_timers(self, parked: Sequence[tuple[uuid.UUID, str]]) -> None:
        """Takes alerts the timer cannot fire off the timer, with the reason, for a person to look at."""
        await self._conn.executemany("UPDATE alerts SET next_timer_at = NULL, timer_error = $2 WHERE id = $1", parked)

    async def share_alert(self, alert_id: uuid.UUID) -> asyncpg.Record | None:
        """The alert's case, kommune and state, held (shared) until commit: an ack or resolve waits, a reader
        does not."""
        return await self._conn.fetchrow("SELECT case_id, kommune, state FROM alerts WHERE id = $1 FOR SHARE", alert_id)

    async def lock_delivery(self, delivery_id: uuid.UUID, owner: str) -> Delivery | None:
        """The delivery, if this worker still holds its lease (else another took it over: leave it)."""
        row = await self._conn.fetchrow(
            "SELECT * FROM deliveries WHERE id = $1 AND lease_owner = $2 FOR UPDATE", delivery_id, owner
        )
        return delivery_from_row(row) if row else None

    async def mark_delivered(self, delivery_id: uuid.UUID, at: datetime, owner: str) -> bool:
        """Delivered, if this worker still holds the lease; False (nothing changed) if another took it over.

        The WHERE is judged on the row's latest version once its lock is had, as `lock_delivery`'s is.
        """
        status = await self._conn.execute(
            "UPDATE deliveries SET state = 'delivered', delivered_at = $2, lease_owner = NULL, lease_until = NULL,"
            " last_error = NULL WHERE id = $1 AND lease_owner = $3",
            delivery_id,
            at,
            owner,
        )
        return bool(status == "UPDATE 1")

    async def mark_retry(self, delivery_id: uuid.UUID, at: datetime, error: str) -> None:
        await self._conn.execute(
            "UPDATE deliveries SET next_attempt_at = $2, last_error = $3, lease_owner = NULL, lease_until = NULL"
            " WHERE id = $1",
            delivery_id,
            at,
            error[:500],
        )

    async def mark_failed(self, delivery_id: uuid.UUID, error: str) -> None:
        await self._conn.execute(
            "UPDATE deliveries SET state = 'failed', last_error = $2, lease_owner = NULL, lease_until = NULL"
            " WHERE id = $1",
            delivery_id,
            error[:500],
        )

    async def disable_endpoint(self, target: str, reason: str) -> None:
        await self._conn.execute(
            "INSERT INTO disabled_endpoints (target, reason) VALUES ($1, $2) ON CONFLICT DO NOTHING", target, reason
        )

    async def use_ack_link(self, delivery_id: uuid.UUID, alert_id: uuid.UUID) -> bool:
        """True the first time a link is used; a link works once."""
        status = await self._conn.execute(
            "INSERT INTO used_ack_links (delivery_id, alert_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            delivery_id,
            alert_id,
        )
        return bool(status == "INSERT 0 1")

    @contextlib.asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        # A transaction inside the caller's one: asyncpg makes it a SAVEPOINT, rolled back on error.
        async with self._conn.transaction():
            yield


# --- reading, for the API and the console ---

# Static statements for every combination of filters: a NULL parameter means "any".
_COUNT_ALERTS = (
    "SELECT count(*) FROM alerts a"
    " WHERE ($1::text IS NULL OR a.kommune = $1) AND ($2::text IS NULL OR a.severity = $2)"
    " AND ($3::text IS NULL OR a.state = $3) AND (NOT $4::boolean OR a.state <> 'resolved')"
)
_LIST_ALERTS = (
    "SELECT a.*, c.reference FROM alerts a LEFT JOIN case_refs c ON c.case_id = a.case_id"
    " WHERE ($1::text IS NULL OR a.kommune = $1) AND ($2::text IS NULL OR a.severity = $2)"
    " AND ($3::text IS NULL OR a.state = $3) AND (NOT $4::boolean OR a.state <> 'resolved')"
    " ORDER BY (a.state = 'resolved'), (a.state = 'acknowledged'),"
    " CASE a.severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END, a.due_at, a.id"
    " LIMIT $5 OFFSET $6"
)


async def list_alerts(
    conn: Conn, *, state: str | None, kommune: str | None, severity: str | None, limit: int, offset: int
) -> tuple[list[asyncpg.Record], int]:
    """Alerts, most urgent first (unresolved before resolved, critical first, soonest due first)."""
    unresolved = state == "unresolved"
    args = (kommune, severity, None if unresolved else state, unresolved)
    total = await conn.fetchval(_COUNT_ALERTS, *args)
    rows = await conn.fetch(_LIST_ALERTS, *args, limit, offset)
    return list(rows), int(total)


async def get_alert(conn: Conn, alert_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT a.*, c.reference FROM alerts a LEFT JOIN case_refs c ON c.case_id = a.case_id WHERE a.id = $1",
        alert_id,
    )


async def deliveries_of(conn: Conn, alert_ids: Sequence[uuid.UUID]) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            "SELECT id, alert_id, stage, recipient_id, recipient_name, channel, state, attempts, last_error,"
            " created_at, delivered_at FROM deliveries WHERE alert_id = ANY($1) ORDER BY created_at, channel_no",
            list(alert_ids),
        )
    )


async def audit_of(conn: Conn, alert_id: uuid.UUID) -> list[asyncpg.Record]:
    return list(await conn.fetch("SELECT at, kind, actor, detail FROM audit WHERE alert_id = $1 ORDER BY id", alert_id))


async def open_unacknowledged(conn: Conn) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            # Reminders start only once the last step of the chain has had its time: past the chain.
            "SELECT kommune, severity, count(*) AS n, count(*) FILTER (WHERE reminders > 0) AS past_chain"
            " FROM alerts WHERE state IN ('open', 'escalated') GROUP BY kommune, severity"
        )
    )


# --- retention (domain/retention.py, docs/privacy.md): each statement deletes one batch at most ---

# One purge at a time per schema, however many instances run (transaction-scoped: one batch holds it).
_PURGE_LOCK = "SELECT pg_try_advisory_xact_lock(hashtext('notify-purge:' || current_schema()))"

# Read from the deliveries' side by their age (a delivery is written before its alert is resolved):
# each round looks at the deliveries still there, not at every alert resolved in the last five years.
_PURGE_DELIVERIES = """
WITH doomed AS (
    SELECT d.id FROM deliveries d JOIN alerts a ON a.id = d.alert_id
    WHERE d.created_at < $1 AND d.state <> 'pending' AND a.state = 'resolved' AND a.resolved_at < $1
    LIMIT $2 FOR UPDATE OF d SKIP LOCKED
)
DELETE FROM deliveries d USING doomed WHERE d.id = doomed.id
"""
# The alert with its trail: the audit rows and any delivery left go in the same statement, so no
# alert is ever left half gone (the foreign key from deliveries is checked at the statement's end).
# Not while a delivery of it is still being sent: its result is recorded in the alert's trail.
_PURGE_ALERTS = """
WITH doomed AS (
    SELECT id FROM alerts a WHERE state = 'resolved' AND resolved_at < $1
      AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.alert_id = a.id AND d.state = 'pending')
    ORDER BY resolved_at LIMIT $2 FOR UPDATE SKIP LOCKED
), audit_gone AS (
    DELETE FROM audit WHERE alert_id IN (SELECT id FROM doomed) RETURNING 1
), deliveries_gone AS (
    DELETE FROM deliveries WHERE alert_id IN (SELECT id FROM doomed) RETURNING 1
), alerts_gone AS (
    DELETE FROM alerts WHERE id IN (SELECT id FROM doomed) RETURNING 1
)
SELECT (SELECT count(*) FROM alerts_gone) AS alerts, (SELECT count(*) FROM audit_gone) AS audit,
       (SELECT count(*) FROM deliveries_gone) AS deliveries
"""
_PURGE_CASE_REFS = """
DELETE FROM case_refs WHERE case_id IN (
    SELECT c.case_id FROM case_refs c
    WHERE c.seen_at < $1 AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.case_id = c.case_id)
    LIMIT $2 FOR UPDATE SKIP LOCKED
)
"""
_PURGE_USED_ACK_LINKS = """
DELETE FROM used_ack_links WHERE delivery_id IN (
    SELECT delivery_id FROM used_ack_links WHERE used_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED
)
"""
_PURGE_DISABLED_ENDPOINTS = """
DELETE FROM disabled_endpoints WHERE target IN (
    SELECT target FROM disabled_endpoints WHERE disabled_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED
)
"""


def _deleted(status: str) -> int:
    return int(status.split()[-1])


async def lock_purge(conn: Conn) -> bool:
    """True if this transaction may purge (no other instance is purging the schema at this moment)."""
    return bool(await conn.fetchval(_PURGE_LOCK))


async def purge_deliveries(conn: Conn, resolved_before: datetime, limit: int) -> int:
    """Deliveries (officers' names and addresses) of alerts resolved before `resolved_before`; never one being sent."""
    return _deleted(await conn.execute(_PURGE_DELIVERIES, resolved_before, limit))


async def purge_alerts(conn: Conn, resolved_before: datetime, limit: int) -> dict[str, int]:
    """Up to `limit` alerts resolved before `resolved_before`, with their audit trails and deliveries; not one
    with a delivery still being sent."""
    row = await conn.fetchrow(_PURGE_ALERTS, resolved_before, limit)
    assert row is not None
    return {"alerts": int(row["alerts"]), "audit": int(row["audit"]), "deliveries": int(row["deliveries"])}


async def purge_case_refs(conn: Conn, seen_before: datetime, limit: int) -> int:
    """Case references first seen before `seen_before` that no alert names any more."""
    return _deleted(await conn.execute(_PURGE_CASE_REFS, seen_before, limit))


async def purge_used_ack_links(conn: Conn, used_before: datetime, limit: int) -> int:
    """Used ack links whose links have expired (a row older than the links' lifetime guards nothing)."""
    return _deleted(await conn.execute(_PURGE_USED_ACK_LINKS, used_before, limit))


async def purge_disabled_endpoints(conn: Conn, disabled_before: datetime, limit: int) -> int:
    """Webhook addresses that answered 410 Gone before `disabled_before` (one still in a roster is tried again)."""
    return _deleted(await conn.execute(_PURGE_DISABLED_ENDPOINTS, disabled_before, limit))
