"""consumer_lag_messages arithmetic: high-water mark minus the next offset to read, which a nack moves back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition
from faststream.message import AckStatus
from prometheus_client import REGISTRY

from shared.consumer import observe_lag
from shared.settings import Topics
from tests.support.platform import effect_consumer

TOPIC = "lagunit.cases.v1"


@dataclass
class FakeConsumer:
    marks: dict[TopicPartition, int | None]

    def highwater(self, partition: TopicPartition) -> int | None:
        if partition not in self.marks:
            raise AssertionError("Partition is not assigned")  # what aiokafka does after a revocation
        return self.marks[partition]


@dataclass
class FakeMessage:
    raw_message: Any
    consumer: Any
    committed: AckStatus | None = AckStatus.ACKED


def record(partition: int, offset: int) -> ConsumerRecord:
    return ConsumerRecord(
        topic=TOPIC,
        partition=partition,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=None,
        value=b"",
        checksum=None,
        serialized_key_size=0,
        serialized_value_size=0,
        headers=[],
    )


def lag(partition: int) -> float | None:
    labels = {"service": "testsvc", "consumer": "effects", "topic": TOPIC, "partition": str(partition)}
    return REGISTRY.get_sample_value("consumer_lag_messages", labels)


SPEC = effect_consumer(Topics(prefix="lagunit."), "g")


def test_lag_after_an_acked_message_counts_the_messages_behind_it() -> None:
    consumer = FakeConsumer({TopicPartition(TOPIC, 0): 10})
    observe_lag(SPEC, FakeMessage(record(0, 4), consumer))
    assert lag(0) == 5  # offsets 5..9 are still to read
    observe_lag(SPEC, FakeMessage(record(0, 9), consumer))
    assert lag(0) == 0


def test_a_nacked_message_is_itself_still_to_read() -> None:
    consumer = FakeConsumer({TopicPartition(TOPIC, 1): 10})
    observe_lag(SPEC, FakeMessage(record(1, 9), consumer, committed=AckStatus.NACKED))
    assert lag(1) == 1


def test_no_high_water_mark_or_a_revoked_partition_leaves_the_gauge_as_it_was() -> None:
    consumer = FakeConsumer({TopicPartition(TOPIC, 2): 7})
    observe_lag(SPEC, FakeMessage(record(2, 2), consumer))
    assert lag(2) == 4
    observe_lag(SPEC, FakeMessage(record(2, 3), FakeConsumer({TopicPartition(TOPIC, 2): None})))
    observe_lag(SPEC, FakeMessage(record(2, 3), FakeConsumer({})))  # revoked meanwhile
    observe_lag(SPEC, FakeMessage(record(2, 3), object()))  # TestKafkaBroker's consumer has no highwater
    observe_lag(SPEC, FakeMessage((record(2, 3),), consumer))  # a batch
    assert lag(2) == 4
