"""The inbox purge on the real broker and database: rows go once no replay can reach them, not before."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from shared.clock import ManualClock
from shared.inbox import InboxPurge
from shared.kafka import delete_topics, topic_retention
from tests.support.infra import Namespace
from tests.support.waiting import eventually

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


async def rows_aged(pool: asyncpg.Pool, *days: int) -> dict[int, uuid.UUID]:
    """One inbox row per age in days, as if processed that long before NOW."""
    ids = {d: uuid.uuid4() for d in days}
    await pool.executemany(
        "INSERT INTO processed_events (consumer, event_id, processed_at) VALUES ('c', $1, $2)",
        [(ids[d], NOW - timedelta(days=d)) for d in days],
    )
    return ids


async def kept(pool: asyncpg.Pool, ids: dict[int, uuid.UUID]) -> list[int]:
    left = {r["event_id"] for r in await pool.fetch("SELECT event_id FROM processed_events")}
    return sorted(d for d, i in ids.items() if i in left)


async def test_rows_older_than_the_topic_and_dead_letter_retention_go_and_younger_ones_stay(
    ns: Namespace, platform_schema: tuple[str, asyncpg.Pool]
) -> None:
    _, pool = platform_schema
    ids = await rows_aged(pool, 1, 14, 16, 40)
    # The namespace's topics keep the broker's default (7 days locally): 7 + 7 + 1 day of margin.
    purge = InboxPurge(pool, ManualClock(NOW), service="testsvc", bootstrap=ns.kafka, consumed=[ns.topics.cases],
                       dead_letters=ns.topics.dead_letters(), margin=DAY)  # fmt: skip
    assert await purge.retention() == timedelta(days=15)
    assert await purge.run_once() == 2
    assert await kept(pool, ids) == [1, 14]


async def test_a_topic_kept_for_ever_keeps_every_row_unless_the_operator_sets_a_retention(
    ns: Namespace, platform_schema: tuple[str, asyncpg.Pool]
) -> None:
    _, pool = platform_schema
    forever = f"{ns.topics.prefix}history.v1"
    admin = AIOKafkaAdminClient(bootstrap_servers=ns.kafka)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(forever, 1, 1, topic_configs={"retention.ms": "-1"})])
    finally:
        await admin.close()
    try:

        async def described() -> bool:
            try:
                return (await topic_retention(ns.kafka, [forever]))[forever] is None
            except RuntimeError:
                return False  # a topic just created is not described by every broker at once

        await eventually(described, timeout=10, what="the new topic described")
        ids = await rows_aged(pool, 1, 400)
        common = {"service": "testsvc", "bootstrap": ns.kafka, "consumed": [ns.topics.cases, forever],
                  "dead_letters": ns.topics.dead_letters(), "margin": DAY}  # fmt: skip
        assert await InboxPurge(pool, ManualClock(NOW), **common).run_once() == 0  # type: ignore[arg-type]
        assert await kept(pool, ids) == [1, 400]
        chosen = InboxPurge(pool, ManualClock(NOW), configured=30 * DAY, **common)  # type: ignore[arg-type]
        assert await chosen.run_once() == 1
        assert await kept(pool, ids) == [1]
    finally:
        await delete_topics(ns.kafka, [forever])
