"""A live worker's delivery goes out once: a slow goodbye, a slow recording, a skewed clock or a late start
do not make another worker (or a retry) send it again. Real Postgres, SMTP server and webhook receiver."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from asyncpg.transaction import Transaction

from services.notify import handlers
from services.notify.adapters import repository as repo
from services.notify.adapters.ack_links import AckLinks
from services.notify.adapters.channels import EmailClient, WebhookClient
from services.notify.adapters.repository import PostgresNotifyRepository
from services.notify.domain.alert import alert_id_for
from services.notify.domain.delivery import Backoff
from services.notify.entrypoints.timers import DeliveryWorker
from shared.clock import SystemClock
from shared.db import Conn
from shared.unit_of_work import InTransaction
from tests.integration.notify.conftest import Deadline
from tests.support.receivers import SmtpSink, WebhookReceiver
from tests.support.waiting import eventually

LB2 = "lb2@politi.example"


@pytest.fixture
async def clients(smtp: SmtpSink) -> AsyncIterator[tuple[WebhookClient, EmailClient]]:
    webhooks = WebhookClient(timeout=1.0)
    yield webhooks, EmailClient("127.0.0.1", smtp.port, "notify@politi.example", timeout=1.0)
    await webhooks.close()


def worker(pool: asyncpg.Pool, ctx: handlers.Context, clients: tuple[WebhookClient, EmailClient], notify_schema: str,
           lease: float, **extra: float) -> DeliveryWorker:  # fmt: skip
    webhooks, email = clients
    return DeliveryWorker(
        pool, ctx, SystemClock(), schema=notify_schema, webhooks=webhooks, email=email,
        ack_links=AckLinks("test-ack-secret-0123456789", "http://127.0.0.1:8003", 3600),
        backoff=Backoff(base=0.2, cap=1.0, max_attempts=3), lease=timedelta(seconds=lease), batch=10,
        concurrency=10, **extra,
    )  # fmt: skip


async def _warn(pool: asyncpg.Pool, ctx: handlers.Context) -> Deadline:
    """A warning for Roskilde: a webhook to lb-roskilde-1 and an e-mail to lb-roskilde-2, both pending."""
    deadline = Deadline()
    event = deadline.warning()
    async with pool.acquire() as conn, conn.transaction():
        uow = InTransaction(conn, lambda c: PostgresNotifyRepository(c, topic=ctx.alerts_topic))
        await handlers.handle_deadline_event(uow, event.meta, event.payload(), ctx, datetime.now(UTC))
    return deadline


async def _states(pool: asyncpg.Pool, deadline: Deadline) -> dict[str, tuple[str, int, str | None]]:
    rows = await pool.fetch(
        "SELECT channel, state, attempts, lease_owner FROM deliveries WHERE alert_id = $1 AND stage = 'raised'",
        alert_id_for(deadline.case_id, deadline.rule),
    )
    return {r["channel"]: (r["state"], r["attempts"], r["lease_owner"]) for r in rows}


async def test_a_mail_the_server_took_counts_as_delivered_though_its_goodbye_never_comes(smtp: SmtpSink) -> None:
    smtp.quit_delay = 3.0  # QUIT unanswered for longer than the whole send may take
    client = EmailClient("127.0.0.1", smtp.port, "notify@politi.example", timeout=1.0)
    outcome = await client.send(LB2, "Frist", "tekst", "4f1c2b0e-1111-4aaa-8bbb-0123456789ab", datetime.now(UTC))
    # The server answered 250 to the message: it is delivered. A "retry" here would send it again.
    assert outcome.verdict == "delivered", outcome
    assert len(smtp.to(LB2)) == 1


async def test_a_worker_whose_recording_waits_past_its_lease_keeps_the_delivery(
    pool: asyncpg.Pool,
    ctx: handlers.Context,
    clients: tuple[WebhookClient, EmailClient],
    notify_schema: str,
    receiver: WebhookReceiver,
    smtp: SmtpSink,
) -> None:
    deadline = await _warn(pool, ctx)
    lease = 1.5  # room for a send (the clients' 1 s bound) and the recording margin
    first = worker(pool, ctx, clients, notify_schema, lease, record_margin=0.3)
    second = worker(pool, ctx, clients, notify_schema, lease, record_margin=0.3)
    try:
        async with pool.acquire() as holder:
            # Someone holds the alert (an ack, an escalation round on a loaded database): the first
            # worker's results wait for it, with both messages already sent, for three leases.
            alit = alert_id_for(deadline.case_id, deadline.rule)
            hold = await _sent_while_the_alert_is_held(holder, alit, first, receiver, smtp)
            await _keep_looking(second, 3 * lease)
            await hold.rollback()
        await eventually(lambda: _all_delivered(pool, alit), timeout=10, what="both recorded delivered")
    finally:
        await first.close()
        await second.close()
    assert Counter(str(m["Message-ID"]) for m in smtp.to(LB2)).most_common(1)[0][1] == 1
    assert len(receiver.delivered("/lb1")) == 1
    states = await _states(pool, deadline)
    assert states["webhook"][:2] == ("delivered", 1) and states["email"][:2] == ("delivered", 1)


async def test_a_recording_cut_off_by_the_database_is_tried_again_not_the_send(
    pool: asyncpg.Pool,
    ctx: handlers.Context,
    clients: tuple[WebhookClient, EmailClient],
    notify_schema: str,
    receiver: WebhookReceiver,
    smtp: SmtpSink,
) -> None:
    deadline = await _warn(pool, ctx)
    alert_id = alert_id_for(deadline.case_id, deadline.rule)
    lease = 1.5
    first = worker(pool, ctx, clients, notify_schema, lease, record_margin=0.3)
    second = worker(pool, ctx, clients, notify_schema, lease, record_margin=0.3)
    try:
        async with pool.acquire() as holder:
            hold = await _sent_while_the_alert_is_held(holder, alert_id, first, receiver, smtp)
            # The database ends the sessions recording the results (a restart, a full server refusing
            # and dropping connections): the messages are out, only their recording failed.
            await eventually(lambda: _cut_off_recordings(pool, 2), timeout=10, what="both recordings cut off")
            await hold.rollback()
        await _keep_looking(second, 3 * lease)
        await eventually(lambda: _all_delivered(pool, alert_id), timeout=10, what="both recorded delivered")
    finally:
        await first.close()
        await second.close()
    assert len(smtp.to(LB2)) == 1 and len(receiver.delivered("/lb1")) == 1


async def _sent_while_the_alert_is_held(
    holder: Conn, alert_id: object, first: DeliveryWorker, receiver: WebhookReceiver, smtp: SmtpSink
) -> Transaction:
    """`holder` locks the alert in a transaction it returns; `first` sends both messages, its recordings wait."""
    hold = holder.transaction()
    await hold.start()
    await holder.execute("SELECT 1 FROM alerts WHERE id = $1 FOR UPDATE", alert_id)
    assert await first.fire_due() == 2
    await eventually(lambda: len(smtp.to(LB2)) == 1 and len(receiver.delivered("/lb1")) == 1, timeout=10,
                     what="both sent by the first worker")  # fmt: skip
    return hold


async def _keep_looking(second: DeliveryWorker, seconds: float) -> None:
    """The second worker looks for due deliveries all the while."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        await second.fire_due()
        await asyncio.sleep(0.1)


