"""The SQL upserts merge facts as domain/facts.py does: one batch, or one event at a time in any order
with repeats, leaves the same rows (what makes redelivery harmless and a rebuild identical)."""

from __future__ import annotations

import random
from datetime import timedelta

from services.reporting import handlers
from services.reporting.adapters import repository
from services.reporting.adapters.repository import TABLES
from services.reporting.bootstrap import migrations
from services.reporting.domain.facts import FactBatch
from services.reporting.domain.kpis import figures
from services.reporting.domain.periods import Period
from shared.db import create_pool, migrate
from tests.integration.reporting.conftest import Q1, ROSKILDE, Quarter, district_quarter

ORDER = {
    "cases": "case_id",
    "case_actions": "action_id",
    "deadlines": "deadline_id",
    "alerts": "alert_id",
    "rules_seen": "rule_id",
    "topic_freshness": "topic",
}


async def _rows(pool, table: str) -> list[tuple]:  # type: ignore[no-untyped-def]
    return [tuple(r) for r in await pool.fetch(f"SELECT * FROM {table} ORDER BY {ORDER[table]}")]


async def test_one_batch_equals_one_event_at_a_time_in_any_order_with_repeats(ns) -> None:  # type: ignore[no-untyped-def]
    events = district_quarter().events
    pools = {}
    for name in ("batch", "single"):
        schema = ns.schema(f"rm_{name}")
        await migrate(ns.database_url, schema, migrations())
        pools[name] = await create_pool(ns.database_url, schema, application="tests")
    try:
        batch = FactBatch()
        for event in events:
            handlers.add_event(batch, event, event.payload())
        async with pools["batch"].acquire() as conn, conn.transaction():
            await handlers.apply(conn, batch)

        rng = random.Random(10)
        shuffled = events + rng.sample(events, len(events) // 3)
        rng.shuffle(shuffled)
        for event in shuffled:
            async with pools["single"].acquire() as conn, conn.transaction():
                await handlers.handle(conn, event, event.payload())

        # The alert arrives on another topic than its case: its focus area is filled either way.
        for pool in pools.values():
            assert await pool.fetchval("SELECT count(*) FROM alerts WHERE focus_area = 'indbrud'") == 1
        for table in TABLES:
            expected = await _rows(pools["batch"], table)
            assert expected, f"{table} is empty: the scenario should fill every table"
            assert await _rows(pools["single"], table) == expected, table
    finally:
        for pool in pools.values():
            await pool.close()


async def test_deadline_outcome_columns_partition_the_deadlines_started(ns) -> None:  # type: ignore[no-untyped-def]
    """Each deadline is in exactly one of met on time, met late, missed, closed before met, pending;
    a deadline closed after its breach is missed (not also closed before met)."""
    q = Quarter()
    outcomes = ["met", "late", "breached", "cancelled", "breached_closed", "cancelled_late_breach", "pending"]
    for i, outcome in enumerate(outcomes):
        received = Q1 + timedelta(days=i)
        case = q.report(ROSKILDE, "burglary_home", received, in_progress=False)
        q.deadline(case, ROSKILDE, "burglary_home_24h", "burglary_home", received, timedelta(hours=24), outcome=outcome)
    schema = ns.schema("rm_partition")
    await migrate(ns.database_url, schema, migrations())
    pool = await create_pool(ns.database_url, schema, application="tests")
    try:
        batch = FactBatch()
        for event in q.events:
            handlers.add_event(batch, event, event.payload())
        async with pool.acquire() as conn:
            async with conn.transaction():
                await handlers.apply(conn, batch)
            period = Period.parse("2026-Q1")
            facts = await repository.period_facts(repository.serial(conn), period.start, period.end, None)
    finally:
        await pool.close()
    (tally,) = facts.deadlines
    columns = ("met_on_time", "met_late", "missed", "closed_before_met", "pending")
    assert {c: getattr(tally, c) for c in columns} == {
        "met_on_time": 1,
        "met_late": 1,
        "missed": 2,  # breached, and breached then closed
        "closed_before_met": 2,  # cancelled, and cancelled before a late breach word
        "pending": 1,
    }
    assert sum(getattr(tally, c) for c in columns) == tally.started == len(outcomes)
    rule = figures(facts, threshold=1).rules[0]
    assert (rule.rate.numerator, rule.rate.denominator) == (1, 4)
