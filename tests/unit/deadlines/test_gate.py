"""The breach gate: when the timer may fire, and how the consumer's progress on cases.v1 moves it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import TopicPartition

from services.deadlines.adapters import repository
from services.deadlines.adapters.repository import GateView
from services.deadlines.domain.gate import caught_up_until, firing_horizon, held_back
from services.deadlines.entrypoints.progress import CatchUp, ConsumerProgress
from services.deadlines.metrics import BREACH_GATE_LAG

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
S = timedelta(seconds=1)
TOPIC = "cases.v1"


# --- the decision --------------------------------------------------------------------------------


def test_the_gate_is_the_least_caught_up_partition() -> None:
    assert caught_up_until({0: T0 + 3 * S, 1: T0 + S, 2: T0 + 2 * S}) == T0 + S


@pytest.mark.parametrize(
    "progress",
    [
        {},  # the consumer never saw the topic
        {0: T0, 1: None, 2: T0},  # a partition known but never caught up
        {0: T0, 2: T0},  # partition 1 has no record at all
    ],
)
def test_the_gate_is_shut_while_any_partition_is_unknown(progress: dict[int, datetime | None]) -> None:
    assert caught_up_until(progress) is None


def test_deadlines_fire_up_to_the_gate_never_past_it() -> None:
    assert firing_horizon(T0 + 10 * S, T0 + 4 * S) == T0 + 4 * S
    assert firing_horizon(T0 + 10 * S, T0 + 12 * S) == T0 + 10 * S  # never ahead of the clock
    assert firing_horizon(T0 + 10 * S, None) is None


def test_a_due_deadline_is_held_only_while_the_gate_is_behind_it() -> None:
    now = T0 + 10 * S
    assert held_back(T0 + 5 * S, now, gate=T0 + 4 * S)  # due, but the consumer is behind it
    assert held_back(T0 + 5 * S, now, gate=None)
    assert not held_back(T0 + 5 * S, now, gate=T0 + 5 * S)  # due and caught up: fires
    assert not held_back(T0 + 11 * S, now, gate=T0 + 4 * S)  # not due yet: the clock, not the gate
    assert not held_back(None, now, gate=None)


# --- samples of end offsets ------------------------------------------------------------------------


def test_a_partition_is_caught_up_as_of_the_newest_sample_its_finished_offset_reached() -> None:
    catch_up = CatchUp()
    catch_up.sample(0, T0, 10)
    catch_up.sample(0, T0 + S, 12)
    catch_up.sample(0, T0 + 2 * S, 15)
    assert catch_up.reached(0, 9) is None
    assert catch_up.reached(0, 12) == T0 + S  # a steady stream: a second behind, not never
    assert catch_up.behind(0)
    assert catch_up.reached(0, 15) == T0 + 2 * S
    assert not catch_up.behind(0)


def test_an_empty_partition_is_caught_up_at_once() -> None:
    catch_up = CatchUp()
    catch_up.sample(1, T0, 0)
    assert catch_up.reached(1, 0) == T0


def test_a_full_queue_keeps_its_oldest_samples_so_a_lagging_consumer_still_moves_forward() -> None:
    catch_up = CatchUp(max_samples=2)
    for i in range(5):
        catch_up.sample(0, T0 + i * S, 10 + i)
    assert catch_up.reached(0, 10) == T0
    assert catch_up.reached(0, 11) == T0 + S
    assert not catch_up.behind(0)


# --- a round of the progress loop, on fakes --------------------------------------------------------


class FakeKafka:
    """An assigned aiokafka consumer as the progress loop uses it."""

    def __init__(self, ends: dict[int, int], committed: dict[int, int | None]) -> None:
        self.ends = ends
        self.committed_offsets = committed
        self.committed_asked = 0

    def partitions_for_topic(self, topic: str) -> set[int]:
        return {0, 1, 2}

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition(TOPIC, p) for p in self.ends}

    async def committed(self, tp: TopicPartition) -> int | None:
        self.committed_asked += 1
        return self.committed_offsets.get(tp.partition)


class FakeEndOffsets:
    """The broker's answer to ListOffsets: what the fake consumers say the partitions end at."""

    def __init__(self, *kafka: FakeKafka) -> None:
        self._kafka = kafka

    async def of(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: k.ends[tp.partition] for tp in tps for k in self._kafka if tp.partition in k.ends}