async def _cut_off_recordings(pool: asyncpg.Pool, n: int) -> bool:
    """Ends the sessions waiting for the held alert row to record a result, once `n` of them wait."""
    pids = [r["pid"] for r in await pool.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        " AND query LIKE '%FROM alerts WHERE id = $1 FOR SHARE%'"
    )]  # fmt: skip
    if len(pids) < n:
        return False
    await pool.execute("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid", pids)
    return True


async def _all_delivered(pool: asyncpg.Pool, alert_id: object) -> bool:
    n = await pool.fetchval(
        "SELECT count(*) FROM deliveries WHERE alert_id = $1 AND stage = 'raised' AND state = 'delivered'", alert_id
    )
    return bool(n == 2)


async def test_a_worker_with_too_little_lease_left_hands_the_delivery_back_unsent(
    pool: asyncpg.Pool,
    ctx: handlers.Context,
    clients: tuple[WebhookClient, EmailClient],
    notify_schema: str,
    receiver: WebhookReceiver,
    smtp: SmtpSink,
) -> None:
    deadline = await _warn(pool, ctx)
    # A lease no longer than the time kept for recording: no send could finish inside it.
    late = worker(pool, ctx, clients, notify_schema, 1.0, record_margin=1.0)
    try:
        assert await late.fire_due() == 2
        await eventually(lambda: _released(pool, deadline), timeout=10, what="both handed back")
    finally:
        await late.close()
    assert smtp.to(LB2) == [] and receiver.delivered("/lb1") == []
    # Handed back at once and not counted as an attempt: a healthy worker sends them promptly.
    assert await _states(pool, deadline) == {"webhook": ("pending", 0, None), "email": ("pending", 0, None)}
    healthy = worker(pool, ctx, clients, notify_schema, 5.0)
    try:
        assert await healthy.fire_due() == 2
        await eventually(lambda: len(smtp.to(LB2)) == 1 and len(receiver.delivered("/lb1")) == 1, timeout=10,
                         what="sent by the healthy worker")  # fmt: skip
    finally:
        await healthy.close()


async def _released(pool: asyncpg.Pool, deadline: Deadline) -> bool:
    states = await _states(pool, deadline)
    return all(owner is None for _, _, owner in states.values())


async def test_a_worker_whose_clock_runs_ahead_cannot_take_a_live_lease(
    pool: asyncpg.Pool, ctx: handlers.Context
) -> None:
    await _warn(pool, ctx)
    async with pool.acquire() as conn:
        taken = await repo.claim_deliveries(conn, datetime.now(UTC), "worker-a", timedelta(seconds=30), 10)
        assert len(taken) == 2
        # Leases are measured by Postgres's clock: a host whose clock is a minute fast sees them held.
        ahead = datetime.now(UTC) + timedelta(minutes=1)
        assert await repo.claim_deliveries(conn, ahead, "worker-b", timedelta(seconds=30), 10) == []
