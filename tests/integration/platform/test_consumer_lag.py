"""Consumer lag on real Kafka: a backlog shows as lag per partition and falls to zero once it is read."""

from __future__ import annotations

import asyncpg
from prometheus_client import REGISTRY

from shared.events import CloudEvent
from tests.integration.platform.test_consumer import Running, publish
from tests.support.infra import Namespace, unique
from tests.support.platform import sample_report
from tests.support.waiting import eventually


def lag(ns: Namespace, partition: int) -> float | None:
    labels = {"service": "testsvc", "consumer": "effects", "topic": ns.topics.cases, "partition": str(partition)}
    return REGISTRY.get_sample_value("consumer_lag_messages", labels)


async def test_a_backlog_shows_as_lag_and_reading_it_brings_the_lag_to_zero(
    ns: Namespace, platform_schema: tuple[str, asyncpg.Pool]
) -> None:
    _, pool = platform_schema
    backlog = [sample_report(i) for i in range(12)]
    await publish(ns, *backlog)  # one key: one partition, published before the consumer starts
    seen: list[float] = []

    async def note_lag(event: CloudEvent) -> None:
        # Runs inside process(), before this message's own lag update: it sees the previous one's.
        seen.extend(v for p in range(3) if (v := lag(ns, p)) is not None)

    async with Running(ns, pool, unique("g")) as worker:
        worker.after_effect = note_lag
        await eventually(lambda: len(seen) >= len(backlog) - 1, timeout=40, what="backlog processed")
        partitions = [p for p in range(3) if lag(ns, p) is not None]
        assert len(partitions) == 1, partitions
        await eventually(lambda: lag(ns, partitions[0]) == 0, timeout=10, what="lag back to zero")
        assert max(seen) >= 1, seen  # while the backlog was read, the gauge showed it

        await publish(ns, *[sample_report(100 + i) for i in range(3)])
        await eventually(lambda: len(seen) >= len(backlog) + 2, timeout=40, what="new messages processed")
        await eventually(lambda: lag(ns, partitions[0]) == 0, timeout=10, what="lag back to zero again")
