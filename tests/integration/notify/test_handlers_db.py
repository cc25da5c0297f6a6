"""The use cases on a real Postgres: an ack racing a resolve ends resolved, and changes reach a live feed."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from services.notify import handlers
from services.notify.adapters import repository as repo
from services.notify.adapters.changes import alert_changes
from services.notify.adapters.repository import PostgresNotifyRepository
from services.notify.domain.alert import AlreadyResolved, alert_id_for
from services.notify.domain.delivery import Backoff, Delivery, Outcome
from shared.aio import within
from shared.db import Conn
from shared.events import CloudEvent
from shared.unit_of_work import InTransaction
from tests.integration.notify.conftest import Deadline
from tests.support.infra import Namespace


def _repo(conn: Conn, ctx: handlers.Context) -> PostgresNotifyRepository:
    return PostgresNotifyRepository(conn, topic=ctx.alerts_topic)


def _uow(conn: Conn, ctx: handlers.Context) -> InTransaction[PostgresNotifyRepository]:
    """The use cases' unit of work inside the test's transaction on `conn`."""
    return InTransaction(conn, lambda c: _repo(c, ctx))


async def _apply(pool: asyncpg.Pool, ctx: handlers.Context, event: CloudEvent) -> handlers.Applied:
    async with pool.acquire() as conn, conn.transaction():
        return await handlers.handle_deadline_event(
            _uow(conn, ctx), event.meta, event.payload(), ctx, datetime.now(UTC)
        )


@pytest.mark.parametrize("round_", range(6))
async def test_an_ack_racing_a_resolve_always_ends_resolved(
    pool: asyncpg.Pool, ctx: handlers.Context, round_: int
) -> None:
    deadline = Deadline()
    await _apply(pool, ctx, deadline.warning())
    alert_id = alert_id_for(deadline.case_id, deadline.rule)
    outcome: dict[str, object] = {}

    async def ack() -> None:
        async with pool.acquire() as conn, conn.transaction():
            try:
                await handlers.acknowledge(_uow(conn, ctx), alert_id, "lb-roskilde-1", "api", ctx, datetime.now(UTC))
                outcome["ack"] = "accepted"
            except AlreadyResolved:
                outcome["ack"] = "refused"

    async def resolve() -> None:
        await _apply(pool, ctx, deadline.met())

    # Both orders, and truly at once: the row lock decides who goes first.
    first, second = (ack, resolve) if round_ % 2 else (resolve, ack)
    await asyncio.gather(first(), second())
    row = await pool.fetchrow("SELECT state, acknowledged_by, next_timer_at FROM alerts WHERE id = $1", alert_id)
    assert row is not None and row["state"] == "resolved" and row["next_timer_at"] is None
    assert (row["acknowledged_by"] == "lb-roskilde-1") == (outcome["ack"] == "accepted")
    # The warning's own deliveries were never sent (no worker runs here): the resolve (and an ack
    # before it) must have cancelled every one of them, so nothing about a closed alert goes out.
    states = await pool.fetch(
        "SELECT state, count(*) AS n FROM deliveries WHERE alert_id = $1 AND stage = 'raised' GROUP BY state",
        alert_id,
    )
    assert {r["state"]: r["n"] for r in states} == {"cancelled": 2}


async def test_alert_changes_reach_a_live_feed(
    ns: Namespace, pool: asyncpg.Pool, ctx: handlers.Context, notify_schema: str
) -> None:
    seen: list[uuid.UUID | None] = []
    feed = alert_changes(pool, notify_schema, idle=0.5)

    async def listen() -> None:
        async for changed in feed:
            seen.append(changed)

    task = asyncio.create_task(listen())
    await asyncio.sleep(0.3)  # listening
    deadline = Deadline()
    await _apply(pool, ctx, deadline.warning())
    alert_id = alert_id_for(deadline.case_id, deadline.rule)
    for _ in range(50):
        if alert_id in seen:
            break
        await asyncio.sleep(0.1)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert alert_id in seen


async def test_a_late_failure_racing_an_ack_hands_nothing_to_the_next_channel(
    pool: asyncpg.Pool, ctx: handlers.Context
) -> None:
    deadline = Deadline()
    await _apply(pool, ctx, deadline.warning())
    alert_id = alert_id_for(deadline.case_id, deadline.rule)
    async with pool.acquire() as conn:
        claimed = await repo.claim_deliveries(conn, datetime.now(UTC), "worker-1", timedelta(minutes=1), 10)
    # lb-roskilde-1's webhook, in flight; its next channel is e-mail.
    webhook = next(d for d in claimed if d.recipient_id == "lb-roskilde-1")
    async with pool.acquire() as acking, pool.acquire() as worker:
        ack = acking.transaction()
        await ack.start()
        await handlers.acknowledge(_uow(acking, ctx), alert_id, "lb-roskilde-2", "api", ctx, datetime.now(UTC))

        async def fail_late() -> str:
            async with worker.transaction():
                result, _ = await handlers.record_outcome(
                    _uow(worker, ctx), webhook, Outcome("failed", "HTTP 500"), owner="worker-1", ctx=ctx,
                    backoff=Backoff(base=0.1, cap=1, max_attempts=1), random=lambda: 0.5, now=datetime.now(UTC),
                )  # fmt: skip
                return result

        late = asyncio.create_task(fail_late())
        await asyncio.sleep(0.5)  # the result waits for the ack's transaction to end
        await ack.commit()
        assert await late == "failed"
    pending = await pool.fetch(
        "SELECT channel FROM deliveries WHERE alert_id = $1 AND stage = 'raised' AND recipient_id = 'lb-roskilde-1'"
        " AND state = 'pending'",
        alert_id,
    )
    assert [dict(r) for r in pending] == []  # the warning is acknowledged: no e-mail follows the failed webhook


async def test_one_alert_that_cannot_fire_is_parked_and_the_others_still_escalate(
    pool: asyncpg.Pool, ctx: handlers.Context
) -> None:
    good, unreadable, unsendable = Deadline(), Deadline(), Deadline()
    ids = {}
    for name, deadline in (("good", good), ("unreadable", unreadable), ("unsendable", unsendable)):
        await _apply(pool, ctx, deadline.warning())
        ids[name] = alert_id_for(deadline.case_id, deadline.rule)
    await pool.execute("UPDATE alerts SET next_timer_at = now() - interval '1 second' WHERE id = ANY($1)",
                       list(ids.values()))  # fmt: skip
    # One row no longer maps to an alert; another's events cannot be built (no such kommune).
    await pool.execute("UPDATE alerts SET chain = '{\"steps\": 1}' WHERE id = $1", ids["unreadable"])
    await pool.execute("UPDATE alerts SET kommune = '9999' WHERE id = $1", ids["unsendable"])
    async with pool.acquire() as conn, conn.transaction():
        round_ = await handlers.fire_due_alerts(_uow(conn, ctx), ctx, datetime.now(UTC), limit=10)
    assert [a.alert.id for a in round_.fired if a.alert] == [ids["good"]] and round_.parked == 2
    rows = {r["id"]: r for r in await pool.fetch("SELECT id, state, level, next_timer_at, timer_error FROM alerts"
                                                 " WHERE id = ANY($1)", list(ids.values()))}  # fmt: skip
    assert rows[ids["good"]]["state"] == "escalated" and rows[ids["good"]]["timer_error"] is None
    for name in ("unreadable", "unsendable"):
        parked = rows[ids[name]]
        assert parked["state"] == "open" and parked["level"] == 0 and parked["next_timer_at"] is None
        assert parked["timer_error"]
    assert "9999" in rows[ids["unsendable"]]["timer_error"]
    # Nothing the parked alerts' failed attempts wrote survives: no escalation deliveries, one audit row.
    escalations = await pool.fetchval(
        "SELECT count(*) FROM deliveries WHERE alert_id = ANY($1) AND stage LIKE '%escalated%'",
        [ids["unreadable"], ids["unsendable"]],
    )
    assert escalations == 0
    kinds = await pool.fetch("SELECT kind FROM audit WHERE alert_id = $1 ORDER BY id", ids["unsendable"])
    assert [k["kind"] for k in kinds] == ["raised", "timer_parked"]


async def test_the_alert_locked_with_its_cases_reference_waits_for_a_holder_and_reads_what_it_wrote(
    pool: asyncpg.Pool, ctx: handlers.Context
) -> None:
    deadline = Deadline()
    await _apply(pool, ctx, deadline.warning())
    alert_id = alert_id_for(deadline.case_id, deadline.rule)
    async with pool.acquire() as conn, conn.transaction():
        # Unknown alert: no alert, but the case's reference (a new alert names its case); unknown case: neither.
        assert await _repo(conn, ctx).lock_alert_of_case(uuid.uuid4(), deadline.case_id) == (None, deadline.reference)
        assert await _repo(conn, ctx).lock_alert_of_case(uuid.uuid4(), uuid.uuid4()) == (None, None)

    async with pool.acquire() as holder, pool.acquire() as waiter:
        holder_tx = holder.transaction()
        await holder_tx.start()
        await holder.execute("UPDATE alerts SET title = 'changed meanwhile' WHERE id = $1", alert_id)
        async with waiter.transaction():
            locking = asyncio.create_task(_repo(waiter, ctx).lock_alert_of_case(alert_id, deadline.case_id))
            await asyncio.sleep(0.3)
            assert not locking.done()  # the holder's row lock holds it up, as lock_alert's FOR UPDATE does
            await holder_tx.commit()
            alert, known = await within(locking, 10)
            assert alert is not None and alert.id == alert_id and known == deadline.reference
            assert alert.title == "changed meanwhile"  # the row as the holder left it, not as it was before
            # And now this transaction holds it: another cannot take it.
            async with pool.acquire() as other, other.transaction():
                with pytest.raises(asyncpg.LockNotAvailableError):
                    await other.execute("SELECT 1 FROM alerts WHERE id = $1 FOR UPDATE NOWAIT", alert_id)


async def test_a_delivered_result_counts_only_while_its_lease_is_held(
    pool: asyncpg.Pool, ctx: handlers.Context
) -> None:
    deadline = Deadline()
    await _apply(pool, ctx, deadline.warning())
    async with pool.acquire() as conn:
        claimed = await repo.claim_deliveries(conn, datetime.now(UTC), "worker-1", timedelta(minutes=1), 10)
    first, second = [d for d in claimed if d.channel != "console"][:2]
    # The second's lease ran out and another worker took it over: worker-1's late result is not its to record.
    await pool.execute("UPDATE deliveries SET lease_owner = 'worker-2' WHERE id = $1", second.id)

    async def delivered(delivery: Delivery) -> str:
        async with pool.acquire() as conn, conn.transaction():
            result, _ = await handlers.record_outcome(
                _uow(conn, ctx), delivery, Outcome("delivered", "HTTP 204"), owner="worker-1", ctx=ctx,
                backoff=Backoff(base=0.1, cap=1, max_attempts=1), random=lambda: 0.5, now=datetime.now(UTC),
            )  # fmt: skip
            return result

    assert await delivered(first) == "delivered"
    assert await delivered(second) == "lost"
    assert await delivered(first) == "lost"  # recorded once: the lease went with the first recording
    rows = {
        r["id"]: dict(r)
        for r in await pool.fetch(
            "SELECT id, state, lease_owner FROM deliveries WHERE id = ANY($1)", [first.id, second.id]
        )
    }
    assert rows[first.id] == {"id": first.id, "state": "delivered", "lease_owner": None}
    assert rows[second.id] == {"id": second.id, "state": "pending", "lease_owner": "worker-2"}
    kinds = await pool.fetch("SELECT detail->>'delivery_id' AS d FROM audit WHERE kind = 'delivered'"
                             " AND detail->>'channel' <> 'console'")  # fmt: skip
    assert [r["d"] for r in kinds] == [str(first.id)]
