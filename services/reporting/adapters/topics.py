"""Reads whole topics from their first offset up to a moving end: the source of a rebuild."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared.aio import within


async def partitions_of(bootstrap: str, topics: Sequence[str], timeout: float = 15.0) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    await within(admin.start(), timeout)
    try:
        described = await within(admin.describe_topics(list(topics)), timeout)
    finally:
        await within(admin.close(), timeout)
    found: list[TopicPartition] = []
    for topic in described:
        name = topic.get("topic") or topic.get("name")
        if topic.get("error_code", 0) != 0:
            continue  # a topic nobody has written yet: nothing to rebuild from
        found.extend(TopicPartition(name, p["partition"]) for p in topic["partitions"])
    return sorted(found)


class TopicReader:
    """Every record of some topics from offset 0, in batches; `catch_up` reads on to the new end."""

    def __init__(self, bootstrap: str, topics: Sequence[str], *, batch_size: int) -> None:
        self.bootstrap = bootstrap
        self.topics = list(topics)
        self.batch_size = batch_size
        self.partitions: list[TopicPartition] = []
        self.read = 0
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        self.partitions = await partitions_of(self.bootstrap, self.topics)
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,  # no group: the rebuild must not move the service's committed offsets
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=8 * 1024 * 1024,
            fetch_max_bytes=64 * 1024 * 1024,
        )
        await self._consumer.start()
        if self.partitions:
            self._consumer.assign(self.partitions)
            await self._consumer.seek_to_beginning(*self.partitions)

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    async def end_offsets(self) -> dict[TopicPartition, int]:
        assert self._consumer is not None
        if not self.partitions:
            return {}
        ends: dict[TopicPartition, int] = await self._consumer.end_offsets(self.partitions)
        return ends

    async def total_to(self, ends: dict[TopicPartition, int]) -> int:
        """How many records lie between the current positions and `ends`."""
        assert self._consumer is not None
        left = 0
        for tp, end in ends.items():
            left += max(0, end - await self._consumer.position(tp))
        return left

    async def batches(self, ends: dict[TopicPartition, int]) -> AsyncIterator[list[ConsumerRecord[Any, Any]]]:
        """Records at least up to `ends`, in batches of about `batch_size`."""
        assert self._consumer is not None
        consumer = self._consumer
        pending = {tp: end for tp, end in ends.items() if await consumer.position(tp) < end}
        while pending:
            fetched = await consumer.getmany(*pending, timeout_ms=500, max_records=self.batch_size)
            # Records past a partition's end are kept: reading more than the snapshot is harmless
            # (facts merge idempotently) and dropping them would lose them for the catch-up.
            batch = [r for records in fetched.values() for r in records]
            for tp in list(pending):
                if await consumer.position(tp) >= pending[tp]:
                    del pending[tp]
                    consumer.pause(tp)  # past its end: read nothing more from it in this round
            if batch:
                self.read += len(batch)
                yield batch

    def resume(self) -> None:
        assert self._consumer is not None
        self._consumer.resume(*self.partitions)