def progress_of(consumer: FakeConsumer) -> ConsumerProgress:
    return ConsumerProgress(
        None,  # type: ignore[arg-type]
        consumer,  # type: ignore[arg-type]
        topic=TOPIC,
        end_offsets=FakeEndOffsets(*consumer.kafka_consumers()),  # type: ignore[arg-type]
    )


class FakeConsumer:
    def __init__(self, *kafka: FakeKafka) -> None:
        self.finished: dict[TopicPartition, int] = {}
        self._kafka = list(kafka)

    def kafka_consumers(self) -> list[Any]:
        return self._kafka


class FakeProgressTable:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = T0
        self.rows: dict[int, datetime | None] = {}
        monkeypatch.setattr(repository, "gate_view", self.gate_view)
        monkeypatch.setattr(repository, "record_progress", self.record_progress)

    async def gate_view(self, _conn: Any, topic: str) -> GateView:
        return GateView(self.now, None, dict(self.rows))

    async def record_progress(self, _conn: Any, topic: str, partitions: Any, caught_up: dict[int, datetime]) -> None:
        for p in set(partitions) | set(caught_up):
            before, after = self.rows.get(p), caught_up.get(p)
            self.rows[p] = after if before is None else max(before, after or before)


async def test_a_restarted_consumer_with_nothing_new_is_caught_up_by_its_committed_offsets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    table = FakeProgressTable(monkeypatch)
    kafka = FakeKafka(ends={0: 7, 1: 0, 2: 3}, committed={0: 7, 1: None, 2: 3})
    progress = progress_of(FakeConsumer(kafka))
    await progress.tick()
    assert table.rows == {0: T0, 1: T0, 2: T0}
    assert caught_up_until(table.rows) == T0
    assert kafka.committed_asked == 2  # the empty partition needed no question


async def test_a_partition_behind_holds_the_gate_until_its_messages_are_finished(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    table = FakeProgressTable(monkeypatch)
    kafka = FakeKafka(ends={0: 5, 1: 2, 2: 0}, committed={0: 5, 1: 1, 2: None})
    consumer = FakeConsumer(kafka)
    progress = progress_of(consumer)
    await progress.tick()
    assert table.rows == {0: T0, 1: None, 2: T0}  # offset 1 of partition 1 is not finished
    assert caught_up_until(table.rows) is None

    table.now = T0 + S
    kafka.ends[1] = 3  # another message meanwhile
    consumer.finished[TopicPartition(TOPIC, 1)] = 2  # offset 1 finished: caught up as of T0
    await progress.tick()
    assert table.rows[1] == T0 and caught_up_until(table.rows) == T0

    table.now = T0 + 2 * S
    consumer.finished[TopicPartition(TOPIC, 1)] = 3
    await progress.tick()
    assert table.rows == {0: T0 + 2 * S, 1: T0 + 2 * S, 2: T0 + 2 * S}


async def test_without_a_running_consumer_nothing_moves_and_the_lag_grows(monkeypatch: pytest.MonkeyPatch) -> None:
    table = FakeProgressTable(monkeypatch)
    table.rows = {0: T0, 1: T0, 2: T0}
    table.now = T0 + 30 * S
    await progress_of(FakeConsumer()).tick()
    assert table.rows == {0: T0, 1: T0, 2: T0}
    assert BREACH_GATE_LAG._value.get() == 30.0


class SilentBroker:
    async def of(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        raise TimeoutError("Kafka does not answer")


async def test_when_kafka_does_not_answer_the_round_fails_but_the_lag_still_shows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    table = FakeProgressTable(monkeypatch)
    table.rows = {0: T0, 1: T0, 2: T0}
    table.now = T0 + 45 * S
    kafka = FakeKafka(ends={0: 1, 1: 1, 2: 1}, committed={})
    progress = ConsumerProgress(None, FakeConsumer(kafka), topic=TOPIC, end_offsets=SilentBroker())  # type: ignore[arg-type]
    with pytest.raises(TimeoutError):
        await progress.tick()
    assert table.rows == {0: T0, 1: T0, 2: T0}
    assert BREACH_GATE_LAG._value.get() == 45.0
