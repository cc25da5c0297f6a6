"""Consumes cases.v1: each case event may start, meet, move or cancel deadlines (thin: parse -> domain -> save)."""

from __future__ import annotations

from collections.abc import Callable

from services.deadlines.adapters import repository
from services.deadlines.domain.case_deadlines import CaseDeadlines
from services.deadlines.domain.rules import RuleSet
from services.deadlines.metrics import count_committed
from shared.consumer import AfterCommit, ConsumerSpec, Rejected, types_of
from shared.db import Conn
from shared.events import CloudEvent, EventData
from shared.events.cases import ActionRecorded, CaseReported, OfficerRequested, TipReceived
from shared.settings import Topics

CASE_EVENTS = (CaseReported, TipReceived, OfficerRequested, ActionRecorded)


def case_consumer(rules: Callable[[], RuleSet], topics: Topics) -> ConsumerSpec:
    """`rules` is a getter so a reload of the rules file applies to the next event."""

    async def handle(conn: Conn, event: CloudEvent, payload: EventData) -> AfterCommit:
        case_id = payload.case_id  # type: ignore[attr-defined]
        if str(case_id) != event.subject:
            raise Rejected(f"subject {event.subject} is not the case id {case_id} in data")
        await repository.lock_case(conn, case_id, event.kommune)
        case: CaseDeadlines = await repository.load_case(conn, case_id)
        emitted = case.apply(event, rules())
        await repository.save_case(conn, case)
        kommune_of = {d.id: d.kommune for d in case.deadlines.values()}
        envelopes = await repository.record_and_emit(conn, emitted, kommune_of, topics.deadlines)
        return lambda: count_committed(envelopes)

    return ConsumerSpec(
        service="deadlines",
        name="deadlines-cases",
        group_id=f"{topics.prefix}deadlines",
        topics=[topics.cases],
        handler=handle,
        dlq_topic=topics.dlq("deadlines"),
        event_types=types_of(*CASE_EVENTS),
    )
