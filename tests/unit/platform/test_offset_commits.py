"""Offsets are committed off the message path: only finished messages, coalesced, and never for a partition lost."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import pytest
from aiokafka import ConsumerRecord, TopicPartition
from faststream._internal.context import Context  # the class shared.consumer resolves messages with
from faststream.kafka import KafkaBroker, TestKafkaBroker

from shared.consumer import KafkaMessage, OffsetCommitter

pytestmark = pytest.mark.unit

TOPIC = "commitunit.cases.v1"


def record(partition: int, offset: int) -> ConsumerRecord:
    return ConsumerRecord(
        topic=TOPIC, partition=partition, offset=offset, timestamp=0, timestamp_type=0, key=None, value=b"",
        checksum=None, serialized_key_size=0, serialized_value_size=0, headers=[],
    )  # fmt: skip


class SlowCoordinator:
    """Enough of an AIOKafkaConsumer: each commit waits until the test lets it through."""

    def __init__(self, partitions: set[int], fail: bool = False) -> None:
        self.assigned = {TopicPartition(TOPIC, p) for p in partitions}
        self.commits: list[dict[TopicPartition, int]] = []
        self.gate = asyncio.Event()
        self.fail = fail

    def assignment(self) -> set[TopicPartition]:
        return self.assigned

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        await self.gate.wait()
        if self.fail:
            raise RuntimeError("coordinator moved")
        self.commits.append(dict(offsets))


def committer(fake: SlowCoordinator) -> OffsetCommitter:
    return OffsetCommitter(fake, "effects")


async def test_messages_finished_while_a_commit_is_in_flight_go_in_one_next_commit_with_their_last_offsets() -> None:
    fake = SlowCoordinator({0, 1})
    c = committer(fake)
    c.done(record(0, 4))
    await asyncio.sleep(0)  # the first commit is on its way (and waits at the gate)
    for offset in (5, 6, 7):
        c.done(record(0, offset))
    c.done(record(1, 2))
    fake.gate.set()
    await c.flush()
    assert fake.commits == [
        {TopicPartition(TOPIC, 0): 5},
        {TopicPartition(TOPIC, 0): 8, TopicPartition(TOPIC, 1): 3},  # the next offset to read: last done + 1
    ]


async def test_a_partition_taken_away_by_a_rebalance_is_left_to_its_new_owner() -> None:
    fake = SlowCoordinator({0, 1})
    c = committer(fake)
    c.done(record(0, 1))
    c.done(record(1, 1))
    fake.assigned = {TopicPartition(TOPIC, 1)}  # partition 0 revoked before the commit started
    fake.gate.set()
    await c.flush()
    assert fake.commits == [{TopicPartition(TOPIC, 1): 2}]


async def test_a_failed_commit_is_logged_and_the_next_one_still_goes_out(caplog: pytest.LogCaptureFixture) -> None:
    fake = SlowCoordinator({0}, fail=True)
    c = committer(fake)
    c.done(record(0, 1))
    fake.gate.set()
    with caplog.at_level(logging.WARNING, logger="shared.consumer"):
        await c.flush()
    assert "offset commit failed" in caplog.text
    fake.fail = False
    c.done(record(0, 2))
    await c.flush()
    assert fake.commits == [{TopicPartition(TOPIC, 0): 3}]


async def test_the_message_reaches_the_handler_without_a_thread_hop(monkeypatch: pytest.MonkeyPatch) -> None:
    """FastStream's stock `KafkaMessage` is resolved in a worker thread per message; ours in the event loop."""
    hops: list[str] = []
    real = Context.use

    def noting(self: Any, /, **kwargs: Any) -> dict[str, Any]:
        hops.append(threading.current_thread().name)
        return real(self, **kwargs)

    monkeypatch.setattr(Context, "use", noting)
    broker = KafkaBroker()
    seen: list[bytes] = []

    @broker.subscriber(TOPIC, group_id="g")
    async def handle(msg: KafkaMessage) -> None:
        seen.append(msg.body)

    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(b"one", TOPIC)
    assert seen == [b"one"]
    assert hops == [threading.main_thread().name]
