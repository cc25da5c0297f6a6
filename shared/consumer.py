"""Reliable consumption: parse -> inbox -> effect -> commit, with retries and a dead-letter queue.

At-least-once from Kafka plus an inbox row in the effect's own transaction gives
effectively-once effects. The offset is committed only after that transaction commits: by an
`OffsetCommitter` in the background, so the next message does not wait for the broker's answer
(a commit is a round trip to the group coordinator, as long as the whole transaction under load).
Bad input goes to the DLQ with its reason and consumption continues; a database outage
is waited out (never dead-lettered), and a handler that keeps failing on one event
dead-letters it after `max_attempts`.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from faststream import AckPolicy
from faststream._internal.context import Context  # the class behind faststream.Context() (0.7)
from faststream.kafka import KafkaBroker
from faststream.kafka.message import KafkaMessage as _KafkaMessage
from faststream.message import AckStatus
from opentelemetry import trace
from opentelemetry.context import Context as OtelContext
from opentelemetry.trace import SpanKind
from pydantic import ValidationError

from shared import inbox, tracing
from shared.db import Conn, is_timeout, is_transient, ping
from shared.dlq import dead_letter_message, send_to_dlq
from shared.events.envelope import CloudEvent, EventData, EventMeta, UnknownEventType, trace_context_of
from shared.health import LoopProgress
from shared.kafka import EventProducer, PublishError
from shared.logs import bind_log_context, log_context
from shared.metrics import CONSUMED, CONSUMER_LAG, CONSUMER_RETRIES
from shared.validation import describe

log = logging.getLogger(__name__)

# A handler applies the event inside the consumer's transaction: it gets the payload, parsed here once,
# and what it may need of the envelope (EventMeta), never the envelope itself. It may return a callback
# to run once that transaction has committed (e.g. counting metrics only for work that really happened).
AfterCommit = Callable[[], None]
Handler = Callable[[Conn, EventMeta, EventData], Awaitable[AfterCommit | None]]


class _MessageContext(Context):
    """FastStream's `Context("message")`, resolved in the event loop.

    fast-depends runs a synchronous `use` in a worker thread: for the stock `KafkaMessage`
    annotation that was a thread hop per message (a few per cent of a busy consumer's CPU, and a
    wait for a thread on a loaded machine). The lookup itself is a dictionary read.
    """

    async def use(self, /, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        return super().use(**kwargs)


KafkaMessage = Annotated[_KafkaMessage, _MessageContext("message")]


class Rejected(Exception):
    """A handler's verdict that an event can never be applied (goes to the DLQ at once, with this reason)."""


@dataclass
class ConsumerSpec:
    service: str
    name: str  # the inbox's consumer name; also the metric label
    group_id: str
    topics: list[str]
    handler: Handler
    dlq_topic: str
    event_types: frozenset[str] | None = None  # None: every known type; others are skipped
    max_attempts: int = 5
    retry_base_seconds: float = 0.2
    # More FastStream subscriber options, e.g. {"max_workers": 3}: one consumer per worker in the
    # group, partitions spread over them, each partition still in order (a single topic only).
    subscriber_options: dict[str, Any] = field(default_factory=dict)


