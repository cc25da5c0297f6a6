"""The use cases on a real Postgres: an ack racing a resolve ends resolved, and changes reach a live feed."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from services.notify import handlers
from services.notify.adapters.changes import alert_changes
from services.notify.adapters.loaders import SECONDS_POLICY_FILE, load_policy, load_roster
from services.notify.domain.alert import AlreadyResolved, alert_id_for
from shared.db import create_pool
from tests.integration.notify.conftest import Deadline


@pytest.fixture
async def pool(ns, notify_schema) -> AsyncIterator[asyncpg.Pool]:  # type: ignore[no-untyped-def]
    p = await create_pool(ns.database_url, notify_schema, application="notify-tests")
    yield p
    await p.close()


@pytest.fixture
def ctx(ns, roster) -> handlers.Context:  # type: ignore[no-untyped-def]
    policy, r = load_policy(SECONDS_POLICY_FILE), load_roster(roster.path)
    return handlers.Context(policy=lambda: policy, roster=lambda: r, alerts_topic=ns.topics.alerts)


async def _apply(pool: asyncpg.Pool, ctx: handlers.Context, event) -> handlers.Applied:  # type: ignore[no-untyped-def]
    async with pool.acquire() as conn, conn.transaction():
        return await handlers.on_deadline_event(conn, event, event.payload(), ctx, datetime.now(UTC))


@pytest.mark.parametrize("round_", range(6))
async def test_an_ack_racing_a_resolve_always_ends_resolved(pool, ctx, round_: int) -> None:
    deadline = Deadline()
    await _apply(pool, ctx, deadline.warning())
    alert_id = alert_id_for(deadline.case_id, deadline.rule)
    outcome: dict[str, object] = {}

    async def ack() -> None:
        async with pool.acquire() as conn, conn.transaction():
            try:
                await handlers.acknowledge(conn, alert_id, "lb-roskilde-1", "api", ctx, datetime.now(UTC))
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


async def test_alert_changes_reach_a_live_feed(ns, pool, ctx, notify_schema) -> None:
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
