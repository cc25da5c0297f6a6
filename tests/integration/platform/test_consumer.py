"""Reliable consumption on real Kafka and Postgres: redelivery is harmless, bad input goes to the DLQ."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections import Counter

import asyncpg
import pytest

from shared import inbox
from shared.consumer import ReliableConsumer
from shared.db import Conn
from shared.dlq import headers_dict
from shared.events import CloudEvent, EventData, EventMeta
from shared.kafka import EventProducer, OutgoingMessage, make_broker
from tests.support.infra import ROOT, Namespace, unique
from tests.support.kafka_read import read_all
from tests.support.platform import effect_consumer, sample_report
from tests.support.waiting import eventually


async def publish(ns: Namespace, *payloads: bytes | CloudEvent) -> None:
    producer = EventProducer(ns.kafka, client_id="test-publisher")
    messages = []
    for p in payloads:
        if isinstance(p, CloudEvent):
            messages.append(OutgoingMessage(ns.topics.cases, p.subject.encode(), p.to_bytes()))
        else:
            messages.append(OutgoingMessage(ns.topics.cases, b"same-key", p))
    # one key for all: one partition, so "the next message" is well defined
    messages = [OutgoingMessage(m.topic, b"same-key", m.value) for m in messages]
    await producer.send_batch(messages)
    await producer.stop()


async def effects(pool: asyncpg.Pool) -> list[uuid.UUID]:
    exists = await pool.fetchval("SELECT to_regclass('effects') IS NOT NULL")
    return [r["event_id"] for r in await pool.fetch("SELECT event_id FROM effects")] if exists else []


class Running:
    """A ReliableConsumer on a real broker inside the test's event loop."""

    def __init__(self, ns: Namespace, pool: asyncpg.Pool, group: str, **overrides: object) -> None:
        self.producer = EventProducer(ns.kafka, client_id="test-consumer")
        self.broker = make_broker(ns.kafka, service="testsvc")
        self.worker = ReliableConsumer(
            effect_consumer(ns.topics, group, **overrides), pool=pool, producer=self.producer
        )
        self.worker.subscribe(self.broker)

    async def __aenter__(self) -> ReliableConsumer:
        await self.broker.start()
        return self.worker

    async def __aexit__(self, *exc: object) -> None:
        await self.broker.stop()
        await self.producer.stop()


def run_crashing_consumer(
    ns: Namespace, schema: str, group: str, mode: str = "consumer"
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.support.crash",
            mode,
            ns.kafka,
            ns.database_url,
            schema,
            ns.topics.prefix,
            group,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )


async def _crash_then_resume(
    ns: Namespace, platform_schema: tuple[str, asyncpg.Pool]
) -> tuple[list[uuid.UUID], CloudEvent, CloudEvent]:
    schema, pool = platform_schema
    first, second = sample_report(1), sample_report(2)
    await publish(ns, first, second)
    group = unique("g")
    crashed = run_crashing_consumer(ns, schema, group)
    assert crashed.returncode == -9, crashed.stderr[-2000:]  # killed after its effect, before the commit
    assert f"applied {first.id}" in crashed.stdout
    assert await effects(pool) == [first.id]  # the effect is durable

    async with Running(ns, pool, group):
        await eventually(lambda: _has(pool, second.id), timeout=40, what="second event applied")
    return await effects(pool), first, second


async def _has(pool: asyncpg.Pool, event_id: uuid.UUID) -> bool:
    return event_id in await effects(pool)


async def test_consumer_killed_before_commit_gets_the_event_again_and_the_inbox_ignores_it(
    ns: Namespace, platform_schema: tuple[str, asyncpg.Pool]
) -> None:
    applied, first, second = await _crash_then_resume(ns, platform_schema)
    assert Counter(applied) == Counter([first.id, second.id])  # redelivered, but applied once
    _, pool = platform_schema
    assert await pool.fetchval("SELECT count(*) FROM processed_events WHERE consumer = 'effects'") == 2


async def test_finished_messages_are_committed_so_the_groups_next_consumer_starts_after_them(
    ns: Namespace, platform_schema: tuple[str, asyncpg.Pool]
) -> None:
    """Commits run in the background (OffsetCommitter); they still happen, for every finished message."""
    _, pool = platform_schema
    earlier = [sample_report(i) for i in range(20, 25)]
    await publish(ns, *earlier)
    group = unique("g")
    async with Running(ns, pool, group) as worker:
        await eventually(lambda: _has(pool, earlier[-1].id), timeout=40, what="first batch applied")
        await worker.flush_commits()
    later = sample_report(25)
    await publish(ns, later)
    read: list[uuid.UUID] = []

    async def note(event: CloudEvent) -> None:
        read.append(event.id)

    async with Running(ns, pool, group) as worker:
        worker.after_effect = note
        await eventually(lambda: later.id in read, timeout=40, what="the later event read")
    assert read == [later.id]  # none of the earlier ones came again


