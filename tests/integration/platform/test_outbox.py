"""The outbox relay on real Kafka and Postgres: every row out exactly once in effect, whatever dies."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Sequence

import asyncpg
import pytest

from shared.aio import within
from shared.consumer import ReliableConsumer
from shared.events import CloudEvent
from shared.kafka import EventProducer, OutgoingMessage, PublishError, make_broker
from shared.outbox import OutboxRelay, enqueue
from tests.support.infra import ROOT, Namespace, unique
from tests.support.kafka_read import read_all
from tests.support.kafka_route import proxy_for, route_kafka_to
from tests.support.platform import effect_consumer, enqueue_reports, sample_report
from tests.support.waiting import eventually


async def pending(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL"))


async def all_sent(pool: asyncpg.Pool) -> bool:
    return await pending(pool) == 0


async def test_relay_publishes_every_row_exactly_once(ns: Namespace, platform_schema: tuple[str, asyncpg.Pool]) -> None:
    schema, pool = platform_schema
    events = await enqueue_reports(pool, ns.topics, 120)
    producer = EventProducer(ns.kafka, client_id="test")
    relay = OutboxRelay(pool, producer, service="testsvc", schema=schema, batch_size=50)
    task = asyncio.create_task(relay.run())
    try:
        await eventually(lambda: all_sent(pool))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await producer.stop()

    records = await read_all(ns.kafka, ns.topics.cases, expect=120)
    ids = [CloudEvent.from_bytes(r.value).id for r in records]
    assert Counter(ids) == Counter(e.id for e in events)  # each once, none missing
    record = records[0]
    assert record.key == CloudEvent.from_bytes(record.value).subject.encode()  # keyed by case id
    assert dict(record.headers)["content-type"].startswith(b"application/cloudevents+json")


async def test_notify_wakes_the_relay_before_its_poll(ns: Namespace, platform_schema: tuple[str, asyncpg.Pool]) -> None:
    schema, pool = platform_schema
    producer = EventProducer(ns.kafka, client_id="test")
    # A poll period far longer than the wait below: only NOTIFY can make the row go in time.
    relay = OutboxRelay(pool, producer, service="testsvc", schema=schema, poll_seconds=60)
    task = asyncio.create_task(relay.run())
    try:
        await asyncio.sleep(1.0)  # the relay is idle, listening
        await enqueue_reports(pool, ns.topics, 1)
        await eventually(lambda: all_sent(pool), timeout=5.0)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await producer.stop()


async def test_relay_killed_between_publish_and_mark_republishes_and_inbox_absorbs(
    ns: Namespace, platform_schema: tuple[str, asyncpg.Pool]
) -> None:
    schema, pool = platform_schema
    events = await enqueue_reports(pool, ns.topics, 30)
    crashed = subprocess.run(
        [sys.executable, "-m", "tests.support.crash", "relay", ns.kafka, ns.database_url, schema],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert crashed.returncode == -9, crashed.stderr  # died by SIGKILL after Kafka confirmed
    assert "published 30" in crashed.stdout
    assert await pending(pool) == 30  # nothing was marked sent

    producer = EventProducer(ns.kafka, client_id="test")
    relay = OutboxRelay(pool, producer, service="testsvc", schema=schema)
    sent = 0

    async def all_relayed() -> bool:
        # The killed relay's row locks last until Postgres has seen its connection go (a moment, under load).
        nonlocal sent
        sent += await relay.relay_once()
        return sent >= 30

    await eventually(all_relayed, timeout=15, what="the killed relay's 30 rows relayed again")
    assert sent == 30
    await producer.stop()

    records = await read_all(ns.kafka, ns.topics.cases, expect=60)
    per_id = Counter(CloudEvent.from_bytes(r.value).id for r in records)
    assert set(per_id) == {e.id for e in events}
    assert all(n == 2 for n in per_id.values())  # really published twice

    effects = await _consume_effects(ns, pool, expected_events=30, total_records=60)
    assert Counter(effects) == Counter(e.id for e in events)  # ...but applied once each


async def _consume_effects(
    ns: Namespace, pool: asyncpg.Pool, *, expected_events: int, total_records: int
) -> list[uuid.UUID]:
    producer = EventProducer(ns.kafka, client_id="test-consumer")
    broker = make_broker(ns.kafka, service="testsvc")
    worker = ReliableConsumer(effect_consumer(ns.topics, unique("g")), pool=pool, producer=producer)
    seen = 0

    async def count(_: CloudEvent) -> None:
        nonlocal seen
        seen += 1

    worker.after_effect = count
    worker.subscribe(broker)
    await broker.start()
    try:
        await eventually(lambda: seen >= total_records, timeout=40)
    finally:
        await broker.stop()
        await producer.stop()
    return [r["event_id"] for r in await pool.fetch("SELECT event_id FROM effects")]


async def test_rows_wait_while_kafka_is_down_then_go(ns: Namespace, platform_schema: tuple[str, asyncpg.Pool]) -> None:
    """Kafka down (connections refused, through a proxy only this process uses): rows wait, then go."""
    schema, pool = platform_schema
    events = await enqueue_reports(pool, ns.topics, 25)
    proxy = await proxy_for(ns.kafka).start()
    undo = route_kafka_to(proxy.port)
    await proxy.cut()
    producer = EventProducer(ns.kafka, client_id="test", send_timeout=2.0)
    relay = OutboxRelay(pool, producer, service="testsvc", schema=schema, poll_seconds=0.2)
    task = asyncio.create_task(relay.run())
    try:
        await asyncio.sleep(6)
        assert await pending(pool) == 25  # nothing lost, nothing marked
        assert relay.healthy_kafka is False
        last_error = await pool.fetchval("SELECT last_error FROM outbox ORDER BY id LIMIT 1")
        assert last_error  # the table says why rows are stuck
        await proxy.restore()
        await eventually(lambda: all_sent(pool), timeout=60)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await producer.stop()
        undo()
        await proxy.stop()
    records = await read_all(ns.kafka, ns.topics.cases, expect=25)
    assert {CloudEvent.from_bytes(r.value).id for r in records} == {e.id for e in events}


async def test_relay_survives_a_frozen_broker(ns: Namespace, platform_schema: tuple[str, asyncpg.Pool]) -> None:
    """A broker that stops answering but keeps its sockets open (aiokafka#1101): sends time out, never hang.

    The freeze is a proxy only this process's Kafka connections go through, so the shared broker
    keeps serving every other test meanwhile.
    """
    schema, pool = platform_schema
    proxy = await proxy_for(ns.kafka).start()
    undo = route_kafka_to(proxy.port)
    producer = EventProducer(ns.kafka, client_id="test", send_timeout=2.0)
    relay = OutboxRelay(pool, producer, service="testsvc", schema=schema, poll_seconds=0.2)
    task = asyncio.create_task(relay.run())
    try:
        await eventually(lambda: relay.healthy_kafka)
        proxy.freeze()
        try:
            events = await enqueue_reports(pool, ns.topics, 10)
            await asyncio.sleep(5)
            assert await pending(pool) == 10
            assert relay.healthy_kafka is False
            assert not task.done()
        finally:
            proxy.thaw()
        await eventually(lambda: all_sent(pool), timeout=60)
    finally:
        task.cancel()
        await within(asyncio.gather(task, return_exceptions=True), 15)
        await producer.stop()
        undo()
        await proxy.stop()
    records = await read_all(ns.kafka, ns.topics.cases, expect=10)
    assert {e.id for e in events} <= {CloudEvent.from_bytes(r.value).id for r in records}


async def test_enqueue_refuses_to_run_outside_a_transaction(platform_schema: tuple[str, asyncpg.Pool]) -> None:
    _, pool = platform_schema
    async with pool.acquire() as conn:
        with pytest.raises(RuntimeError, match="inside the transaction"):
            await enqueue(conn, sample_report(), topic="x")
    assert await pending(pool) == 0


async def test_two_relays_keep_each_case_in_order(ns: Namespace, platform_schema: tuple[str, asyncpg.Pool]) -> None:
    """With several instances, one relay publishes at a time, so a case's events stay in order."""
    schema, pool = platform_schema
    case_events = await three_events_per_case(pool, ns.topics.cases)
    producers = [SlowProducer(ns.kafka, client_id="test-slow"), EventProducer(ns.kafka, client_id="test-fast")]
    relays = [
        OutboxRelay(pool, p, service="testsvc", schema=schema, batch_size=7, poll_seconds=0.05) for p in producers
    ]
    tasks = [asyncio.create_task(r.run()) for r in relays]
    try:
        await eventually(lambda: all_sent(pool), timeout=30)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for producer in producers:
            await producer.stop()
    assert await order_per_case(ns) == {events[0].subject: [e.id for e in events] for events in case_events}


async def test_a_failing_relay_beside_a_working_one_keeps_each_case_in_order(
    ns: Namespace, platform_schema: tuple[str, asyncpg.Pool]
) -> None:
    """The failing relay notes why rows are stuck; the working one must not publish around that note."""
    schema, pool = platform_schema
    case_events = await three_events_per_case(pool, ns.topics.cases)
    # A slow database while the failure is noted (each noted row takes 0.2 s), so the note's row
    # locks are held long enough for the working relay to run several rounds meanwhile.
    await pool.execute(
        "CREATE FUNCTION slow_note() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN PERFORM pg_sleep(0.2); RETURN NEW; END $$;"
        " CREATE TRIGGER slow_note BEFORE UPDATE ON outbox FOR EACH ROW"
        " WHEN (NEW.last_error IS NOT NULL) EXECUTE FUNCTION slow_note()"
    )
    failing, working = FailingProducer(ns.kafka, client_id="test-failing"), EventProducer(ns.kafka, client_id="test")
    relays = [
        OutboxRelay(pool, p, service="testsvc", schema=schema, batch_size=7, poll_seconds=0.05)
        for p in (failing, working)
    ]
    tasks = [asyncio.create_task(relays[0].run())]
    try:
        await eventually(lambda: failing.calls > 0, timeout=10)  # the failing relay is noting its failure
        await asyncio.sleep(0.3)
        tasks.append(asyncio.create_task(relays[1].run()))
        await eventually(lambda: all_sent(pool), timeout=30)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await working.stop()
    assert await order_per_case(ns) == {events[0].subject: [e.id for e in events] for events in case_events}


async def three_events_per_case(pool: asyncpg.Pool, topic: str, cases: int = 20) -> list[list[CloudEvent]]:
    """Three events for each case, written in three transactions, as a service would over time."""
    case_events = []
    for case in range(cases):
        first = sample_report(case)
        later = [
            CloudEvent.of(first.payload(), source="/mvsj/tests", subject=first.subject, kommune="0265", time=first.time)
            for _ in range(2)
        ]
        case_events.append([first, *later])
    async with pool.acquire() as conn:
        for step in range(3):
            for events in case_events:
                async with conn.transaction():
                    await enqueue(conn, events[step], topic=topic)
    return case_events


async def order_per_case(ns: Namespace) -> dict[str, list[uuid.UUID]]:
    """Each case's event ids in the order Kafka first holds them.

    A send that timed out but reached Kafka is sent again (at-least-once; consumers drop the
    copy), so a repeat is not a reordering: only first occurrences count.
    """
    records = await read_all(ns.kafka, ns.topics.cases, expect=60)
    seen: dict[str, list[uuid.UUID]] = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        event = CloudEvent.from_bytes(record.value)
        order = seen.setdefault(event.subject, [])
        if event.id not in order:
            order.append(event.id)
    return seen


class SlowProducer(EventProducer):
    """A relay whose Kafka is slow: without one-at-a-time publishing, the other relay overtakes it."""

    async def send_batch(self, messages: Sequence[OutgoingMessage]) -> None:
        await asyncio.sleep(0.3)
        await super().send_batch(messages)


class FailingProducer(EventProducer):
    """A relay whose Kafka refuses every batch (say, a broker it alone cannot reach)."""

    calls = 0

    async def send_batch(self, messages: Sequence[OutgoingMessage]) -> None:
        self.calls += 1
        raise PublishError("KafkaConnectionError: unreachable from this relay")
