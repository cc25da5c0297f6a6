"""Notify's two durable timers in Postgres: the delivery worker and the escalation timer.

Both follow one shape, `fire_due()` (one round, returns how many it took) and `next_due()`
(when the next one falls due), run by the shared `DurableTimer` (shared/timers.py): LISTEN/NOTIFY
on `channel` wakes it early, and it sleeps until the next due time otherwise (the cap only guards
a lost notification).

Escalations fire inside one transaction (row lock, SKIP LOCKED, commit): once across instances
and restarts. Deliveries are claimed under a lease in a short transaction and sent with no
transaction open; the result is written in a second one. A worker killed mid-send leaves the
lease to run out, and the delivery is sent again with the same id (webhook-id, Message-ID):
at least once, never lost.

While both live, two instances do not send one delivery twice:
- leases are set and judged by Postgres's clock, so hosts' clocks and a claim's wait for a
  connection do not matter;
- the worker renews the leases of what it is sending or recording every third of a lease, so a
  recording that waits (for a pool connection, for an alert row an ack or escalation holds) keeps
  its delivery; only a worker that dies, or freezes for most of a lease, lets it go;
- a send is bounded by its lease's time left minus a margin for recording, and one with too
  little left is handed back unsent instead of started late;
- a result the database refuses or drops (full, restarting, a deadlock) is recorded again, not
  the message sent again;
- an e-mail the server answered 250 to is delivered even if QUIT goes unanswered.

What remains, by design at least once rather than at most once, always with the same id: the
receiver's 250 or 2xx arriving after our bound (or the connection dropping just before it);
a crash between that answer and the recording; and a worker frozen (stopped, swapped out, its
loop starved) for longer than what is left of a lease, whose renewal comes too late.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from datetime import datetime, timedelta
from typing import Protocol

import asyncpg
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from services.notify import handlers
from services.notify.adapters import repository as repo
from services.notify.adapters.ack_links import AckLinks
from services.notify.adapters.channels import EmailClient, WebhookClient
from services.notify.adapters.repository import PostgresNotifyRepository
from services.notify.domain import messages
from services.notify.domain.delivery import Backoff, Delivery, Outcome
from services.notify.domain.roster import VAGTCENTRAL_ID
from services.notify.metrics import TIMER_PARKED, count_events, observe_delivery
from services.notify.settings import LEASE_MARGIN_SECONDS
from shared import backoff as shared_backoff
from shared import tracing
from shared.clock import Clock
from shared.db import is_transient
from shared.events import CloudEvent
from shared.logs import log_context
from shared.unit_of_work import PostgresUnitOfWork

log = logging.getLogger(__name__)

# A send given less time than this could hardly succeed; it is handed back rather than started.
MIN_SEND_SECONDS = 0.2


def unit_of_work(pool: asyncpg.Pool, ctx: handlers.Context) -> PostgresUnitOfWork[PostgresNotifyRepository]:
    """The use cases' unit of work for a timer: a transaction of its own on a connection of the pool."""
    return PostgresUnitOfWork(lambda: pool, lambda conn: PostgresNotifyRepository(conn, topic=ctx.alerts_topic))


class Timer(Protocol):
    channel: str

    async def fire_due(self) -> int: ...

    async def next_due(self) -> datetime | None: ...


class EscalationTimer:
    def __init__(self, pool: asyncpg.Pool, ctx: handlers.Context, clock: Clock, *, schema: str, batch: int) -> None:
        self.channel = f"notify_timers_{schema}"
        self._pool = pool
        self._uow = unit_of_work(pool, ctx)
        self._ctx = ctx
        self._clock = clock
        self._batch = batch

    async def fire_due(self) -> int:
        now = self._clock.now()
        done = await handlers.fire_due_alerts(self._uow, self._ctx, now, self._batch)
        # Counted after the commit (the use case's transaction ended): a rolled-back round counts nothing.
        for applied in done.fired:
            count_events(applied.events, applied.shown, now)
            if applied.alert is not None and log.isEnabledFor(logging.DEBUG):
                alert = applied.alert
                with log_context(alert_id=alert.id, case_id=alert.case_id, deadline_id=alert.deadline_id):
                    log.debug("escalation timer: fired (%d events)", len(applied.events))
        if done.parked:
            TIMER_PARKED.inc(done.parked)
        return len(done.fired) + done.parked

    async def next_due(self) -> datetime | None:
        async with self._pool.acquire() as conn:
            return await repo.next_timer(conn)


