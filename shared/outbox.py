"""Transactional outbox: write an event in the caller's transaction; a relay publishes it to Kafka.

An accepted fact is never lost between Postgres and Kafka: if the relay dies after
publishing but before marking a row sent, the row is published again and consumers
drop the duplicate by event id (the inbox).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta

import asyncpg
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind

from shared import tracing
from shared.backoff import Backoff
from shared.db import Conn
from shared.events.envelope import TRACE_ATTRIBUTES, CloudEvent, with_trace_context
from shared.health import LoopProgress
from shared.kafka import EventProducer, OutgoingMessage, PublishError
from shared.logs import log_context
from shared.metrics import (
    OUTBOX_BACKLOG,
    OUTBOX_DELAY,
    OUTBOX_OLDEST_AGE,
    OUTBOX_PUBLISH_FAILURES,
    OUTBOX_PUBLISHED,
)
from shared.timers import DurableTimer, every

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/cloudevents+json; charset=UTF-8"


async def enqueue(conn: Conn, event: CloudEvent, *, topic: str, key: str | None = None) -> bool:
    """Adds an event to the outbox inside the caller's open transaction; False if that id is already there."""
    return await enqueue_many(conn, [event], topic=topic, keys=[key] if key else None) == 1


async def enqueue_many(
    conn: Conn,
    events: Sequence[CloudEvent],
    *,
    topic: str,
    keys: Sequence[str] | None = None,
    extra_headers: Sequence[dict[str, str]] | None = None,
    contexts: Sequence[Context | None] | None = None,
) -> int:
    """Adds events in one round trip; an event id already in the outbox is skipped. Returns how many were new.

    Keys default to the event's subject (the case id), which keeps one case's events in order.
    The write is a span of the request's or event's trace, and each row keeps that span's W3C
    `traceparent` in its headers: the relay's publish continues the trace from there. `contexts`, one
    per event, puts an event in another trace instead (None: the write's): a timer round writes the
    events of many firings at once, each firing a trace of its own.
    """
    if not conn.is_in_transaction():
        raise RuntimeError("outbox.enqueue must run inside the transaction that changes the state")
    if not events:
        return 0
    with tracing.span("outbox write") as span:
        written_in = tracing.inject()
        trace_headers = (
            [written_in if c is None else tracing.inject(c) for c in contexts]
            if contexts
            else [written_in] * len(events)
        )
        rows = await _insert(conn, events, topic, keys, extra_headers, trace_headers)
        if span.is_recording():  # only then: with export off nobody reads them
            span.set_attributes(_write_attributes(events, topic, written=len(rows)))
    return len(rows)


def _write_attributes(events: Sequence[CloudEvent], topic: str, written: int) -> tracing.Attributes:
    return {
        "messaging.destination.name": topic,
        "messaging.batch.message_count": len(events),
        "mvsj.outbox.written": written,
        "mvsj.event_types": sorted({e.type for e in events}),
        "mvsj.case_ids": sorted({e.subject for e in events}),
    }


async def _insert(
    conn: Conn,
    events: Sequence[CloudEvent],
    topic: str,
    keys: Sequence[str] | None,
    extra_headers: Sequence[dict[str, str]] | None,
    trace_headers: Sequence[dict[str, str]],
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "INSERT INTO outbox (event_id, topic, key, value, headers)"
        " SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bytea[], $5::jsonb[])"
        " ON CONFLICT (event_id) DO NOTHING RETURNING id",
        [e.id for e in events],
        [topic] * len(events),
        list(keys) if keys else [e.subject for e in events],
        [e.to_bytes() for e in events],
        [
            {"content-type": CONTENT_TYPE, "event-type": e.type}
            | trace_headers[i]
            | (extra_headers[i] if extra_headers else {})
            for i, e in enumerate(events)
        ],
    )


def _publish_span(row: asyncpg.Record) -> Span:
    headers = row["headers"] or {}
    return tracing.start(
        f"publish {row['topic']}",
        kind=SpanKind.PRODUCER,
        parent=tracing.extract(headers),
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": "send",
            "messaging.destination.name": row["topic"],
            "messaging.message.id": str(row["event_id"]),
            "mvsj.event_type": str(headers.get("event-type", "")),
            "mvsj.case_id": row["key"],
        },
    )


