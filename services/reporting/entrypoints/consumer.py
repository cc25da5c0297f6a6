"""Consumes cases.v1, deadlines.v1 and alerts.v1 into the read model (thin: parse -> handler, one event each)."""

from __future__ import annotations

from services.reporting import handlers
from services.reporting.adapters.repository import PostgresReadModel
from shared.consumer import AfterCommit, ConsumerSpec
from shared.db import Conn
from shared.events import EventData, EventMeta
from shared.settings import Topics
from shared.unit_of_work import InTransaction

SERVICE = "reporting"


def read_model_consumer(topics: Topics) -> ConsumerSpec:
    async def handle(conn: Conn, meta: EventMeta, payload: EventData) -> AfterCommit | None:
        # The unit of work is the consumer's inbox transaction: the claim and the effect commit together.
        await handlers.handle(InTransaction(conn, PostgresReadModel), meta, payload)
        return None

    return ConsumerSpec(
        service=SERVICE,
        name="reporting-read-model",
        group_id=f"{topics.prefix}reporting",
        topics=[topics.cases, topics.deadlines, topics.alerts],
        handler=handle,
        dlq_topic=topics.dlq(SERVICE),
        # alerts.v1 grows new types; those reporting does not read are skipped, never dead-lettered.
        event_types=handlers.HANDLED_TYPES,
    )
