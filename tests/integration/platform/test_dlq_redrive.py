"""`dlq redrive` on real Kafka and Postgres: a poison event dead-lettered by a ReliableConsumer, the cause
fixed, the event published back and applied once; a second redrive changes nothing."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections import Counter
from types import SimpleNamespace

import asyncpg
import pytest

from shared.consumer import ReliableConsumer
from shared.db import Conn
from shared.dlq import dead_letter_message, headers_dict
from shared.dlq_tool import parse, run
from shared.events import CloudEvent, EventData, EventMeta
from shared.kafka import EventProducer, OutgoingMessage, make_broker
from shared.settings import ServiceSettings
from tests.support.infra import Namespace, unique
from tests.support.kafka_read import read_all
from tests.support.platform import effect_consumer, record_effect, sample_report
from tests.support.waiting import eventually


@pytest.fixture(autouse=True)
def _quiet_faststream(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("ERROR", logger="faststream")


def tool_settings(ns: Namespace, schema: str) -> ServiceSettings:
    return ServiceSettings(
        kafka_bootstrap_servers=ns.kafka,
        kafka_topic_prefix=ns.topics.prefix,
        database_url=ns.database_url,
        db_schema=schema,
    )


async def dlq(settings: ServiceSettings, *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = await run("testsvc", settings, parse("testsvc", argv), out=out)
    return code, out.getvalue()


async def effects(pool: asyncpg.Pool) -> list[uuid.UUID]:
    exists = await pool.fetchval("SELECT to_regclass('effects') IS NOT NULL")
    return [r["event_id"] for r in await pool.fetch("SELECT event_id FROM effects")] if exists else []


async def test_a_dead_letter_redriven_after_the_fix_is_applied_once_and_a_second_redrive_changes_nothing(
    ns: Namespace, platform_schema: tuple[str, asyncpg.Pool], capsys: pytest.CaptureFixture[str]
) -> None:
    schema, pool = platform_schema
    settings = tool_settings(ns, schema)
    poison, good = sample_report(50), sample_report(51)
    broken = True

    async def handler(conn: Conn, event: EventMeta, payload: EventData) -> None:
        if broken and event.id == poison.id:
            raise ZeroDivisionError("a bug in the handler")
        await record_effect(conn, event, payload)

    producer = EventProducer(ns.kafka, client_id="test-publisher")
    originals = [
        OutgoingMessage(ns.topics.cases, b"case-key", e.to_bytes(), [("traceparent", f"00-{e.id.hex}-01".encode())])
        for e in (poison, good)
    ]
    await producer.send_batch(originals)
    await producer.stop()

    consumer_producer = EventProducer(ns.kafka, client_id="test-consumer")
    broker = make_broker(ns.kafka, service="testsvc")
    worker = ReliableConsumer(
        effect_consumer(ns.topics, unique("g"), handler=handler, max_attempts=2), pool=pool, producer=consumer_producer
    )
    worker.subscribe(broker)
    await broker.start()
    try:
        await eventually(lambda: _applied(pool, good.id), timeout=40, what="the good event applied")
        dead = await read_all(ns.kafka, ns.topics.dlq("testsvc"), expect=1)
        assert [CloudEvent.from_bytes(d.value).id for d in dead] == [poison.id]
        position = f"{dead[0].partition}:{dead[0].offset}"

        code, listing = await dlq(settings, "list")
        assert code == 0
        row = next(line for line in listing.splitlines() if line.startswith(position))
        assert ns.topics.cases in row and "case.reported" in row and str(poison.id) in row
        assert "ZeroDivisionError: a bug in the handler" in row
        assert row.split()[7] == "-"  # the REDRIVEN column: not yet

        code, shown = await dlq(settings, "show", str(poison.id))
        assert code == 0 and f'"id": "{poison.id}"' in shown and "traceparent: 00-" in shown

        code, _ = await dlq(settings, "redrive", "9:999")
        assert code == 1 and "no entry 9:999" in capsys.readouterr().err

        code, dry = await dlq(settings, "redrive", "--dry-run", "--reason", "zerodivision")
        assert code == 0 and f"would redrive {position}" in dry

        broken = False  # the cause fixed
        code, first = await dlq(settings, "redrive", position, "--by", "vagthavende-it")
        assert code == 0 and "redriven 1 of 1" in first
        await eventually(lambda: _applied(pool, poison.id), timeout=40, what="the redriven event applied")

        code, second = await dlq(settings, "redrive", position)
        assert code == 0 and "redriven 0 of 1" in second and "skipped 1 already redriven" in second
        assert "by vagthavende-it" in second
        code, third = await dlq(settings, "redrive", "--all")
        assert code == 0 and "redriven 0 of 1" in third

        code, listing = await dlq(settings, "list")
        row = next(line for line in listing.splitlines() if line.startswith(position))
        assert row.split()[7].endswith("Z")  # the REDRIVEN column: when
    finally:
        await broker.stop()
        await consumer_producer.stop()

    # On the original topic: the two originals and exactly one redrive (none from the dry run or the
    # second and third redrives), with the original key, bytes and headers and no dlq.* header.
    on_topic = await read_all(ns.kafka, ns.topics.cases, expect=3, timeout=20)
    assert len(on_topic) == 3
    again = max(on_topic, key=lambda r: r.offset)  # one key: one partition, the redrive last
    assert (again.key, again.value) == (originals[0].key, originals[0].value)
    assert headers_dict(again.headers) == {"traceparent": f"00-{poison.id.hex}-01"}
    assert Counter(await effects(pool)) == Counter([good.id, poison.id])  # each applied once
    redriven = await pool.fetchrow("SELECT * FROM dlq_redriven")
    assert redriven is not None
    assert redriven["redriven_at"] is not None and redriven["redriven_by"] == "vagthavende-it"
    assert redriven["original_topic"] == ns.topics.cases and redriven["event_id"] == str(poison.id)


async def _applied(pool: asyncpg.Pool, event_id: uuid.UUID) -> bool:
    return event_id in await effects(pool)


async def test_kafka_unreachable_says_what_to_check_and_changes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    settings = ServiceSettings(kafka_bootstrap_servers="127.0.0.1:1", db_schema="nowhere")
    code = await run("testsvc", settings, parse("testsvc", ["redrive", "--all"]), out=io.StringIO())
    err = capsys.readouterr().err
    assert code == 1
    assert "Kafka does not answer at 127.0.0.1:1" in err and "make status" in err and "nothing was read" in err


async def dead_letter_directly(ns: Namespace, events: list[CloudEvent]) -> None:
    """DLQ entries as a ReliableConsumer writes them, without running one (the consumer is proven above)."""
    producer = EventProducer(ns.kafka, client_id="test-dlq-writer")
    await producer.send_batch(
        [
            dead_letter_message(
                dlq_topic=ns.topics.dlq("testsvc"),
                service="testsvc",
                consumer="effects",
                record=SimpleNamespace(
                    topic=ns.topics.cases, partition=0, offset=i, key=b"k", value=e.to_bytes(), headers=[]
                ),
                error="Rejected: not yet",
                attempts=1,
            )
            for i, e in enumerate(events)
        ]
    )
    await producer.stop()


async def test_two_redrives_at_once_publish_each_entry_once(
    ns: Namespace, platform_schema: tuple[str, asyncpg.Pool]
) -> None:
    schema, _ = platform_schema
    settings = tool_settings(ns, schema)
    events = [sample_report(60 + i) for i in range(6)]
    await dead_letter_directly(ns, events)
    await read_all(ns.kafka, ns.topics.dlq("testsvc"), expect=6)

    results = await asyncio.gather(*(dlq(settings, "redrive", "--all") for _ in range(2)))
    assert [code for code, _ in results] == [0, 0]
    on_topic = await read_all(ns.kafka, ns.topics.cases, expect=6, timeout=20)
    assert Counter(CloudEvent.from_bytes(r.value).id for r in on_topic) == Counter(e.id for e in events)


async def test_a_redrive_cut_off_before_kafka_confirmed_is_not_repeated_unless_asked(
    ns: Namespace, platform_schema: tuple[str, asyncpg.Pool]
) -> None:
    schema, pool = platform_schema
    settings = tool_settings(ns, schema)
    event = sample_report(70)
    await dead_letter_directly(ns, [event])
    (dead,) = await read_all(ns.kafka, ns.topics.dlq("testsvc"), expect=1)
    # What a run killed between its claim and Kafka's answer leaves behind.
    await pool.execute(
        "INSERT INTO dlq_redriven (dlq_topic, dlq_partition, dlq_offset, original_topic, event_id, redriven_by)"
        " VALUES ($1, $2, $3, $4, $5, 'killed-run')",
        ns.topics.dlq("testsvc"), dead.partition, dead.offset, ns.topics.cases, str(event.id),
    )  # fmt: skip

    code, listing = await dlq(settings, "list")
    assert code == 0 and "unconfirmed" in listing
    code, out = await dlq(settings, "redrive", "--all")
    assert code == 0 and "redriven 0 of 1" in out and "skipped 1 unconfirmed" in out and "killed-run" in out
    assert await read_all(ns.kafka, ns.topics.cases, idle=1.0) == []

    code, out = await dlq(settings, "redrive", "--all", "--include-unconfirmed", "--by", "checked")
    assert code == 0 and "redriven 1 of 1" in out
    code, out = await dlq(settings, "redrive", "--all", "--include-unconfirmed")
    assert code == 0 and "redriven 0 of 1" in out and "already redriven" in out
    on_topic = await read_all(ns.kafka, ns.topics.cases, expect=1, timeout=20)
    assert [CloudEvent.from_bytes(r.value).id for r in on_topic] == [event.id]
    assert await pool.fetchval("SELECT redriven_by FROM dlq_redriven") == "checked"
