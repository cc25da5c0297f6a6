"""Notify's two durable timers in Postgres: the delivery worker and the escalation timer.

Both follow one shape, `fire_due()` (one round, returns how many it took) and `next_due()`
(when the next one falls due), run by the shared `DurableTimer` (shared/timers.py): LISTEN/NOTIFY
on `channel` wakes it early, and it sleeps until the next due time otherwise (the cap only guards
a lost notification).

Escalations fire inside one transaction (row lock, SKIP LOCKED, commit): once across instances
and restarts. Deliveries are claimed under a lease in a short transaction and sent with no
transaction open; the result is written in a second one. A worker killed mid-send leaves the
lease to run out, and the delivery is sent again with the same id (webhook-id, Message-ID).
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from datetime import datetime, timedelta
from typing import Protocol

import asyncpg

from services.notify import handlers
from services.notify.adapters import repository as repo
from services.notify.adapters.ack_links import AckLinks
from services.notify.adapters.channels import EmailClient, WebhookClient
from services.notify.adapters.repository import PostgresNotifyRepository
from services.notify.domain import messages
from services.notify.domain.delivery import Backoff, Outcome
from services.notify.metrics import TIMER_PARKED, count_events, observe_delivery
from shared.clock import Clock

log = logging.getLogger(__name__)


class Timer(Protocol):
    channel: str

    async def fire_due(self) -> int: ...

    async def next_due(self) -> datetime | None: ...


class EscalationTimer:
    def __init__(self, pool: asyncpg.Pool, ctx: handlers.Context, clock: Clock, *, schema: str, batch: int) -> None:
        self.channel = f"notify_timers_{schema}"
        self._pool = pool
        self._ctx = ctx
        self._clock = clock
        self._batch = batch

    async def fire_due(self) -> int:
        now = self._clock.now()
        async with self._pool.acquire() as conn, conn.transaction():
            repository = PostgresNotifyRepository(conn, topic=self._ctx.alerts_topic)
            done = await handlers.fire_due_alerts(repository, self._ctx, now, self._batch)
        # Counted after the commit: a rolled-back round counts nothing.
        for applied in done.fired:
            count_events(applied.events, applied.shown, now)
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
    ) -> None:
        self.channel = f"notify_deliveries_{schema}"
        self.owner = f"{uuid.uuid4().hex[:12]}"
        self._pool = pool
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

    async def fire_due(self) -> int:
        """Claims as many due deliveries as there is room for and starts sending them; returns how many.

        Sends run as their own tasks, so one slow receiver holds up only its own slot, never the rest.
        """
        if len(self._in_flight) >= self._concurrency:
            await asyncio.wait(self._in_flight, return_when=asyncio.FIRST_COMPLETED)
        room = min(self._batch, self._concurrency - len(self._in_flight))
        now = self._clock.now()
        async with self._pool.acquire() as conn, conn.transaction():
            claimed = await repo.claim_deliveries(conn, now, self.owner, self._lease, room)
            if not claimed:
                return 0
            views = await repo.alert_views(conn, [d["alert_id"] for d in claimed])
            disabled = await repo.disabled_targets(conn, [d["target"] for d in claimed])
        # No transaction is open from here on while webhooks and SMTP answer.
        for delivery in claimed:
            task = asyncio.create_task(self._deliver(delivery, views[delivery["alert_id"]], disabled))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
        return len(claimed) if len(claimed) < room else self._batch  # full: look again at once

    async def close(self) -> None:
        """Stops sends in flight; their leases run out and another round (or instance) sends them again."""
        for task in list(self._in_flight):
            task.cancel()
        await asyncio.gather(*self._in_flight, return_exceptions=True)

    async def next_due(self) -> datetime | None:
        async with self._pool.acquire() as conn:
            return await repo.next_delivery(conn)

    async def _deliver(self, delivery: asyncpg.Record, view: messages.AlertView, disabled: set[str]) -> None:
        if delivery["target"] in disabled:
            outcome = Outcome("gone", "endpoint disabled after an earlier 410 Gone")
        else:
            outcome = await self._send(delivery, view)
        now = self._clock.now()
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                repository = PostgresNotifyRepository(conn, topic=self._ctx.alerts_topic)
                result, events = await handlers.record_outcome(
                    repository, delivery, outcome, owner=self.owner, ctx=self._ctx, backoff=self._backoff,
                    random=self._random, now=now,
                )  # fmt: skip
        except Exception as exc:
            # The lease runs out and the delivery is tried again: never lost, at worst repeated
            # with the same id.
            log.warning("delivery %s: result not recorded (%r); it will be retried", delivery["id"], exc)
            return
        if result == "lost":
            return  # another worker took the delivery over when this one's lease ran out: its result counts
        observe_delivery(delivery["channel"], delivery["stage"], result, delivery["happened_at"], now)
        count_events(events)

    async def _send(self, delivery: asyncpg.Record, view: messages.AlertView) -> Outcome:
        channel = delivery["channel"]
        if channel == "console":
            return Outcome("delivered", "shown on the console")
        stage = delivery["stage"]
        ack_url = self._links.url(uuid.UUID(view.alert_id), delivery["id"], delivery["recipient_id"], view.ack_scope)
        now = self._clock.now()
        try:
            if channel == "webhook":
                recipient = self._ctx.roster().find(delivery["recipient_id"])
                secret = next(
                    (c.secret for c in recipient.channels if c.kind == "webhook" and c.target == delivery["target"]),
                    None,
                ) if recipient else None  # fmt: skip
                if not secret:
                    return Outcome("failed", "the roster no longer has this webhook endpoint")
                payload = messages.webhook_payload(view, stage, str(delivery["id"]), ack_url)
                return await self._webhooks.send(delivery["target"], secret, str(delivery["id"]), payload, now)
            text = messages.email_text(view, stage, ack_url)
            return await self._email.send(
                delivery["target"], messages.subject(view, stage), text, str(delivery["id"]), now
            )
        except Exception as exc:  # a client bug must not lose the delivery: retry it
            log.exception("delivery %s: sending failed unexpectedly", delivery["id"])
            return Outcome("retry", f"{type(exc).__name__}: {exc}"[:300])
