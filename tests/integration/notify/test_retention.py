"""The retention purge on a real Postgres: what a resolved alert leaves goes after its time, an open alert keeps all."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
from prometheus_client import REGISTRY

from services.notify import handlers
from services.notify.adapters.repository import PostgresNotifyRepository
from services.notify.domain.retention import Retention
from services.notify.entrypoints.retention import RetentionPurge
from shared.clock import SystemClock
from shared.events import CloudEvent
from shared.unit_of_work import InTransaction
from tests.integration.notify.conftest import Deadline

RETENTION = Retention(deliveries=timedelta(days=90), audit=timedelta(days=5 * 365),
                      ack_link_max_age=timedelta(hours=24))  # fmt: skip


def purge_job(pool: asyncpg.Pool, batch_size: int = 2) -> RetentionPurge:
    # Batches of two: every table's backlog here takes several batches.
    return RetentionPurge(lambda: pool, RETENTION, SystemClock(), interval=3600, batch_size=batch_size)


async def apply(pool: asyncpg.Pool, ctx: handlers.Context, *events: CloudEvent) -> None:
    for event in events:
        async with pool.acquire() as conn, conn.transaction():
            uow = InTransaction(conn, lambda c: PostgresNotifyRepository(c, topic=ctx.alerts_topic))
            if event.type.split(".")[2] == "case":
                await handlers.handle_case_event(uow, event.meta, event.payload())
            else:
                await handlers.handle_deadline_event(uow, event.meta, event.payload(), ctx, datetime.now(UTC))


async def rows(pool: asyncpg.Pool, table: str, alert_id: uuid.UUID) -> int:
    column = "id" if table == "alerts" else "alert_id"
    return int(await pool.fetchval(f"SELECT count(*) FROM {table} WHERE {column} = $1", alert_id))


async def alert_of(pool: asyncpg.Pool, deadline: Deadline) -> uuid.UUID:
    found: uuid.UUID = await pool.fetchval("SELECT id FROM alerts WHERE deadline_id = $1", deadline.deadline_id)
    return found


def purged(table: str) -> float:
    return REGISTRY.get_sample_value("notify_purged_total", {"table": table}) or 0.0


async def test_a_resolved_alerts_deliveries_go_after_their_retention_and_its_trail_after_the_audits(
    pool: asyncpg.Pool, ctx: handlers.Context
) -> None:
    closed, still_open = Deadline(), Deadline()
    await apply(pool, ctx, closed.reported(), closed.warning(), closed.breached(), closed.met())
    await apply(pool, ctx, still_open.reported(), still_open.warning(), still_open.breached())
    closed_id, open_id = await alert_of(pool, closed), await alert_of(pool, still_open)
    # The delivery worker's part, played: every delivery sent (a pending one is never purged).
    await pool.execute("UPDATE deliveries SET state = 'delivered', delivered_at = now() WHERE state = 'pending'")
    before = {t: await rows(pool, t, closed_id) for t in ("deliveries", "audit")}
    assert before["deliveries"] >= 3 and before["audit"] >= 3
    open_before = {t: await rows(pool, t, open_id) for t in ("deliveries", "audit", "alerts")}
    counted = {t: purged(t) for t in ("deliveries", "audit", "alerts", "case_refs")}
    job = purge_job(pool)
    now = datetime.now(UTC)

    assert await job.run_once(now + timedelta(days=89)) == {}
    assert {t: await rows(pool, t, closed_id) for t in ("deliveries", "audit")} == before

    done = await job.run_once(now + timedelta(days=91))
    assert done == {"deliveries": before["deliveries"]}
    assert await rows(pool, "deliveries", closed_id) == 0
    assert await rows(pool, "audit", closed_id) == before["audit"]  # who acted: kept for years
    assert purged("deliveries") - counted["deliveries"] == before["deliveries"]

    done = await job.run_once(now + timedelta(days=5 * 365 + 1))
    assert done == {"alerts": 1, "audit": before["audit"], "case_refs": 1}
    assert [await rows(pool, t, closed_id) for t in ("alerts", "audit")] == [0, 0]
    assert await pool.fetchval("SELECT count(*) FROM case_refs WHERE case_id = $1", closed.case_id) == 0
    assert purged("alerts") - counted["alerts"] == 1 and purged("audit") - counted["audit"] == before["audit"]
    assert purged("case_refs") - counted["case_refs"] == 1
    # The unresolved alert, however old, keeps everything: its deliveries, its trail, its case's reference.
    assert {t: await rows(pool, t, open_id) for t in ("deliveries", "audit", "alerts")} == open_before
    assert await pool.fetchval("SELECT count(*) FROM case_refs WHERE case_id = $1", still_open.case_id) == 1


async def test_a_delivery_still_being_sent_is_not_purged_nor_its_alert(
    pool: asyncpg.Pool, ctx: handlers.Context
) -> None:
    deadline = Deadline()
    await apply(pool, ctx, deadline.warning(), deadline.met())
    alert_id = await alert_of(pool, deadline)
    delivery = await pool.fetchval("SELECT id FROM deliveries WHERE alert_id = $1 LIMIT 1", alert_id)
    await pool.execute("UPDATE deliveries SET state = 'delivered' WHERE alert_id = $1", alert_id)
    await pool.execute("UPDATE deliveries SET state = 'pending' WHERE id = $1", delivery)
    await purge_job(pool).run_once(datetime.now(UTC) + timedelta(days=91))
    assert [r["id"] for r in await pool.fetch("SELECT id FROM deliveries WHERE alert_id = $1", alert_id)] == [delivery]
    # Nor the alert and its trail, where the send's result is to be recorded.
    await purge_job(pool).run_once(datetime.now(UTC) + timedelta(days=5 * 365 + 1))
    assert await rows(pool, "alerts", alert_id) == 1 and await rows(pool, "audit", alert_id) > 0


async def test_used_ack_links_go_once_no_link_could_be_presented_again(
    pool: asyncpg.Pool, ctx: handlers.Context
) -> None:
    deadline = Deadline()
    await apply(pool, ctx, deadline.warning())
    alert_id = await alert_of(pool, deadline)
    links = [uuid.uuid4() for _ in range(5)]
    async with pool.acquire() as conn:
        for link in links:
            assert await PostgresNotifyRepository(conn, topic=ctx.alerts_topic).use_ack_link(link, alert_id)
    counted = purged("used_ack_links")
    job = purge_job(pool)
    now = datetime.now(UTC)

    # Within the links' 24 hours and the hour's margin, a used link must still be refused a second use.
    assert await job.run_once(now + timedelta(hours=24, minutes=50)) == {}
    assert await pool.fetchval("SELECT count(*) FROM used_ack_links WHERE alert_id = $1", alert_id) == 5
    assert await job.run_once(now + timedelta(hours=25, minutes=1)) == {"used_ack_links": 5}
    assert await pool.fetchval("SELECT count(*) FROM used_ack_links WHERE alert_id = $1", alert_id) == 0
    assert purged("used_ack_links") - counted == 5


async def test_gone_endpoints_are_forgotten_with_the_deliveries_to_them(pool: asyncpg.Pool) -> None:
    now = datetime.now(UTC)
    await pool.execute(
        "INSERT INTO disabled_endpoints (target, reason, disabled_at) VALUES"
        " ('https://old.example/hook', '410', $1), ('https://new.example/hook', '410', $2)",
        now - timedelta(days=91),
        now - timedelta(days=1),
    )
    assert await purge_job(pool).run_once(now) == {"disabled_endpoints": 1}
    assert [r[0] for r in await pool.fetch("SELECT target FROM disabled_endpoints")] == ["https://new.example/hook"]


async def test_two_instances_purging_at_once_delete_each_row_once(pool: asyncpg.Pool, ctx: handlers.Context) -> None:
    deadlines = [Deadline() for _ in range(6)]
    for deadline in deadlines:
        await apply(pool, ctx, deadline.warning(), deadline.met())
    await pool.execute("UPDATE deliveries SET state = 'delivered' WHERE state = 'pending'")
    total = await pool.fetchval("SELECT count(*) FROM deliveries")
    later = datetime.now(UTC) + timedelta(days=91)
    rounds = await asyncio.gather(*(purge_job(pool).run_once(later) for _ in range(2)))
    # One of them may have stopped at the other's lock; the next round of each finishes the backlog.
    rounds += await asyncio.gather(*(purge_job(pool).run_once(later) for _ in range(2)))
    assert sum(r.get("deliveries", 0) for r in rounds) == total
    assert await pool.fetchval("SELECT count(*) FROM deliveries") == 0