class DeliveryWorker:
    def __init__(
        self,
        pool: asyncpg.Pool,
        ctx: handlers.Context,
        clock: Clock,
        *,
        schema: str,
        webhooks: WebhookClient,
        email: EmailClient,
        ack_links: AckLinks,
        backoff: Backoff,
        lease: timedelta,
        batch: int,
        concurrency: int,
        record_margin: float = LEASE_MARGIN_SECONDS,
    ) -> None:
        self.channel = f"notify_deliveries_{schema}"
        self.owner = f"{uuid.uuid4().hex[:12]}"
        self._pool = pool
        self._uow = unit_of_work(pool, ctx)
        self._ctx = ctx
        self._clock = clock
        self._webhooks = webhooks
        self._email = email
        self._links = ack_links
        self._backoff = backoff
        self._lease = lease
        self._batch = batch
        self._concurrency = concurrency
        self._in_flight: set[asyncio.Task[None]] = set()
        self._random = random.random
        # Time a send must leave on its lease for recording the result.
        self._record_margin = record_margin
        # Delivery id -> when (event-loop clock) its lease runs out at the earliest; kept while sending
        # or recording. Measured from before the claim or renewal, so never later than Postgres's.
        self._held: dict[uuid.UUID, float] = {}
        self._renewing: asyncio.Task[None] | None = None

    async def fire_due(self) -> int:
        """Claims as many due deliveries as there is room for and starts sending them; returns how many.

        Sends run as their own tasks, so one slow receiver holds up only its own slot, never the rest.
        """
        if len(self._in_flight) >= self._concurrency:
            await asyncio.wait(self._in_flight, return_when=asyncio.FIRST_COMPLETED)
        room = min(self._batch, self._concurrency - len(self._in_flight))
        now = self._clock.now()
        # Before the claim: Postgres sets each lease after this moment, so it runs out no sooner than this + lease.
        claimed_at = asyncio.get_running_loop().time()
        async with self._pool.acquire() as conn, conn.transaction():
            claimed = await repo.claim_deliveries(conn, now, self.owner, self._lease, room)
            if not claimed:
                return 0
            views = await repo.alert_views(conn, [d.alert_id for d in claimed])
            disabled = await repo.disabled_targets(conn, [d.target for d in claimed])
        # No transaction is open from here on while webhooks and SMTP answer.
        for delivery in claimed:
            self._held[delivery.id] = claimed_at + self._lease.total_seconds()
            task = asyncio.create_task(self._deliver(delivery, views[delivery.alert_id], disabled))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
        if self._renewing is None or self._renewing.done():
            self._renewing = asyncio.create_task(self._keep_leases())
        return len(claimed) if len(claimed) < room else self._batch  # full: look again at once

    async def close(self) -> None:
        """Stops sends in flight; their leases run out and another round (or instance) sends them again."""
        tasks = [*self._in_flight, *([self._renewing] if self._renewing else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _keep_leases(self) -> None:
        """Renews the leases of the deliveries this worker is sending or recording, every third of a lease.

        A live worker thus keeps its deliveries however long a recording waits (for a connection, for
        an alert another transaction holds): no other instance takes them over and sends them again.
        A worker that dies stops renewing, and its leases run out as before.
        """
        loop = asyncio.get_running_loop()
        lease = self._lease.total_seconds()
        while self._held:
            await asyncio.sleep(lease / 3)
            ids = list(self._held)
            if not ids:
                return
            asked_at = loop.time()
            try:
                async with self._pool.acquire() as conn:
                    renewed = await repo.renew_leases(conn, ids, self.owner, self._lease)
            except Exception as exc:  # the renewing must outlive any one failed round
                # The sends go on under what is left of their leases, and none starts without enough.
                log.warning("delivery leases not renewed (%r); %d deliveries in flight", exc, len(ids))
                continue
            for delivery_id in renewed:
                if delivery_id in self._held:
                    self._held[delivery_id] = asked_at + lease

    async def next_due(self) -> datetime | None:
        async with self._pool.acquire() as conn:
            return await repo.next_delivery(conn)

    async def _deliver(self, delivery: Delivery, view: messages.AlertView, disabled: set[str]) -> None:
        try:
            # Each delivery is a task of its own: its lines name the alert it is for, and its span
            # continues the trace of what wrote it (the deadline event that raised the alert).
            with (
                log_context(alert_id=delivery.alert_id, case_id=view.case_id),
                tracing.span(
                    f"deliver {delivery.channel}",
                    kind=SpanKind.CLIENT,
                    parent=tracing.extract({"traceparent": delivery.trace_context or ""}),
                    attributes={
                        "mvsj.alert_id": str(delivery.alert_id),
                        "mvsj.case_id": view.case_id,
                        "mvsj.delivery_id": str(delivery.id),
                        "mvsj.channel": delivery.channel,
                        "mvsj.stage": delivery.stage,
                        "mvsj.attempt": delivery.attempts,
                    },
                ),
            ):
                await self._deliver_held(delivery, view, disabled)
        finally:
            self._held.pop(delivery.id, None)

    async def _deliver_held(self, delivery: Delivery, view: messages.AlertView, disabled: set[str]) -> None:
        if delivery.target in disabled:
            outcome = Outcome("gone", "endpoint disabled after an earlier 410 Gone")
        else:
            # A send ends while the lease still has room for recording its result: one that could not
            # (a starved loop, leases not renewed) is not started late but handed back for a prompt retry.
            budget = self._held[delivery.id] - asyncio.get_running_loop().time() - self._record_margin
            if budget < MIN_SEND_SECONDS:
                await self._hand_back(delivery, budget)
                return
            outcome = await self._send(delivery, view, budget)
        span = trace.get_current_span()
        span.set_attribute("mvsj.outcome", outcome.verdict)
        if outcome.verdict != "delivered":
            tracing.failed(span, outcome.verdict)
        recorded = await self._record(delivery, outcome)
        if recorded is None:
            return
        result, events, now = recorded
        if result == "lost":
            # Another worker took the delivery over when this one's lease ran out, and sends it too
            # (same id): its result counts. (Or an earlier try of this recording did commit.)
            log.warning("delivery %s: no longer held when its result came to be recorded", delivery.id)
            return
        observe_delivery(delivery.channel, delivery.stage, result, delivery.happened_at, now)
        count_events(events)

    async def _record(self, delivery: Delivery, outcome: Outcome) -> tuple[str, list[CloudEvent], datetime] | None:
        """Writes the send's result; a database that refuses or drops the connection is waited out.

        Giving up means sending again (the lease runs out), so a transient error is retried for as
        long as three leases while the lease is renewed; a retry after the result did commit finds
        the lease gone and changes nothing.
        """
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + 3 * self._lease.total_seconds()
        pauses = shared_backoff.Backoff(first=0.1, cap=2.0)
        while True:
            now = self._clock.now()
            try:
                result, events = await handlers.record_outcome(
                    self._uow, delivery, outcome, owner=self.owner, ctx=self._ctx, backoff=self._backoff,
                    random=self._random, now=now,
                )  # fmt: skip
                return result, events, now
            except Exception as exc:
                pause = pauses.next()
                if is_transient(exc) and loop.time() + pause < give_up_at:
                    log.warning("delivery %s: result not recorded yet (%r); trying again", delivery.id, exc)
                    await asyncio.sleep(pause)
                    continue
                # The lease runs out and the delivery is tried again: never lost, at worst repeated
                # with the same id.
                log.warning("delivery %s: result not recorded (%r); it will be retried", delivery.id, exc)
                return None

    async def _hand_back(self, delivery: Delivery, budget: float) -> None:
        log.warning("delivery %s: too little lease left to send (%.2f s); handed back", delivery.id, budget)
        try:
            async with self._pool.acquire() as conn:
                await repo.release_delivery(conn, delivery.id, self.owner)
        except Exception as exc:
            log.warning("delivery %s: not handed back (%r); its lease runs out instead", delivery.id, exc)

    async def _send(self, delivery: Delivery, view: messages.AlertView, budget: float) -> Outcome:
        channel = delivery.channel
        if channel == "console":
            return Outcome("delivered", "shown on the console")
        stage = delivery.stage
        # An ack link acknowledges as the person it was sent to; the vagtcentral's shared channel is a desk,
        # so its messages carry none: whoever takes the alert there does so on the console, as himself.
        ack_url = (
            None
            if delivery.recipient_id == VAGTCENTRAL_ID
            else self._links.url(uuid.UUID(view.alert_id), delivery.id, delivery.recipient_id, view.ack_scope)
        )
        now = self._clock.now()
        try:
            if channel == "webhook":
                recipient = self._ctx.roster().find(delivery.recipient_id)
                secret = next(
                    (c.secret for c in recipient.channels if c.kind == "webhook" and c.target == delivery.target),
                    None,
                ) if recipient else None  # fmt: skip
                if not secret:
                    return Outcome("failed", "the roster no longer has this webhook endpoint")
                payload = messages.webhook_payload(view, stage, str(delivery.id), ack_url)
                return await self._webhooks.send(
                    delivery.target, secret, str(delivery.id), payload, now, timeout=budget
                )
            text = messages.email_text(view, stage, ack_url)
            return await self._email.send(
                delivery.target, messages.subject(view, stage), text, str(delivery.id), now, timeout=budget
            )
        except Exception as exc:  # a client bug must not lose the delivery: retry it
            log.exception("delivery %s: sending failed unexpectedly", delivery.id)
            return Outcome("retry", f"{type(exc).__name__}: {exc}"[:300])
