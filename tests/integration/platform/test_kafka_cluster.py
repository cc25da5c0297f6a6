"""Three brokers as production runs them: one is killed -9 under load and restarted; nothing is lost or applied twice.

A private cluster (tests/support/kafka_cluster.py: `make up KAFKA_BROKERS=3` on ports of its own)
carries the whole platform path: events written to a Postgres outbox, published by the outbox
relay through the project's EventProducer (idempotent, acks=all), read by a ReliableConsumer in a
consumer group, applied through the inbox. Topics are created by `ensure_topics` with replication
factor 3 (so min.insync.replicas=2). The broker killed is the consumer group's coordinator, which
also leads some of the topic's partitions: producer and consumer both lose their broker mid-stream.
Neither is restarted; every event must be applied exactly once, and the killed broker must rejoin
every partition's in-sync replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from shared.consumer import ReliableConsumer
from shared.db import create_pool, drop_schema, migrate, shared_migrations
from shared.kafka import EventProducer, ensure_topics, make_broker
from shared.metrics import CONSUMED, OUTBOX_PUBLISH_FAILURES
from shared.outbox import OutboxRelay, enqueue_many
from shared.settings import Topics
from tests.support.infra import unique
from tests.support.kafka_cluster import KafkaCluster
from tests.support.kafka_read import read_all
from tests.support.platform import effect_consumer, sample_report
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(240)
log = logging.getLogger(__name__)

RATE_PER_SECOND = 100  # events written to the outbox while the broker dies and comes back
BEFORE_KILL, DOWN_FOR, AFTER_RESTART = 4.0, 14.0, 4.0  # seconds of writing in each phase


async def describe(bootstrap: str, topic: str) -> tuple[list[dict[str, Any]], str]:
    """The topic's partitions (leader, replicas, isr) and its min.insync.replicas."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
        [configs] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        entries = configs.resources[0][4]
        min_isr = next(str(e[1]) for e in entries if e[0] == "min.insync.replicas")
        return described["partitions"], min_isr
    finally:
        await admin.close()


async def coordinator_of(bootstrap: str, group: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await admin.start()
    try:
        return int(await admin.find_coordinator(group))
    finally:
        await admin.close()


async def test_killing_one_of_three_brokers_under_load_loses_nothing_and_applies_each_event_once(
    database_url: str,
) -> None:
    started = time.monotonic()
    cluster = KafkaCluster()
    topics = Topics(unique("k3") + ".")
    schema = f"{topics.prefix.rstrip('.')}_platform"
    group = unique("g")
    cleanup: list[Any] = []
    try:
        await asyncio.to_thread(cluster.start)
        log.info("cluster of 3 up at %s in %.1fs", cluster.bootstrap, time.monotonic() - started)
        bootstrap = cluster.bootstrap
        await ensure_topics(bootstrap, [topics.cases, topics.dlq("testsvc")], partitions=6, replication_factor=3)
        partitions, min_isr = await describe(bootstrap, topics.cases)
        assert min_isr == "2"
        assert all(len(p["replicas"]) == 3 for p in partitions), partitions

        await migrate(database_url, schema, shared_migrations())
        pool = await create_pool(database_url, schema, application="tests")
        cleanup.append(pool.close)
        relay_producer = EventProducer(bootstrap, client_id="k3-relay")
        relay = OutboxRelay(pool, relay_producer, service="testsvc", schema=schema, poll_seconds=0.2)
        dlq_producer = EventProducer(bootstrap, client_id="k3-dlq")
        broker = make_broker(bootstrap, service="testsvc")
        worker = ReliableConsumer(effect_consumer(topics, group), pool=pool, producer=dlq_producer)
        worker.subscribe(broker)
        await broker.start()
        cleanup += [relay_producer.stop, dlq_producer.stop, broker.stop]
        failures_before = OUTBOX_PUBLISH_FAILURES.labels("testsvc")._value.get()
        relay_task = asyncio.create_task(relay.run())
        cleanup.append(lambda: _cancel(relay_task))

        async def applied() -> int:
            exists = await pool.fetchval("SELECT to_regclass('effects') IS NOT NULL")
            return int(await pool.fetchval("SELECT count(DISTINCT event_id) FROM effects")) if exists else 0

        written: list[str] = []

        async def write_for(seconds: float) -> None:
            """Writes RATE_PER_SECOND events a second to the outbox, ten transactions a second."""
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                events = [sample_report(len(written) + i) for i in range(RATE_PER_SECOND // 10)]
                async with pool.acquire() as conn, conn.transaction():
                    await enqueue_many(conn, events, topic=topics.cases)
                written.extend(str(e.id) for e in events)
                await asyncio.sleep(0.1)

        await write_for(BEFORE_KILL)
        await eventually(lambda: _positive(applied), timeout=30, what="the consumer applies the first events")
        victim = await coordinator_of(bootstrap, group)
        led = [p["partition"] for p in partitions if p["leader"] == victim]
        assert led, f"node {victim} leads none of {topics.cases}'s partitions: {partitions}"
        cluster.kill(victim)
        killed_at, applied_at_kill = time.monotonic(), await applied()
        log.info("killed node %s (group coordinator, leader of partitions %s)", victim, led)

        await write_for(DOWN_FOR)
        applied_while_down = await applied() - applied_at_kill
        # Restarting takes a while (a JVM on a busy machine): keep writing meanwhile.
        restarting_at = time.monotonic()
        restart = asyncio.create_task(asyncio.to_thread(cluster.restart, victim))
        while not restart.done():
            await write_for(1.0)
        await restart
        log.info(
            "node %s restarted in %.1fs, %.1fs after the kill",
            victim,
            time.monotonic() - restarting_at,
            time.monotonic() - killed_at,
        )
        await write_for(AFTER_RESTART)

        expected = set(written)
        await eventually(lambda: _at_least(applied, len(expected)), timeout=60, what=f"all {len(expected)} applied")
        await asyncio.sleep(1.0)  # late duplicates, if any, would land now
        rows = await pool.fetch("SELECT event_id::text FROM effects")
        counts = Counter(r["event_id"] for r in rows)
        assert set(counts) == expected, (
            f"missing {len(expected - set(counts))}, unexpected {len(set(counts) - expected)}"
        )
        assert [e for e, n in counts.items() if n > 1] == []  # applied once each, however often delivered
        assert await pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0
        assert await read_all(bootstrap, topics.dlq("testsvc"), idle=1.0) == []
        # The same producer and consumer objects carried on through the outage: they were never restarted.
        assert applied_while_down > 0, "the consumer stalled while one of three brokers was down"

        async def victim_back_in_sync() -> bool:
            now, _ = await describe(bootstrap, topics.cases)
            return all(victim in p["isr"] for p in now)

        await eventually(victim_back_in_sync, timeout=30, what=f"node {victim} back in every partition's ISR")
        log.info(
            "%d events, %d applied while node %s was down; %d deliveries dropped by the inbox as duplicates,"
            " %d relay batches Kafka did not confirm (sent again)",
            len(expected),
            applied_while_down,
            victim,
            CONSUMED.labels("testsvc", "effects", topics.cases, "duplicate")._value.get(),
            OUTBOX_PUBLISH_FAILURES.labels("testsvc")._value.get() - failures_before,
        )
    finally:
        for step in reversed(cleanup):
            with contextlib.suppress(Exception):
                await step()
        with contextlib.suppress(Exception):
            await drop_schema(database_url, schema)
        await asyncio.to_thread(cluster.stop)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _positive(count: Any) -> bool:
    return bool(await count() > 0)


async def _at_least(count: Any, n: int) -> bool:
    return bool(await count() >= n)
