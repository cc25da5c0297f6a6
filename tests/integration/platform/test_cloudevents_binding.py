"""Our events as a stranger reads them: the official CloudEvents SDK's Kafka reader, on records from Kafka."""

from __future__ import annotations

import asyncpg
from cloudevents.core.bindings.kafka import KafkaMessage, from_kafka_event

from shared.events import CloudEvent
from shared.kafka import EventProducer
from shared.outbox import OutboxRelay
from tests.support.infra import Namespace
from tests.support.kafka_read import read_all
from tests.support.platform import enqueue_reports


async def test_the_sdks_auto_detecting_kafka_reader_reads_our_events(
    ns: Namespace, platform_schema: tuple[str, asyncpg.Pool]
) -> None:
    """`from_kafka` takes any `ce_`-prefixed header for binary mode; ours are structured, so carry none: the
    tracing extension is a member of the envelope."""
    schema, pool = platform_schema
    [sent] = await enqueue_reports(pool, ns.topics, 1)
    producer = EventProducer(ns.kafka, client_id="test")
    try:
        assert await OutboxRelay(pool, producer, service="testsvc", schema=schema).relay_once() == 1
    finally:
        await producer.stop()
    [record] = await read_all(ns.kafka, ns.topics.cases, expect=1)

    message = KafkaMessage(headers=dict(record.headers), key=record.key, value=record.value)
    read = from_kafka_event(message)  # the SDK's ordinary reader, knowing nothing of this project

    assert read.get_id() == str(sent.id)
    assert read.get_type() == "dk.politi.case.reported"
    assert read.get_source() == "/mvsj/tests"
    assert read.get_subject() == sent.subject
    assert read.get_extension("kommune") == "0265"
    assert read.get_data() == sent.data
    assert not [name for name, _ in record.headers if name.lower().startswith("ce_")]
    # Routing without parsing stays possible, under a name no CloudEvents binding claims.
    assert dict(record.headers)["event-type"] == b"dk.politi.case.reported"
    # The Distributed Tracing extension, as the SDK sees it: the relay's publish span, as in the header.
    traceparent = dict(record.headers)["traceparent"].decode()
    assert read.get_extension("traceparent") == traceparent
    received = CloudEvent.from_bytes(record.value)
    assert received.traceparent == traceparent
    assert received.model_copy(update={"traceparent": None}) == sent
