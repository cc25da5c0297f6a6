"""Consumes deadlines.v1: how a case's deadlines stand, so the erasure job knows when its contact details may go."""

from __future__ import annotations

from services.intake.adapters.privacy import PostgresPrivacyRepository
from services.intake.handlers import note_deadline
from shared.consumer import AfterCommit, ConsumerSpec, types_of
from shared.db import Conn
from shared.events import EventData, EventMeta
from shared.events.deadlines import (
    DeadlineBreached,
    DeadlineBreachWithdrawn,
    DeadlineCancelled,
    DeadlineData,
    DeadlineMet,
    DeadlineRescheduled,
    DeadlineStarted,
    DeadlineWarning,
)
from shared.settings import Topics
from shared.unit_of_work import InTransaction

DEADLINE_EVENTS = (
    DeadlineStarted,
    DeadlineWarning,
    DeadlineMet,
    DeadlineBreached,
    DeadlineCancelled,
    DeadlineRescheduled,
    DeadlineBreachWithdrawn,
)


def deadline_consumer(topics: Topics) -> ConsumerSpec:
    async def handle(conn: Conn, meta: EventMeta, payload: EventData) -> AfterCommit | None:
        assert isinstance(payload, DeadlineData)
        # The unit of work is the consumer's inbox transaction: the claim and the effect commit together.
        await note_deadline(InTransaction(conn, PostgresPrivacyRepository), payload)
        return None

    return ConsumerSpec(
        service="intake",
        name="intake-deadlines",
        group_id=f"{topics.prefix}intake",
        topics=[topics.deadlines],
        handler=handle,
        dlq_topic=topics.dlq("intake"),
        event_types=types_of(*DEADLINE_EVENTS),
    )
