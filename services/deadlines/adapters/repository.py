"""Postgres storage of deadlines, per-case actions and deadline timelines (the service's own schema).

The row mapping of the domain objects lives here too (the domain knows no column names), and so
do the read queries of the police API. `PostgresDeadlinesRepository` is the use cases'
`DeadlinesRepository` (handlers.py) on one connection; each of its calls is written here once, as
the fake of tests/unit/deadlines/fakes.py writes it once in memory (tests/support/contracts proves
them equal). The module functions are the timer's, the progress loop's and the police API's.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind
from opentelemetry.util.types import AttributeValue

from services.deadlines.domain.case_deadlines import CaseDeadlines
from services.deadlines.domain.deadline import (
    Deadline,
    DeadlineEvent,
    DeadlineState,
    PoliceAction,
    emitted_event_id,
    warning_due_at,
)
from services.deadlines.domain.rules import Rule
from services.deadlines.handlers import Unreadable
from shared import tracing
from shared.db import Conn, readable_times
from shared.events import CloudEvent, envelope
from shared.events.deadlines import DeadlineBreached, DeadlineWarning
from shared.outbox import enqueue_many

SOURCE = "/mvsj/deadlines"

_DEADLINE_COLUMNS = (
    "id", "case_id", "rule_id", "rules_version", "rule", "basis", "kommune", "category", "focus_area",
    "started_at", "due_at", "state", "warnings_sent", "warnings_skipped", "breached_at", "met_at",
    "met_action", "cancelled_at", "outcome", "next_fire_at", "next_fire_fraction", "reschedules", "reference",
    "breach_stands",
)  # fmt: skip
# Built once from the fixed column list above; every value is a bind parameter. The last one is the
# row's trace_context (migration 0007), written when the deadline is inserted and never updated.
_UPSERT_DEADLINE = (
    f"INSERT INTO deadlines ({', '.join(_DEADLINE_COLUMNS)}, trace_context) VALUES "  # noqa: S608
    f"({', '.join(f'${i}' for i in range(1, len(_DEADLINE_COLUMNS) + 2))}) "
    "ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in _DEADLINE_COLUMNS if c not in ("id", "case_id", "rule_id"))
    + ", updated_at = clock_timestamp()"
)

_ACTION_COLUMNS = ("case_id", "action_id", "action", "occurred_at", "requested_time", "outcome", "recorded_at")
_INSERT_ACTION = (
    f"INSERT INTO case_actions ({', '.join(_ACTION_COLUMNS)}) VALUES "  # noqa: S608 - fixed column names only
    f"({', '.join(f'${i}' for i in range(1, len(_ACTION_COLUMNS) + 1))}) ON CONFLICT DO NOTHING"
)


# --- row mapping -----------------------------------------------------------------------------


def deadline_to_record(deadline: Deadline) -> dict[str, Any]:
    """Column values of a deadline; `rule` is a JSON-ready snapshot, next_fire_* are derived."""
    upcoming = deadline.next_fire
    return {
        "id": deadline.id,
        "case_id": deadline.case_id,
        "rule_id": deadline.rule.id,
        "rules_version": deadline.rules_version,
        "rule": deadline.rule.to_snapshot(),
        "kommune": deadline.kommune,
        "category": deadline.category,
        "focus_area": deadline.focus_area,
        "started_at": deadline.started_at,
        "due_at": deadline.due_at,
        "state": deadline.state.value,
        "warnings_sent": list(deadline.warnings_sent),
        "warnings_skipped": list(deadline.warnings_skipped),
        "breached_at": deadline.breached_at,
        "met_at": deadline.met_at,
        "met_action": deadline.met_action,
        "cancelled_at": deadline.cancelled_at,
        "outcome": deadline.outcome,
        "reschedules": deadline.reschedules,
        "reference": deadline.reference,
        "breach_stands": deadline.breach_stands,
        "next_fire_at": None if upcoming is None else upcoming.at,
        "next_fire_fraction": None if upcoming is None else upcoming.fraction,
    }


def deadline_from_record(row: Mapping[str, Any]) -> Deadline:
    return Deadline(
        id=row["id"],
        case_id=row["case_id"],
        rule=Rule.from_snapshot(row["rule"]),
        rules_version=row["rules_version"],
        kommune=row["kommune"],
        category=row["category"],
        focus_area=row["focus_area"],
        started_at=row["started_at"],
        due_at=row["due_at"],
        state=DeadlineState(row["state"]),
        warnings_sent=tuple(row["warnings_sent"]),
        warnings_skipped=tuple(row["warnings_skipped"]),
        breached_at=row["breached_at"],
        met_at=row["met_at"],
        met_action=row["met_action"],
        cancelled_at=row["cancelled_at"],
        outcome=row["outcome"],
        reschedules=row["reschedules"],
        reference=row["reference"],
        breach_stands=row["breach_stands"],
    )


def action_to_record(case_id: uuid.UUID, action: PoliceAction) -> dict[str, Any]:
    return {
        "case_id": case_id,
        "action_id": action.action_id,
        "action": action.action,
        "occurred_at": action.occurred_at,
        "requested_time": action.requested_time,
        "outcome": action.outcome,
        "recorded_at": action.recorded_at,
    }


def action_from_record(row: Mapping[str, Any]) -> PoliceAction:
    return PoliceAction(
        action_id=row["action_id"],
        action=row["action"],
        occurred_at=row["occurred_at"],
        requested_time=row["requested_time"],
        outcome=row["outcome"],
        recorded_at=row.get("recorded_at"),
    )


def case_to_records(case: CaseDeadlines) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(deadline rows, action rows); the case itself is only its id."""
    return (
        [deadline_to_record(d) for d in case.deadlines.values()],
        [action_to_record(case.case_id, a) for a in case.actions],
    )