def _message(row: asyncpg.Record, span: Span) -> OutgoingMessage:
    """The Kafka message of an outbox row, in the trace of its publish span.

    One hop from this relay to the consumer, so the message says the same trace context twice, as the
    CloudEvents Distributed Tracing extension asks of a single hop: the W3C `traceparent` (and
    `tracestate`) header that tracing libraries read, and the same attributes inside the structured
    envelope, where they stay with the event (a copy, a log of the payload, a reader that drops headers).
    """
    headers = {k: str(v) for k, v in (row["headers"] or {}).items() if k not in TRACE_ATTRIBUTES}
    context = tracing.inject(trace.set_span_in_context(span))
    headers |= context
    return OutgoingMessage(
        topic=row["topic"],
        key=row["key"].encode(),
        value=with_trace_context(bytes(row["value"]), context),
        headers=[(k, v.encode()) for k, v in headers.items()],
    )


AfterPublish = Callable[[list[int]], Awaitable[None]]
OnPublished = Callable[[Sequence[asyncpg.Record], datetime], None]


class OutboxRelay:
    """Publishes pending outbox rows in id order and marks them sent.

    Rows are claimed with FOR UPDATE inside one transaction that stays open while Kafka
    confirms, so two relays never publish the same row at the same time and a relay that dies
    releases its claim. A transaction-scoped advisory lock lets one relay per schema publish
    (or note a failure) at a time, which keeps each case's events in order across instances.
    Wakes on NOTIFY; polls as the fallback.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        producer: EventProducer,
        *,
        service: str,
        schema: str,
        batch_size: int = 200,
        poll_seconds: float = 1.0,
        retention: timedelta = timedelta(days=7),
        after_publish: AfterPublish | None = None,
        on_published: OnPublished | None = None,
        progress: LoopProgress | None = None,
    ) -> None:
        self._pool = pool
        self._progress = progress
        self._producer = producer
        self._service = service
        self._channel = f"outbox_{schema}"
        self._lock_key = f"outbox-relay:{schema}"
        self._batch = batch_size
        self._poll = poll_seconds
        self._retention = retention
        # Test seam: runs after Kafka confirmed and before the rows are marked sent.
        self._after_publish = after_publish
        # Metrics hook: sees the published rows (with headers) and the moment they were confirmed.
        self._on_published = on_published
        self.healthy_kafka = True

    async def relay_once(self) -> int:
        """Publishes one batch of pending rows; returns how many. Raises PublishError when Kafka fails."""
        async with self._pool.acquire() as conn, conn.transaction():
            # One relay of a service publishes at a time, so a case's events reach Kafka in the order
            # they were written, however many instances run; the others wait for the next round.
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock(hashtext($1))", self._lock_key):
                return 0
            # No SKIP LOCKED: under the advisory lock the only other lockers of pending rows are
            # strays (an operator's UPDATE, an old relay version), and skipping their rows would
            # publish later events of a case before earlier ones. Waiting is bounded by the
            # command timeout.
            rows = await conn.fetch(
                "SELECT id, event_id, topic, key, value, headers, created_at FROM outbox"
                " WHERE sent_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE",
                self._batch,
            )
            if not rows:
                return 0
            # One publish span per row, the child of the write that stored it; the message carries
            # the publish span's own context, which the consumers continue.
            spans = [_publish_span(row) for row in rows]
            messages = [_message(row, span) for row, span in zip(rows, spans, strict=True)]
            try:
                await self._producer.send_batch(messages)
            except BaseException as exc:
                for span in spans:
                    tracing.failed(span, exc)
                    span.end()
                raise
            for span in spans:
                span.end()
            ids = [row["id"] for row in rows]
            if self._after_publish is not None:
                await self._after_publish(ids)
            await conn.execute(
                "UPDATE outbox SET sent_at = clock_timestamp(), attempts = attempts + 1, last_error = NULL"
                " WHERE id = ANY($1::bigint[])",
                ids,
            )
        now = datetime.now(UTC)
        for row in rows:
            OUTBOX_PUBLISHED.labels(self._service, row["topic"]).inc()
            OUTBOX_DELAY.labels(self._service).observe(max(0.0, (now - row["created_at"]).total_seconds()))
        if self._on_published is not None:
            self._on_published(rows, now)
        if log.isEnabledFor(logging.DEBUG):
            for row, span in zip(rows, spans, strict=True):
                # One line per event, in the trace of the request or event that wrote it.
                with trace.use_span(span), log_context(event_id=row["event_id"], case_id=row["key"]):
                    log.debug("outbox relay: published to %s", row["topic"])
        return len(rows)

    async def _note_failure(self, error: str) -> None:
        """Records why the oldest pending rows are stuck, for whoever looks at the table.

        Under the relays' advisory lock: this UPDATE locks the oldest pending rows, and a relay
        publishing meanwhile would otherwise wait for them or (with SKIP LOCKED) pass them over
        and publish later rows of the same case first. When another relay holds the lock it is
        publishing, and the note is not needed.
        """
        with contextlib.suppress(Exception):
            async with self._pool.acquire() as conn, conn.transaction():
                if not await conn.fetchval("SELECT pg_try_advisory_xact_lock(hashtext($1))", self._lock_key):
                    return
                await conn.execute(
                    "UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE id IN"
                    " (SELECT id FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT $1)",
                    self._batch,
                    error[:500],
                )

    async def update_gauges(self) -> None:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT count(*) AS backlog, min(created_at) AS oldest FROM outbox WHERE sent_at IS NULL"
            )
        assert row is not None
        OUTBOX_BACKLOG.labels(self._service).set(row["backlog"])
        oldest = row["oldest"]
        age = (datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0
        OUTBOX_OLDEST_AGE.labels(self._service).set(max(0.0, age))

    async def purge_sent(self) -> int:
        async with self._pool.acquire() as conn:
            status = await conn.execute("DELETE FROM outbox WHERE sent_at < now() - $1::interval", self._retention)
        return int(status.split()[-1])

    async def _on_error(self, exc: Exception, backoff: Backoff) -> float | None:
        """Kafka did not confirm: note why on the stuck rows and back off; other errors go to the timer."""
        if not isinstance(exc, PublishError):
            return None
        self.healthy_kafka = False
        if self._progress is not None:
            self._progress.failed(blocked_by="kafka")
        OUTBOX_PUBLISH_FAILURES.labels(self._service).inc()
        delay = backoff.next()
        log.warning("outbox relay: Kafka did not confirm; retrying in %.1fs: %s", delay, exc)
        await self._note_failure(str(exc))
        return delay * random.uniform(0.8, 1.2)

    async def _relay_round(self) -> int:
        sent = await self.relay_once()
        self.healthy_kafka = True
        return sent

    async def run(self) -> None:
        """Relays until cancelled; Kafka or Postgres outages only delay rows, never drop them.

        A `DurableTimer` whose due rows are the pending ones (woken by the outbox trigger, polling
        as the fallback), plus two periodic jobs: the backlog gauges (which matter most exactly
        while Kafka is away and rows pile up) and the purge of rows sent longer ago than the retention.
        """
        timer = DurableTimer(
            self._pool,
            channel=self._channel,
            name="outbox relay",
            fire_due=self._relay_round,
            batch_size=self._batch,
            max_sleep=self._poll,
            unexpected_retry=5.0,
            on_error=self._on_error,
            progress=self._progress,
        )
        housekeeping = [
            asyncio.ensure_future(every(1.0, self.update_gauges, failure="outbox gauges not updated")),
            asyncio.ensure_future(every(3600, self.purge_sent, failure="sent outbox rows not purged")),
        ]
        try:
            await timer.run()
        finally:
            for task in housekeeping:
                task.cancel()
            await asyncio.gather(*housekeeping, return_exceptions=True)
