"""Consumes cases.v1 (case references) and deadlines.v1 (what raises and resolves alerts): parse -> handler -> done."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from services.notify import handlers
from services.notify.adapters.repository import PostgresNotifyRepository
from services.notify.metrics import count_events
from shared.consumer import AfterCommit, ConsumerSpec, types_of
from shared.db import Conn
from shared.events import EventData, EventMeta
from shared.events import cases as case_events
from shared.events import deadlines as deadline_events
from shared.settings import Topics
from shared.unit_of_work import InTransaction

CASE_EVENTS = (case_events.CaseReported, case_events.TipReceived, case_events.OfficerRequested)
DEADLINE_EVENTS = (
    deadline_events.DeadlineStarted,
    deadline_events.DeadlineWarning,
    deadline_events.DeadlineBreached,
    deadline_events.DeadlineMet,
    deadline_events.DeadlineCancelled,
    deadline_events.DeadlineRescheduled,
    deadline_events.DeadlineBreachWithdrawn,
)


def notify_consumers(
    ctx: handlers.Context, topics: Topics, now: Callable[[], datetime], *, workers: int = 1
) -> list[ConsumerSpec]:
    """Two consumers: case references (light), and deadline events, with `workers` consumers in the
    group so partitions are handled in parallel (each partition, so each case, still in order)."""

    def in_inbox_transaction(conn: Conn) -> InTransaction[PostgresNotifyRepository]:
        # The unit of work is the consumer's inbox transaction: the claim and the effect commit together.
        return InTransaction(conn, lambda c: PostgresNotifyRepository(c, topic=ctx.alerts_topic))

    async def on_case(conn: Conn, meta: EventMeta, payload: EventData) -> AfterCommit | None:
        await handlers.handle_case_event(in_inbox_transaction(conn), meta, payload)
        return None

    async def on_deadline(conn: Conn, meta: EventMeta, payload: EventData) -> AfterCommit | None:
        at = now()
        applied = await handlers.handle_deadline_event(in_inbox_transaction(conn), meta, payload, ctx, at)
        return lambda: count_events(applied.events, applied.shown, at)

    cases = ConsumerSpec(
        service="notify",
        name="notify-cases",
        group_id=f"{topics.prefix}notify-cases",
        topics=[topics.cases],
        handler=on_case,
        dlq_topic=topics.dlq("notify"),
        event_types=types_of(*CASE_EVENTS),
    )
    deadlines = ConsumerSpec(
        service="notify",
        name="notify-deadlines",
        group_id=f"{topics.prefix}notify",
        topics=[topics.deadlines],
        handler=on_deadline,
        dlq_topic=topics.dlq("notify"),
        event_types=types_of(*DEADLINE_EVENTS),
        subscriber_options={"max_workers": workers} if workers > 1 else {},
    )
    return [cases, deadlines]