def case_from_records(
    case_id: uuid.UUID, deadlines: Iterable[Mapping[str, Any]], actions: Iterable[Mapping[str, Any]]
) -> CaseDeadlines:
    return CaseDeadlines(
        case_id,
        deadlines=[deadline_from_record(row) for row in deadlines],
        actions=[action_from_record(row) for row in actions],
    )


def _deadline_args(deadline: Deadline) -> tuple[Any, ...]:
    record = deadline_to_record(deadline) | {"basis": deadline.rule.basis}
    return tuple(record[c] for c in _DEADLINE_COLUMNS)


# --- the use cases' storage ------------------------------------------------------------------


def to_cloud_events(events: Sequence[DeadlineEvent], kommune_of: dict[uuid.UUID, str]) -> list[CloudEvent]:
    """Envelopes with deterministic ids: computing the same fact twice yields the same event id."""
    return [envelope(e, source=SOURCE, kommune=kommune_of[e.deadline_id], event_id=emitted_event_id(e)) for e in events]


def due_header(event: DeadlineEvent) -> str | None:
    """When a timer event was due, so the relay can measure due-to-published lag."""
    if isinstance(event, DeadlineBreached):
        return event.due_at.isoformat()
    if isinstance(event, DeadlineWarning):
        return warning_due_at(event.started_at, event.due_at, event.fraction).isoformat()
    return None