class OffsetCommitter:
    """Commits the offsets of messages whose effect is durable, for one Kafka consumer, off the message path.

    `done()` notes a partition's next offset; one commit at a time is in flight and takes every
    offset noted until it starts, so in a burst a commit covers many messages and the consumer
    never waits for one. Only offsets of finished messages are ever noted, so a commit never
    passes a message whose effect is not durable: at worst (a crash, a failed commit, a
    partition moved to another consumer) finished messages are read again, and the inbox drops them.
    """

    def __init__(self, consumer: AIOKafkaConsumer, name: str) -> None:
        self._consumer = consumer
        self._name = name
        self._pending: dict[TopicPartition, int] = {}
        self._task: asyncio.Task[None] | None = None

    def done(self, record: ConsumerRecord) -> None:
        self._pending[TopicPartition(record.topic, record.partition)] = record.offset + 1
        if self._task is None or self._task.done():
            # A context of its own: the commit serves many messages, not the one whose ids are bound now.
            self._task = asyncio.create_task(self._commit_pending(), context=contextvars.Context())

    async def _commit_pending(self) -> None:
        while self._pending:
            offsets, self._pending = self._pending, {}
            try:
                # A partition taken away by a rebalance is its new owner's to commit.
                assigned = self._consumer.assignment()
                mine = {tp: offset for tp, offset in offsets.items() if tp in assigned}
                if mine:
                    await self._consumer.commit(mine)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The effects are durable; a redelivery after a failed commit is caught by the inbox.
                log.warning("%s: offset commit failed (a redelivery will be ignored): %r", self._name, exc)

    @property
    def busy(self) -> bool:
        return bool(self._pending) or (self._task is not None and not self._task.done())

    async def flush(self) -> None:
        """Waits for the commit in flight and any noted after it (for a test or a clean stop)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)


class ReliableConsumer:
    def __init__(
        self,
        spec: ConsumerSpec,
        *,
        pool: asyncpg.Pool,
        producer: EventProducer,
        progress: LoopProgress | None = None,
    ) -> None:
        self.spec = spec
        # Told of each message done and each failure: a consumer failing for longer than its bound
        # (the database away while a message waits) makes the service not ready.
        self._progress = progress
        self._pool = pool
        self._producer = producer
        self._failures: dict[tuple[str, int, int], int] = {}
        # One committer per Kafka consumer (FastStream runs one per worker), made on its first message.
        self._committers: dict[AIOKafkaConsumer, OffsetCommitter] = {}
        # Test seam: runs after the effect's transaction committed, before the offset commit.
        self.after_effect: Callable[[CloudEvent], Awaitable[None]] | None = None
        # Per partition, the offset after the last message finished here (effect durable, skipped
        # or dead-lettered). A partition is processed in order, so every offset below it is
        # finished too: what a service needs to tell that it has caught up with a topic.
        self.finished: dict[TopicPartition, int] = {}
        self.subscriber: Any = None  # FastStream's subscriber, once subscribed

    def subscribe(self, broker: KafkaBroker, **options: Any) -> Any:
        """Registers on the broker with manual acks: FastStream's default would commit before the effect."""

        async def on_message(msg: KafkaMessage) -> None:
            await self.process(msg)
            observe_lag(self.spec, msg)

        on_message.__name__ = f"{self.spec.name}_handler"
        self.subscriber = broker.subscriber(
            *self.spec.topics,
            group_id=self.spec.group_id,
            ack_policy=AckPolicy.MANUAL,
            auto_offset_reset="earliest",
            max_poll_interval_ms=300_000,
            title=f"{self.spec.service}:{self.spec.name}",
            **(self.spec.subscriber_options | options),
        )
        return self.subscriber(on_message)

    def kafka_consumers(self) -> list[AIOKafkaConsumer]:
        """The running aiokafka consumers behind the subscriber: one, or one per worker (`max_workers`)."""
        subscriber = self.subscriber
        found = list(getattr(subscriber, "consumer_subgroup", None) or [])
        if not found and getattr(subscriber, "consumer", None) is not None:
            found = [subscriber.consumer]
        return [c for c in found if isinstance(c, AIOKafkaConsumer)]

    def _count(self, record: ConsumerRecord, outcome: str) -> None:
        CONSUMED.labels(self.spec.service, self.spec.name, record.topic, outcome).inc()
        span = trace.get_current_span()  # the message's (process): what became of it
        span.set_attribute("mvsj.outcome", outcome)
        if outcome == "dead_lettered":
            tracing.failed(span, "dead_lettered")

    async def process(self, msg: Any) -> None:
        """Applies one message, then acks it; or nacks it to read it again; or dead-letters it.

        Never neither: with manual acks, a message left without either is skipped in silence by
        the next commit. So whatever goes wrong, even outside the cases below, is retried and
        then dead-lettered.
        """
        record: ConsumerRecord = msg.raw_message
        where = (record.topic, record.partition, record.offset)
        # The span continues the trace the producer's `traceparent` header names (shared/outbox.py);
        # _process adds the event's ids to it and to the log context once it has parsed the event.
        with (
            tracing.span(
                f"process {record.topic}",
                kind=SpanKind.CONSUMER,
                parent=continued_trace(record),
                attributes={
                    "messaging.system": "kafka",
                    "messaging.operation.type": "process",
                    "messaging.destination.name": record.topic,
                    "messaging.destination.partition.id": str(record.partition),
                    "messaging.kafka.offset": record.offset,
                    "messaging.consumer.group.name": self.spec.group_id,
                    "mvsj.consumer": self.spec.name,
                },
            ),
            log_context(),
        ):
            await self._process_and_judge(msg, record, where)

    async def _process_and_judge(self, msg: Any, record: ConsumerRecord, where: tuple[str, int, int]) -> None:
        try:
            await self._process(msg, record, where)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._failed()
            attempts = self._failures.get(where, 0) + 1
            self._failures[where] = attempts
            try:
                if attempts >= self.spec.max_attempts:
                    self._failures.pop(where, None)
                    log.exception("%s: giving up on %s/%s@%s after %d attempts", self.spec.name, *where, attempts)
                    await self._dead_letter(msg, record, exc, attempts=attempts)
                    return
                CONSUMER_RETRIES.labels(self.spec.service, self.spec.name, "unexpected").inc()
                log.exception("%s: attempt %d failed unexpectedly on %s/%s@%s", self.spec.name, attempts, *where)
                await msg.nack()
                await asyncio.sleep(self.spec.retry_base_seconds * 2 ** (attempts - 1))
            except asyncio.CancelledError:
                raise
            except Exception:
                # Not even a nack went through: the consumer is broken; say so loudly.
                log.exception("%s: could neither retry nor dead-letter %s/%s@%s", self.spec.name, *where)

    async def _process(self, msg: Any, record: ConsumerRecord, where: tuple[str, int, int]) -> None:
        try:
            event = CloudEvent.from_bytes(record.value or b"")
            types = self.spec.event_types
            if types is not None and event.type not in types:
                self._count(record, "skipped")
                await self._commit(msg)
                return
            bind_log_context(event_id=event.id, event_type=event.type, case_id=event.subject)
            trace.get_current_span().set_attributes(
                {"messaging.message.id": str(event.id), "mvsj.event_type": event.type, "mvsj.case_id": event.subject}
            )
            payload = event.payload()
        except UnknownEventType as exc:
            # A newer producer's type: not ours to judge, and not an error.
            log.info("skipping unknown event type %s at %s/%s@%s", exc, *where)
            self._count(record, "skipped")
            await self._commit(msg)
            return
        except (ValidationError, ValueError) as exc:
            await self._dead_letter(msg, record, _describe_validation(exc), attempts=1)
            return

        try:
            after_commit: AfterCommit | None = None
            async with self._pool.acquire() as conn, conn.transaction():
                first_time = await inbox.claim(conn, self.spec.name, event.id)
                if first_time:
                    with tracing.span(f"handle {event.type}", attributes={"mvsj.consumer": self.spec.name}):
                        after_commit = await self.spec.handler(conn, event.meta, payload)
            if after_commit is not None:
                after_commit()
            if self.after_effect is not None:
                await self.after_effect(event)
        except Rejected as exc:
            await self._dead_letter(msg, record, f"Rejected: {exc}", attempts=1)
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if is_transient(exc) and not (is_timeout(exc) and await ping(self._pool)):
                # The database is away, full or failing over: wait and read the same message again;
                # never dead-letter for this. A timeout while the database answers a ping is this
                # event's own doing (a query too slow every time), so it counts as an attempt below.
                self._failed()
                CONSUMER_RETRIES.labels(self.spec.service, self.spec.name, "database").inc()
                log.warning("%s: database unavailable, will retry %s/%s@%s: %r", self.spec.name, *where, exc)
                await msg.nack()
                await asyncio.sleep(2.0)
                return
            attempts = self._failures.get(where, 0) + 1
            self._failures[where] = attempts
            if attempts >= self.spec.max_attempts:
                self._failures.pop(where, None)
                log.exception("%s: giving up on %s/%s@%s after %d attempts", self.spec.name, *where, attempts)
                await self._dead_letter(msg, record, exc, attempts=attempts)
                return
            self._failed()
            CONSUMER_RETRIES.labels(self.spec.service, self.spec.name, "handler").inc()
            log.warning("%s: attempt %d failed on %s/%s@%s: %r", self.spec.name, attempts, *where, exc)
            await msg.nack()
            await asyncio.sleep(self.spec.retry_base_seconds * 2 ** (attempts - 1))
            return

        self._failures.pop(where, None)
        outcome = "processed" if first_time else "duplicate"
        self._count(record, outcome)
        log.debug("%s: %s %s", self.spec.name, outcome, event.type)
        await self._commit(msg)

    async def _dead_letter(self, msg: Any, record: ConsumerRecord, error: BaseException | str, attempts: int) -> None:
        message = dead_letter_message(
            dlq_topic=self.spec.dlq_topic,
            service=self.spec.service,
            consumer=self.spec.name,
            record=record,
            error=error,
            attempts=attempts,
        )
        try:
            await send_to_dlq(self._producer, message)
        except PublishError as exc:
            # Without a durable DLQ entry the message must not be skipped: read it again later.
            log.error("%s: DLQ publish failed, will retry the message: %s", self.spec.name, exc)
            await msg.nack()
            await asyncio.sleep(1.0)
            return
        log.warning(
            "%s: dead-lettered %s/%s@%s to %s: %s",
            self.spec.name,
            record.topic,
            record.partition,
            record.offset,
            self.spec.dlq_topic,
            str(error)[:200],
        )
        self._count(record, "dead_lettered")
        await self._commit(msg)

    def _failed(self) -> None:
        if self._progress is not None:
            self._progress.failed()

    def committer(self, consumer: AIOKafkaConsumer) -> OffsetCommitter:
        if consumer not in self._committers:
            # A restarted broker brings new consumers: idle committers of old ones are let go (a
            # live consumer's is made again on its next message).
            self._committers = {c: k for c, k in self._committers.items() if k.busy}
            self._committers[consumer] = OffsetCommitter(consumer, self.spec.name)
        return self._committers[consumer]

    async def flush_commits(self) -> None:
        """Waits until every offset noted so far has been committed (or its commit has failed)."""
        for committer in list(self._committers.values()):
            await committer.flush()

    async def _commit(self, msg: Any) -> None:
        # Every path that finishes a message (applied, duplicate, skipped, dead-lettered) ends here.
        if self._progress is not None:
            self._progress.round_done()
        record = msg.raw_message
        if isinstance(record, ConsumerRecord):
            tp = TopicPartition(record.topic, record.partition)
            self.finished[tp] = max(self.finished.get(tp, 0), record.offset + 1)
        consumer = getattr(msg, "consumer", None)
        if isinstance(consumer, AIOKafkaConsumer) and isinstance(msg.raw_message, ConsumerRecord):
            self.committer(consumer).done(msg.raw_message)
            msg.committed = AckStatus.ACKED  # what FastStream's ack records (its metrics read it)
            return
        try:
            # TestKafkaBroker's stand-in consumer: FastStream's own ack (its commit does nothing).
            await msg.ack()
        except Exception as exc:
            # The effect is durable; a redelivery after a failed commit is caught by the inbox.
            log.warning("%s: offset commit failed (a redelivery will be ignored): %r", self.spec.name, exc)