async def test_without_the_inbox_the_redelivery_would_apply_twice(
    ns: Namespace, platform_schema: tuple[str, asyncpg.Pool], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shows the test above can fail: with the inbox switched off, the same event is applied twice."""

    async def always_new(conn: Conn, consumer: str, event_id: uuid.UUID) -> bool:
        return True

    monkeypatch.setattr(inbox, "claim", always_new)
    applied, first, _ = await _crash_then_resume(ns, platform_schema)
    assert Counter(applied)[first.id] == 2


async def test_malformed_message_goes_to_dlq_with_its_reason_and_the_next_is_processed(
    ns: Namespace, platform_schema: tuple[str, asyncpg.Pool]
) -> None:
    _, pool = platform_schema
    good = sample_report(3)
    bad_json = b'{"specversion": "1.0", "id": '
    wrong_kommune = sample_report(4).model_dump(mode="json") | {"kommune": "0101"}  # Copenhagen: not ours
    import json

    await publish(ns, bad_json, json.dumps(wrong_kommune).encode(), good)
    async with Running(ns, pool, unique("g")):
        await eventually(lambda: _has(pool, good.id), timeout=40, what="good event applied")

    dead = await read_all(ns.kafka, ns.topics.dlq("testsvc"), expect=2)
    assert len(dead) == 2
    first, second = (headers_dict(d.headers) for d in dead)
    assert dead[0].value == bad_json  # the original bytes, untouched
    assert first["dlq.original.topic"] == ns.topics.cases
    assert first["dlq.original.offset"] == "0" and first["dlq.original.partition"].isdigit()
    assert "invalid event" in first["dlq.error"] and "json" in first["dlq.error"].lower()
    assert "kommune" in second["dlq.error"] and second["dlq.original.offset"] == "1"
    assert await effects(pool) == [good.id]


async def test_a_handler_that_keeps_failing_dead_letters_the_event_after_its_attempts(
    ns: Namespace, platform_schema: tuple[str, asyncpg.Pool]
) -> None:
    _, pool = platform_schema
    poison, good = sample_report(5), sample_report(6)
    calls: Counter[str] = Counter()

    async def flaky(conn: Conn, event: EventMeta, payload: EventData) -> None:
        calls[str(event.id)] += 1
        if event.id == poison.id:
            raise ZeroDivisionError("a bug in the handler")
        from tests.support.platform import record_effect

        await record_effect(conn, event, payload)

    await publish(ns, poison, good)
    async with Running(ns, pool, unique("g"), handler=flaky, max_attempts=3):
        await eventually(lambda: _has(pool, good.id), timeout=40, what="good event applied")

    assert calls[str(poison.id)] == 3  # retried, then given up
    dead = await read_all(ns.kafka, ns.topics.dlq("testsvc"), expect=1)
    assert [CloudEvent.from_bytes(d.value).id for d in dead] == [poison.id]
    reason = headers_dict(dead[0].headers)
    assert reason["dlq.error"].startswith("ZeroDivisionError") and reason["dlq.attempts"] == "3"
    assert await effects(pool) == [good.id]  # the poison's failed attempts left nothing behind


async def test_unknown_event_types_are_skipped_not_dead_lettered(
    ns: Namespace, platform_schema: tuple[str, asyncpg.Pool]
) -> None:
    _, pool = platform_schema
    future = sample_report(7).model_dump(mode="json") | {"type": "dk.politi.case.teleported"}
    good = sample_report(8)
    import json

    await publish(ns, json.dumps(future).encode(), good)
    async with Running(ns, pool, unique("g")):
        await eventually(lambda: _has(pool, good.id), timeout=40)
    assert await read_all(ns.kafka, ns.topics.dlq("testsvc"), idle=1.0) == []


@pytest.fixture(autouse=True)
def _quiet_faststream(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("ERROR", logger="faststream")


async def test_consumer_killed_on_receipt_before_its_effect_gets_the_event_again(
    ns: Namespace, platform_schema: tuple[str, asyncpg.Pool]
) -> None:
    """Fails with FastStream's default AckPolicy.ACK_FIRST, which commits before the handler runs."""
    schema, pool = platform_schema
    event = sample_report(9)
    await publish(ns, event)
    group = unique("g")
    crashed = run_crashing_consumer(ns, schema, group, mode="consumer-before")
    assert crashed.returncode == -9, crashed.stderr[-2000:]
    assert f"received {event.id}" in crashed.stdout
    assert await effects(pool) == []
    async with Running(ns, pool, group):
        await eventually(lambda: _has(pool, event.id), timeout=40, what="event delivered again and applied")
    assert await effects(pool) == [event.id]


async def test_a_database_outage_is_waited_out_not_dead_lettered(
    ns: Namespace, platform_schema: tuple[str, asyncpg.Pool]
) -> None:
    from shared.db import create_pool
    from tests.support.tcp_proxy import TcpProxy

    schema, pool = platform_schema
    proxy = await TcpProxy.to(ns.database_url).start()
    cut_pool = await create_pool(proxy.url(ns.database_url), schema, application="tests-cut", command_timeout=3)
    events = [sample_report(20 + i) for i in range(5)]
    try:
        async with Running(ns, cut_pool, unique("g"), max_attempts=2) as worker:
            await publish(ns, events[0])
            await eventually(lambda: _has(pool, events[0].id), timeout=40)
            await proxy.cut()
            await publish(ns, *events[1:])
            await eventually(lambda: _retries(worker) >= 3, timeout=40, what="retrying while the database is away")
            await proxy.restore()
            await eventually(lambda: _has(pool, events[-1].id), timeout=60, what="caught up after the outage")
    finally:
        await cut_pool.close()
        await proxy.stop()
    assert Counter(await effects(pool)) == Counter(e.id for e in events)  # each once, in spite of retries
    assert await read_all(ns.kafka, ns.topics.dlq("testsvc"), idle=1.0) == []  # max_attempts=2 never reached


def _retries(worker: ReliableConsumer) -> float:
    from shared.metrics import CONSUMER_RETRIES

    return float(CONSUMER_RETRIES.labels("testsvc", worker.spec.name, "database")._value.get())


async def test_a_query_that_always_times_out_is_dead_lettered_not_retried_for_ever(
    ns: Namespace, platform_schema: tuple[str, asyncpg.Pool]
) -> None:
    """A timeout while the database answers is the event's own fault: counted, then dead-lettered."""
    from shared.db import create_pool
    from tests.support.platform import record_effect

    schema, pool = platform_schema
    slow, good = sample_report(30), sample_report(31)

    async def too_slow_for_one(conn: Conn, event: EventMeta, payload: EventData) -> None:
        if event.id == slow.id:
            await conn.execute("SELECT pg_sleep(3)")  # longer than the pool's command timeout
        await record_effect(conn, event, payload)

    short_pool = await create_pool(ns.database_url, schema, application="tests-short", command_timeout=0.5)
    try:
        await publish(ns, slow, good)
        async with Running(ns, short_pool, unique("g"), handler=too_slow_for_one, max_attempts=2):
            await eventually(lambda: _has(pool, good.id), timeout=40, what="the event behind the slow one applied")
    finally:
        await short_pool.close()
    dead = await read_all(ns.kafka, ns.topics.dlq("testsvc"), expect=1)
    assert [CloudEvent.from_bytes(d.value).id for d in dead] == [slow.id]
    assert headers_dict(dead[0].headers)["dlq.error.class"] == "TimeoutError"


async def test_an_unexpected_error_outside_the_handler_is_retried_then_dead_lettered(
    ns: Namespace, platform_schema: tuple[str, asyncpg.Pool], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error of no foreseen class (here a bug while reading the payload) must not be skipped in silence."""
    _, pool = platform_schema
    poison, good = sample_report(40), sample_report(41)
    reads: Counter[str] = Counter()
    real_payload = CloudEvent.payload

    def payload_with_a_bug(self: CloudEvent) -> EventData:
        reads[str(self.id)] += 1
        if self.id == poison.id:
            raise LookupError("a bug while reading the payload")
        return real_payload(self)

    monkeypatch.setattr(CloudEvent, "payload", payload_with_a_bug)
    await publish(ns, poison, good)
    async with Running(ns, pool, unique("g"), max_attempts=3):
        await eventually(lambda: _has(pool, good.id), timeout=40, what="good event applied")
        dead = await read_all(ns.kafka, ns.topics.dlq("testsvc"), expect=1, timeout=20)
    assert [CloudEvent.from_bytes(d.value).id for d in dead] == [poison.id]
    reason = headers_dict(dead[0].headers)
    assert reason["dlq.error.class"] == "LookupError" and reason["dlq.attempts"] == "3"
    assert reads[str(poison.id)] == 3
