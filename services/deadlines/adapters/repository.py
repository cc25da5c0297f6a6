"""Postgres storage of deadlines, per-case actions and deadline timelines (the service's own schema)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from services.deadlines.domain.case_deadlines import CaseDeadlines
from services.deadlines.domain.deadline import Deadline, DeadlineEvent, emitted_event_id, event_time
from shared.db import Conn
from shared.events import CloudEvent
from shared.outbox import enqueue_many

SOURCE = "/mvsj/deadlines"

_DEADLINE_COLUMNS = (
    "id", "case_id", "rule_id", "rules_version", "rule", "basis", "kommune", "category", "focus_area",
    "started_at", "due_at", "state", "warnings_sent", "warnings_skipped", "breached_at", "met_at",
    "met_action", "cancelled_at", "outcome", "next_fire_at", "next_fire_fraction",
)  # fmt: skip
_UPSERT_DEADLINE = (
    f"INSERT INTO deadlines ({', '.join(_DEADLINE_COLUMNS)}) VALUES "
    f"({', '.join(f'${i}' for i in range(1, len(_DEADLINE_COLUMNS) + 1))}) "
    "ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in _DEADLINE_COLUMNS if c not in ("id", "case_id", "rule_id"))
    + ", updated_at = clock_timestamp()"
)


def _deadline_args(deadline: Deadline) -> tuple[Any, ...]:
    record = deadline.to_record() | {"basis": deadline.rule.basis}
    return tuple(record[c] for c in _DEADLINE_COLUMNS)


async def lock_case(conn: Conn, case_id: uuid.UUID, kommune: str) -> None:
    """Serialises changes to one case (a rebalance may briefly give two consumers its partition)."""
    await conn.execute("INSERT INTO cases (case_id, kommune) VALUES ($1, $2) ON CONFLICT DO NOTHING", case_id, kommune)
    await conn.execute("SELECT 1 FROM cases WHERE case_id = $1 FOR UPDATE", case_id)


async def load_case(conn: Conn, case_id: uuid.UUID) -> CaseDeadlines:
    # FOR UPDATE waits for a timer that is firing one of these rows right now.
    deadlines = await conn.fetch("SELECT * FROM deadlines WHERE case_id = $1 FOR UPDATE", case_id)
    actions = await conn.fetch("SELECT * FROM case_actions WHERE case_id = $1", case_id)
    return CaseDeadlines.from_records(case_id, map(dict, deadlines), map(dict, actions))


async def save_case(conn: Conn, case: CaseDeadlines) -> None:
    await save_deadlines(conn, case.deadlines.values())
    _, actions = case.to_records()
    await conn.executemany(
        "INSERT INTO case_actions (case_id, action_id, action, occurred_at, requested_time, outcome)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        [
            (a["case_id"], a["action_id"], a["action"], a["occurred_at"], a["requested_time"], a["outcome"])
            for a in actions
        ],
    )


async def save_deadlines(conn: Conn, deadlines: Sequence[Deadline] | Any) -> None:
    await conn.executemany(_UPSERT_DEADLINE, [_deadline_args(d) for d in deadlines])


def to_cloud_events(events: Sequence[DeadlineEvent], kommune_of: dict[uuid.UUID, str]) -> list[CloudEvent]:
    """Envelopes with deterministic ids: computing the same fact twice yields the same event id."""
    return [
        CloudEvent.of(
            e,
            source=SOURCE,
            subject=str(e.case_id),
            kommune=kommune_of[e.deadline_id],
            time=event_time(e),
            event_id=emitted_event_id(e),
        )
        for e in events
    ]


def due_header(event: DeadlineEvent) -> str | None:
    """When a timer event was due, so the relay can measure due-to-published lag."""
    from shared.events.deadlines import DeadlineBreached, DeadlineWarning

    if isinstance(event, DeadlineBreached):
        return event.due_at.isoformat()
    if isinstance(event, DeadlineWarning):
        return (event.started_at + (event.due_at - event.started_at) * event.fraction).isoformat()
    return None


async def record_and_emit(
    conn: Conn, events: Sequence[DeadlineEvent], kommune_of: dict[uuid.UUID, str], topic: str
) -> list[CloudEvent]:
    """Timeline rows and outbox rows for `events`, in the caller's transaction."""
    if not events:
        return []
    envelopes = to_cloud_events(events, kommune_of)
    await conn.executemany(
        "INSERT INTO deadline_timeline (event_id, deadline_id, type, at, data) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (event_id) DO NOTHING",
        [(env.id, e.deadline_id, env.type, env.time, env.data) for env, e in zip(envelopes, events, strict=True)],
    )
    await enqueue_many(
        conn,
        envelopes,
        topic=topic,
        extra_headers=[{"due-at": h} if (h := due_header(e)) else {} for e in events],
    )
    return envelopes


async def claim_due(conn: Conn, now: datetime, limit: int) -> list[asyncpg.Record]:
    """Due deadlines no other scheduler holds; locked until the caller's transaction ends."""
    return await conn.fetch(
        "SELECT * FROM deadlines WHERE next_fire_at <= $1 ORDER BY next_fire_at LIMIT $2 FOR UPDATE SKIP LOCKED",
        now,
        limit,
    )


async def next_due(conn: Conn) -> datetime | None:
    value: datetime | None = await conn.fetchval(
        "SELECT min(next_fire_at) FROM deadlines WHERE next_fire_at IS NOT NULL"
    )
    return value
