"""The SQL upserts merge facts as domain/facts.py does: one batch, or one event at a time in any order
with repeats, leaves the same rows (what makes redelivery harmless and a rebuild identical)."""

from __future__ import annotations

import random

from services.reporting import handlers
from services.reporting.adapters.repository import TABLES
from services.reporting.bootstrap import migrations
from services.reporting.domain.facts import FactBatch
from shared.db import create_pool, migrate
from tests.integration.reporting.conftest import district_quarter

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