class PostgresDeadlinesRepository:
    """The DeadlinesRepository of handlers.py on one connection, inside the unit of work's transaction.

    Tracing (shared/tracing.py), which the use cases need not know: a deadline row keeps the trace
    context it was inserted in (the handling of the case event that started it, in the report's trace).
    Events of deadlines this repository claimed as due (`claim_due`: the timer's round) are that
    deadline's warning or breach firing, hours after the report: each firing is a span of its own,
    `deadline warning` or `deadline breach`, beginning a new trace with a link to the stored context,
    and its events go out in that trace (their outbox rows, the relay's publish, notify's alert and
    webhook after it). Events written on any other path stay in the trace of the work that wrote them.
    """

    def __init__(self, conn: Conn, *, topic: str) -> None:
        self._conn = conn
        self._topic = topic
        # Deadlines claimed by the timer in this transaction, with the trace context that started each.
        self._claimed: dict[uuid.UUID, str | None] = {}

    async def lock_case(self, case_id: uuid.UUID, kommune: str) -> None:
        """Serialises changes to one case (a rebalance may briefly give two consumers its partition)."""
        await self._conn.execute(
            "INSERT INTO cases (case_id, kommune) VALUES ($1, $2) ON CONFLICT DO NOTHING", case_id, kommune
        )
        await self._conn.execute("SELECT 1 FROM cases WHERE case_id = $1 FOR UPDATE", case_id)

    async def load_case(self, case_id: uuid.UUID) -> CaseDeadlines:
        # FOR UPDATE waits for a timer that is firing one of these rows right now.
        deadlines = await self._conn.fetch("SELECT * FROM deadlines WHERE case_id = $1 FOR UPDATE", case_id)
        actions = await self._conn.fetch("SELECT * FROM case_actions WHERE case_id = $1", case_id)
        return case_from_records(case_id, map(dict, deadlines), map(dict, actions))

    async def save_case(self, case: CaseDeadlines) -> None:
        await self.save_deadlines(list(case.deadlines.values()))
        _, actions = case_to_records(case)
        await self._conn.executemany(_INSERT_ACTION, [tuple(a[c] for c in _ACTION_COLUMNS) for a in actions])

    async def claim_due(self, now: datetime, limit: int) -> list[Deadline | Unreadable]:
        """Due deadlines no other scheduler holds, locked until commit; a row that cannot be read comes back
        as Unreadable, to be parked."""
        rows = await self._conn.fetch(
            "SELECT * FROM deadlines WHERE next_fire_at <= $1 ORDER BY next_fire_at LIMIT $2 FOR UPDATE SKIP LOCKED",
            now,
            limit,
        )
        claimed: list[Deadline | Unreadable] = []
        for row in rows:
            self._claimed[row["id"]] = row["trace_context"]
            try:
                claimed.append(deadline_from_record(dict(row)))
            except Exception as exc:
                claimed.append(Unreadable(row["id"], exc))
        return claimed

    async def save_deadlines(self, deadlines: Sequence[Deadline]) -> None:
        # A new deadline keeps the trace it starts in; an existing one keeps its own (not updated).
        started_in = tracing.current_traceparent()
        await self._conn.executemany(_UPSERT_DEADLINE, [(*_deadline_args(d), started_in) for d in deadlines])

    async def park(self, parked: Sequence[tuple[uuid.UUID, str]]) -> None:
        """Takes deadlines that cannot fire off the timer, with the reason, for a person to look at."""
        await self._conn.executemany(
            "UPDATE deadlines SET next_fire_at = NULL, fire_error = $2, updated_at = clock_timestamp() WHERE id = $1",
            parked,
        )

    async def record_and_emit(
        self, events: Sequence[DeadlineEvent], kommune_of: dict[uuid.UUID, str]
    ) -> list[CloudEvent]:
        """Timeline rows and outbox rows for `events`, in this transaction."""
        if not events:
            return []
        envelopes = to_cloud_events(events, kommune_of)
        firings = self._firing_spans(events)
        try:
            await self._conn.executemany(
                "INSERT INTO deadline_timeline (event_id, deadline_id, type, at, data) VALUES ($1, $2, $3, $4, $5)"
                " ON CONFLICT (event_id) DO NOTHING",
                [
                    (env.id, e.deadline_id, env.type, env.time, env.data)
                    for env, e in zip(envelopes, events, strict=True)
                ],
            )
            await enqueue_many(
                self._conn,
                envelopes,
                topic=self._topic,
                extra_headers=[{"due-at": h} if (h := due_header(e)) else {} for e in events],
                contexts=[
                    trace.set_span_in_context(firings[e.deadline_id]) if e.deadline_id in firings else None
                    for e in events
                ],
            )
        except BaseException as exc:
            for span in firings.values():
                tracing.failed(span, exc)
            raise
        finally:
            for span in firings.values():
                span.end()
        return envelopes

    def _firing_spans(self, events: Sequence[DeadlineEvent]) -> dict[uuid.UUID, Span]:
        """A span per deadline the timer claimed and fires now, each beginning a trace of its own, linked
        to the trace that started the deadline; none for events written on any other path."""
        fired: dict[uuid.UUID, list[DeadlineEvent]] = {}
        for event in events:
            if event.deadline_id in self._claimed:
                fired.setdefault(event.deadline_id, []).append(event)
        spans: dict[uuid.UUID, Span] = {}
        for deadline_id, emitted in fired.items():
            first = emitted[0]
            breach = any(isinstance(e, DeadlineBreached) for e in emitted)
            attributes: dict[str, AttributeValue] = {
                "mvsj.deadline_id": str(deadline_id),
                "mvsj.case_id": str(first.case_id),
                "mvsj.rule_id": first.rule_id,
                "mvsj.event_types": [e.event_type for e in emitted],
            }
            if first.reference:
                attributes["mvsj.reference"] = first.reference  # what an operator finds the trace by
            spans[deadline_id] = tracing.start(
                "deadline breach" if breach else "deadline warning",
                kind=SpanKind.INTERNAL,
                parent=tracing.new_trace(),
                links=tracing.link_to(self._claimed[deadline_id]),
                attributes=attributes,
            )
        return spans

    @contextlib.asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        # A transaction inside the caller's one: asyncpg makes it a SAVEPOINT, rolled back on error.
        async with self._conn.transaction():
            yield


async def next_due(conn: Conn) -> datetime | None:
    value: datetime | None = await conn.fetchval(
        "SELECT min(next_fire_at) FROM deadlines WHERE next_fire_at IS NOT NULL"
    )
    return value


@dataclass(frozen=True, slots=True)
class GateView:
    """What the timer and the progress loop read in one round trip: Postgres's now, the next due time,
    and how far the consumer has caught up with each partition of the topic (None: not yet)."""

    now: datetime
    next_fire_at: datetime | None
    progress: dict[int, datetime | None]


