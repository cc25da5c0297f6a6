"""Consumes cases.v1: parse the event, call the use case `handlers.handle_case_event`, count after the commit."""

from __future__ import annotations

from services.deadlines.adapters.repository import PostgresDeadlinesRepository
from services.deadlines.domain.rules import RuleSet
from services.deadlines.handlers import handle_case_event
from services.deadlines.metrics import count_committed
from shared.consumer import AfterCommit, ConsumerSpec, types_of
from shared.db import Conn
from shared.events import EventData, EventMeta
from shared.events.cases import ActionRecorded, CaseReported, OfficerRequested, TipReceived
from shared.settings import Topics
from shared.unit_of_work import InTransaction

CASE_EVENTS = (CaseReported, TipReceived, OfficerRequested, ActionRecorded)


def case_consumer(rules: RuleSet, topics: Topics) -> ConsumerSpec:
    async def handle(conn: Conn, meta: EventMeta, payload: EventData) -> AfterCommit:
        # The unit of work is the consumer's inbox transaction: the claim and the effect commit together.
        uow = InTransaction(conn, lambda c: PostgresDeadlinesRepository(c, topic=topics.deadlines))
        envelopes = await handle_case_event(uow, meta, payload, rules)
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
