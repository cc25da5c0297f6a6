"""Reliable consumption: parse -> inbox -> effect -> commit, with retries and a dead-letter queue.

At-least-once from Kafka plus an inbox row in the effect's own transaction gives
effectively-once effects. The offset is committed only after that transaction commits.
Bad input goes to the DLQ with its reason and consumption continues; a database outage
is waited out (never dead-lettered), and a handler that keeps failing on one event
dead-letters it after `max_attempts`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiokafka import ConsumerRecord
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import ValidationError

from shared import inbox
from shared.db import Conn, is_transient
from shared.dlq import dead_letter_message, send_to_dlq
from shared.events.envelope import CloudEvent, EventData, UnknownEventType
from shared.kafka import EventProducer, PublishError
from shared.metrics import CONSUMED, CONSUMER_RETRIES

log = logging.getLogger(__name__)

# A handler applies the event inside the consumer's transaction. It may return a callback to run
# once that transaction has committed (e.g. counting metrics only for work that really happened).
AfterCommit = Callable[[], None]
Handler = Callable[[Conn, CloudEvent, EventData], Awaitable[AfterCommit | None]]


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


class ReliableConsumer:
    def __init__(self, spec: ConsumerSpec, *, pool: asyncpg.Pool, producer: EventProducer) -> None:
        self.spec = spec
        self._pool = pool
        self._producer = producer
        self._failures: dict[tuple[str, int, int], int] = {}
        # Test seam: runs after the effect's transaction committed, before the offset commit.
        self.after_effect: Callable[[CloudEvent], Awaitable[None]] | None = None

    def subscribe(self, broker: KafkaBroker, **options: Any) -> Any:
        """Registers on the broker with manual acks: FastStream's default would commit before the effect."""

        async def on_message(msg: KafkaMessage) -> None:
            await self.process(msg)

        on_message.__name__ = f"{self.spec.name}_handler"
        return broker.subscriber(
            *self.spec.topics,
            group_id=self.spec.group_id,
            ack_policy=AckPolicy.MANUAL,
            auto_offset_reset="earliest",
            max_poll_interval_ms=300_000,
            title=f"{self.spec.service}:{self.spec.name}",
            **(self.spec.subscriber_options | options),
        )(on_message)

    def _count(self, record: ConsumerRecord, outcome: str) -> None:
        CONSUMED.labels(self.spec.service, self.spec.name, record.topic, outcome).inc()

    async def process(self, msg: Any) -> None:
        record: ConsumerRecord = msg.raw_message
        where = (record.topic, record.partition, record.offset)
        try:
            event = CloudEvent.from_bytes(record.value or b"")
            types = self.spec.event_types
            if types is not None and event.type not in types:
                self._count(record, "skipped")
                await self._commit(msg)
                return
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
                    after_commit = await self.spec.handler(conn, event, payload)
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
            if is_transient(exc):
                # The database is away, full or failing over: wait and read the same message again;
                # never dead-letter for this.
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
            CONSUMER_RETRIES.labels(self.spec.service, self.spec.name, "handler").inc()
            log.warning("%s: attempt %d failed on %s/%s@%s: %r", self.spec.name, attempts, *where, exc)
            await msg.nack()
            await asyncio.sleep(self.spec.retry_base_seconds * 2 ** (attempts - 1))
            return

        self._failures.pop(where, None)
        self._count(record, "processed" if first_time else "duplicate")
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

    async def _commit(self, msg: Any) -> None:
        try:
            await msg.ack()
        except Exception as exc:
            # The effect is durable; a redelivery after a failed commit is caught by the inbox.
            log.warning("%s: offset commit failed (a redelivery will be ignored): %r", self.spec.name, exc)


def _describe_validation(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        parts = [f"{'.'.join(str(p) for p in err['loc']) or 'event'}: {err['msg']}" for err in exc.errors()[:10]]
        return "invalid event: " + "; ".join(parts)
    return f"invalid event: {exc}"


def types_of(*models: type[EventData]) -> frozenset[str]:
    return frozenset(m.event_type for m in models)


def topics_for(models: Iterable[type[EventData]], prefix: str = "") -> list[str]:
    return sorted({prefix + m.topic for m in models})
