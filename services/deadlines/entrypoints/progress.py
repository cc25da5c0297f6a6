"""Records how far the cases.v1 consumer has caught up, per partition: the consumer side of the breach gate.

Every `interval` seconds, for the partitions this instance's consumers are assigned:
1. read Postgres's now, T0 (the clock every due time is on), before anything else;
2. ask the broker for the partitions' end offsets (one ListOffsets request, on a client of its
   own: `EndOffsets`): every message appended before T0 has an offset below them, since the
   broker answers a request sent after T0;
3. once the offsets this service has *finished* (effect committed, skipped or dead-lettered:
   `ReliableConsumer.finished`, or the group's committed offset, which only ever covers finished
   messages) reach a sample's end offsets, the partition is caught up as of that sample's T0,
   and the row `consumer_progress(topic, partition)` moves forward to it.

Samples wait in a short queue per partition, so a consumer that keeps up with a steady stream
moves its row forward every round (it reaches the end offsets of a round or two ago), not only
when the topic goes quiet. An empty partition (end offset 0) is caught up at once.

Several instances (and several workers in one) each write their own partitions; the table keeps
the newest time per partition. `domain/gate.py` turns the rows into the gate the timer obeys.
"""

from __future__ import annotations

import contextlib
import math
from collections import deque
from collections.abc import Iterable
from datetime import datetime

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.deadlines.adapters import repository
from services.deadlines.domain.gate import caught_up_until
from services.deadlines.metrics import BREACH_GATE_LAG
from shared.aio import within
from shared.consumer import ReliableConsumer

# At most this many samples wait per partition; further ones are skipped until the consumer
# reaches the oldest (the oldest are the ones it reaches first, so the row still moves forward).
MAX_SAMPLES = 32
# How long a broker request of one round may take before the round is given up (and retried).
KAFKA_TIMEOUT_SECONDS = 5.0


class CatchUp:
    """End offsets sampled at times T0, per partition, and the newest T0 a finished offset has reached."""

    def __init__(self, max_samples: int = MAX_SAMPLES) -> None:
        self._max = max_samples
        self._samples: dict[int, deque[tuple[datetime, int]]] = {}

    def sample(self, partition: int, at: datetime, end_offset: int) -> None:
        queue = self._samples.setdefault(partition, deque())
        if len(queue) < self._max:
            queue.append((at, end_offset))

    def reached(self, partition: int, finished: int) -> datetime | None:
        """Drops the samples whose end offset `finished` has reached; the newest of their T0s, if any."""
        queue = self._samples.get(partition)
        newest = None
        while queue and queue[0][1] <= finished:
            newest = queue.popleft()[0]
        return newest

    def behind(self, partition: int) -> bool:
        """Some sampled end offset is not reached yet."""
        return bool(self._samples.get(partition))

    def keep_only(self, partitions: Iterable[int]) -> None:
        """Forgets partitions no longer assigned here: their new owner records them."""
        kept = set(partitions)
        for partition in list(self._samples):
            if partition not in kept:
                del self._samples[partition]


class EndOffsets:
    """A Kafka client of its own, without a group, that only asks for end offsets.

    Not the group consumers' own `end_offsets()`: a consumer long-polls its broker connection (a
    fetch waits up to fetch_max_wait_ms, 500 ms, for data) and a ListOffsets sent on the same
    connection is answered only after it, which held every breach half a second longer. A client
    that cannot answer in time is closed and made anew on the next round.
    """

    def __init__(self, bootstrap: str, *, client_id: str) -> None:
        self._bootstrap = bootstrap
        self._client_id = client_id
        self._client: AIOKafkaConsumer | None = None

    async def of(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        try:
            if self._client is None:
                client = AIOKafkaConsumer(
                    bootstrap_servers=self._bootstrap,
                    client_id=self._client_id,
                    enable_auto_commit=False,
                    request_timeout_ms=int(KAFKA_TIMEOUT_SECONDS * 1000),
                )
                self._client = client
                await within(client.start(), KAFKA_TIMEOUT_SECONDS)
            offsets: dict[TopicPartition, int] = await within(
                self._client.end_offsets(partitions), KAFKA_TIMEOUT_SECONDS
            )
            return offsets
        except Exception:
            await self.close()
            raise

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await within(client.stop(), KAFKA_TIMEOUT_SECONDS)


class ConsumerProgress:
    """One round = `tick()`: sample, compare with what has been finished, write what moved, set the gauge."""

    def __init__(self, pool: asyncpg.Pool, consumer: ReliableConsumer, *, topic: str, end_offsets: EndOffsets) -> None:
        self._pool = pool
        self._consumer = consumer
        self._topic = topic
        self._end_offsets = end_offsets
        self._catch_up = CatchUp()
        # The group's committed offset per partition, when it was asked (a fresh assignment).
        self._committed: dict[TopicPartition, int] = {}
        self._last_finished: dict[TopicPartition, int] = {}
        self._recorded: set[int] = set()  # partitions known to have a row

    def _finished(self, tp: TopicPartition) -> int:
        return max(self._consumer.finished.get(tp, 0), self._committed.get(tp, 0))

    async def tick(self) -> None:
        view = await repository.gate_view(self._pool, self._topic)  # its `now` is T0: before the broker's answer
        progress = dict(view.progress)
        try:
            for partition, at in (await self._record(view.now)).items():
                before = progress.get(partition)
                progress[partition] = at if before is None or (at is not None and at > before) else before
        finally:
            # Set even when Kafka does not answer: a gate stuck behind must show, whatever the cause.
            gate = caught_up_until(progress)
            BREACH_GATE_LAG.set(math.inf if gate is None else max(0.0, (view.now - gate).total_seconds()))

    async def _record(self, t0: datetime) -> dict[int, datetime | None]:
        """Samples the assigned partitions at `t0` and writes what moved; returns the rows written."""
        known: set[int] = set()
        mine: dict[TopicPartition, AIOKafkaConsumer] = {}
        for kafka in self._consumer.kafka_consumers():
            known |= kafka.partitions_for_topic(self._topic) or set()
            mine |= {tp: kafka for tp in kafka.assignment() if tp.topic == self._topic}
        self._catch_up.keep_only(tp.partition for tp in mine)
        advanced: dict[int, datetime] = {}
        if mine:
            ends = await self._end_offsets.of(sorted(mine))
            for tp, kafka in sorted(mine.items()):
                self._catch_up.sample(tp.partition, t0, ends[tp])
                if reached := await self._reached(kafka, tp):
                    advanced[tp.partition] = reached
        if not advanced and not known - self._recorded:
            return {}
        await repository.record_progress(self._pool, self._topic, known, advanced)
        self._recorded |= known
        return dict.fromkeys(known) | advanced

    async def _reached(self, kafka: AIOKafkaConsumer, tp: TopicPartition) -> datetime | None:
        reached = self._catch_up.reached(tp.partition, self._finished(tp))
        if self._catch_up.behind(tp.partition) and self._last_finished.get(tp) in (None, self._finished(tp)):
            # Nothing finished here since the last look: after a (re)assignment or a restart the
            # consumer starts at the group's committed offset, and everything below it is finished
            # (commits only ever follow effects). One OffsetFetch, only for a partition that is behind.
            committed = await within(kafka.committed(tp), KAFKA_TIMEOUT_SECONDS)
            if committed is not None and committed > self._committed.get(tp, 0):
                self._committed[tp] = committed
                reached = self._catch_up.reached(tp.partition, self._finished(tp)) or reached
        self._last_finished[tp] = self._finished(tp)
        return reached