async def gate_view(conn: Conn | asyncpg.Pool, topic: str) -> GateView:
    """`now()` is the transaction's start inside one (the timer's claim), else this statement's."""
    row = await conn.fetchrow(
        "SELECT now() AS now,"
        " (SELECT min(next_fire_at) FROM deadlines WHERE next_fire_at IS NOT NULL) AS next_fire_at,"
        " ARRAY(SELECT partition FROM consumer_progress WHERE topic = $1 ORDER BY partition) AS partitions,"
        " ARRAY(SELECT caught_up_as_of FROM consumer_progress WHERE topic = $1 ORDER BY partition) AS caught_up",
        topic,
    )
    assert row is not None
    return GateView(row["now"], row["next_fire_at"], dict(zip(row["partitions"], row["caught_up"], strict=True)))


async def record_progress(
    conn: Conn | asyncpg.Pool, topic: str, partitions: Iterable[int], caught_up: Mapping[int, datetime]
) -> None:
    """A row for every partition of `topic` (NULL until caught up); caught-up times only move forward.

    Several instances write here, each for the partitions it is assigned; rows are taken in
    partition order so two writers never deadlock, and an older time never overwrites a newer one
    (a partition that moved keeps what its previous owner proved).
    """
    numbers = sorted(set(partitions) | set(caught_up))
    await conn.execute(
        "INSERT INTO consumer_progress (topic, partition, caught_up_as_of)"
        " SELECT $1, p, t FROM unnest($2::int[], $3::timestamptz[]) AS u(p, t) ORDER BY p"
        " ON CONFLICT (topic, partition) DO UPDATE"
        " SET caught_up_as_of = EXCLUDED.caught_up_as_of, updated_at = clock_timestamp()"
        " WHERE EXCLUDED.caught_up_as_of IS NOT NULL AND (consumer_progress.caught_up_as_of IS NULL"
        " OR EXCLUDED.caught_up_as_of > consumer_progress.caught_up_as_of)",
        topic,
        numbers,
        [caught_up.get(n) for n in numbers],
    )


# --- reads (police API, gauges) --------------------------------------------------------------


async def count_open(pool: asyncpg.Pool) -> dict[tuple[str, str, str, str], int]:
    """Open (pending or breached) deadlines by (rule id, basis, kommune, state)."""
    rows = await pool.fetch(
        "SELECT rule_id, basis, kommune, state, count(*) AS n FROM deadlines"
        " WHERE state IN ('pending', 'breached') GROUP BY rule_id, basis, kommune, state"
    )
    return {(r["rule_id"], r["basis"], r["kommune"], r["state"]): r["n"] for r in rows}


@dataclass(frozen=True, slots=True)
class DeadlineFilter:
    """The police API's list filters, already validated; `state` "open" means pending or breached."""

    state: str | None = None
    kommune: str | None = None
    rule_id: str | None = None
    due_before: datetime | None = None


async def list_deadlines(
    pool: asyncpg.Pool, where: DeadlineFilter, *, limit: int, offset: int
) -> tuple[int, list[dict[str, Any]]]:
    """(how many match, one page of them newest due first)."""
    conditions: list[str] = []
    args: list[Any] = []
    if where.state == "open":
        conditions.append("state IN ('pending', 'breached')")
    elif where.state:
        args.append(where.state)
        conditions.append(f"state = ${len(args)}")
    for column, value in (("kommune", where.kommune), ("rule_id", where.rule_id)):
        if value is not None:
            args.append(value)
            conditions.append(f"{column} = ${len(args)}")
    if where.due_before is not None:
        args.append(where.due_before)
        conditions.append(f"due_at < ${len(args)}")
    # Only fixed fragments and $n placeholders are joined here; every value is a bind parameter.
    clause = ("WHERE " + " AND ".join(conditions)) if conditions else ""
    total: int = await pool.fetchval(f"SELECT count(*) FROM deadlines {clause}", *args)  # noqa: S608
    page = len(args)
    rows = await pool.fetch(
        f"SELECT * FROM deadlines {clause} ORDER BY due_at DESC, id LIMIT ${page + 1} OFFSET ${page + 2}",  # noqa: S608
        *args,
        limit,
        offset,
    )
    return total, [readable_times(r) for r in rows]


async def get_deadline(
    pool: asyncpg.Pool, deadline_id: uuid.UUID
) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """One deadline row and its timeline (oldest first), or None."""
    row = await pool.fetchrow("SELECT * FROM deadlines WHERE id = $1", deadline_id)
    if row is None:
        return None
    timeline = await pool.fetch(
        "SELECT event_id, type, at, data FROM deadline_timeline WHERE deadline_id = $1 ORDER BY at, recorded_at",
        deadline_id,
    )
    # A stored -infinity (written before times were bounded) reads as a far-off time, not a 500.
    return readable_times(row), [readable_times(t) for t in timeline]