def continued_trace(record: Any) -> OtelContext:
    """The trace a message continues: its `traceparent` header; without a valid one, the envelope's
    Distributed Tracing extension (a message a tool re-published without headers); else a new trace."""
    context = tracing.from_headers(getattr(record, "headers", None))
    if tracing.names_a_span(context):
        return context
    return tracing.extract(trace_context_of(getattr(record, "value", None)))


def observe_lag(spec: ConsumerSpec, msg: Any) -> None:
    """Sets consumer_lag_messages for the message's partition from the high-water mark the last fetch brought.

    No broker round trip: aiokafka keeps the high-water mark of every fetch response. The gauge
    therefore moves only while messages flow; a consumer that stops holds its last value, which
    the throughput panels and the consumer alerts show.
    """
    record = msg.raw_message
    highwater = getattr(getattr(msg, "consumer", None), "highwater", None)
    if highwater is None or not isinstance(record, ConsumerRecord):
        return  # TestKafkaBroker's fake consumer, or a batch
    try:
        high = highwater(TopicPartition(record.topic, record.partition))
    except AssertionError:
        return  # the partition was revoked while the message was processed
    if high is None:
        return
    # A nack rewinds to this message, so it is the next to read; otherwise the one after it.
    next_offset = record.offset if msg.committed is AckStatus.NACKED else record.offset + 1
    CONSUMER_LAG.labels(spec.service, spec.name, record.topic, str(record.partition)).set(max(0, high - next_offset))


def _describe_validation(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return describe(exc, "event")
    return f"invalid event: {exc}"


def types_of(*models: type[EventData]) -> frozenset[str]:
    return frozenset(m.event_type for m in models)
