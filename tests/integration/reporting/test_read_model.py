"""The SQL upserts merge facts as domain/facts.py does: one batch, or one event at a time in any order
with repeats, leaves the same rows (what makes redelivery harmless and a rebuild identical)."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from services.reporting import handlers
from services.reporting.adapters.repository import TABLES, PostgresReadModel
from services.reporting.bootstrap import migrations
from services.reporting.domain.facts import FactBatch
from services.reporting.domain.kpis import PeriodFacts, figures
from services.reporting.domain.periods import Period
from shared.db import create_pool, migrate
from shared.events import CloudEvent
from shared.events import alerts as al
from shared.unit_of_work import InTransaction
from tests.support.infra import Namespace
from tests.support.quarter import Q1, ROSKILDE, Quarter, district_quarter

ORDER = {
    "cases": "case_id",
    "case_actions": "action_id",
    "deadlines": "deadline_id",
    "alerts": "alert_id",
    "alert_stages": "alert_id, started_at",
    "alert_acks": "alert_id, acknowledged_at",
    "rules_seen": "rule_id",
    "topic_freshness": "topic",
}


async def _rows(pool: asyncpg.Pool, table: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in await pool.fetch(f"SELECT * FROM {table} ORDER BY {ORDER[table]}")]


async def test_one_batch_equals_one_event_at_a_time_in_any_order_with_repeats(ns: Namespace) -> None:
    events = district_quarter().events
    pools = {}
    for name in ("batch", "single"):
        schema = ns.schema(f"rm_{name}")
        await migrate(ns.database_url, schema, migrations())
        pools[name] = await create_pool(ns.database_url, schema, application="tests")
    try:
        batch = FactBatch()
        for event in events:
            handlers.add_event(batch, event.meta, event.payload())
        async with pools["batch"].acquire() as conn, conn.transaction():
            await handlers.apply(InTransaction(conn, PostgresReadModel), batch)

        rng = random.Random(10)
        shuffled = events + rng.sample(events, len(events) // 3)
        rng.shuffle(shuffled)
        for event in shuffled:
            async with pools["single"].acquire() as conn, conn.transaction():
                await handlers.handle(InTransaction(conn, PostgresReadModel), event.meta, event.payload())

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


async def test_deadline_outcome_columns_partition_the_deadlines_started(ns: Namespace) -> None:
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
            handlers.add_event(batch, event.meta, event.payload())
        async with pool.acquire() as conn:
            async with conn.transaction():
                await handlers.apply(InTransaction(conn, PostgresReadModel), batch)
            period = Period.parse("2026-Q1")
            facts = await PostgresReadModel(conn).period_facts(period.start, period.end, None)
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


async def _facts_of(ns: Namespace, name: str, events: list[CloudEvent], *, one_at_a_time: bool) -> PeriodFacts:
    schema = ns.schema(name)
    await migrate(ns.database_url, schema, migrations())
    pool = await create_pool(ns.database_url, schema, application="tests")
    try:
        async with pool.acquire() as conn:
            if one_at_a_time:
                for event in events:
                    async with conn.transaction():
                        await handlers.handle(InTransaction(conn, PostgresReadModel), event.meta, event.payload())
            else:
                batch = FactBatch()
                for event in events:
                    handlers.add_event(batch, event.meta, event.payload())
                async with conn.transaction():
                    await handlers.apply(InTransaction(conn, PostgresReadModel), batch)
            period = Period.parse("2026-Q1")
            return await PostgresReadModel(conn).period_facts(period.start, period.end, None)
    finally:
        await pool.close()


async def test_a_superseded_alert_has_its_latest_severity_and_an_ack_time_per_stage(ns: Namespace) -> None:
    """notify raises a warning (acknowledged after 60 s), then the breach supersedes it an hour later and
    opens it again (acknowledged 300 s after the breach): critical, two ack times 60 and 300 s, not
    one of 60 s; filed under the case's category and focus area, whatever the order of arrival."""
    q = Quarter()
    case = q.report(ROSKILDE, "burglary_home", Q1, in_progress=False)
    alert, raised, breach = uuid.uuid4(), Q1 + timedelta(hours=12), Q1 + timedelta(hours=24)

    def add(data: al.AlertData, at: datetime) -> None:
        q.add(data, ROSKILDE, at, "/mvsj/notify")

    add(al.AlertRaised(alert_id=alert, case_id=case, reason="deadline_warning", severity="warning",
                       title="Frist nærmer sig", recipients=["lokalbetjent:0265"], raised_at=raised), raised)  # fmt: skip
    add(al.AlertAcknowledged(alert_id=alert, case_id=case, by="b1", acknowledged_at=raised + timedelta(seconds=60)),
        raised + timedelta(seconds=60))  # fmt: skip
    later_warning = raised + timedelta(hours=6)
    add(al.AlertUpdated(alert_id=alert, case_id=case, reason="deadline_warning", severity="warning",
                        updated_at=later_warning), later_warning)  # fmt: skip
    add(al.AlertUpdated(alert_id=alert, case_id=case, reason="deadline_breached", severity="critical",
                        superseded="deadline_warning", recipients=["vagtchef"], updated_at=breach), breach)  # fmt: skip
    for seconds in (300, 900):
        at = breach + timedelta(seconds=seconds)
        add(al.AlertAcknowledged(alert_id=alert, case_id=case, by="v1", acknowledged_at=at), at)

    results = [
        await _facts_of(ns, "rm_alert_batch", q.events, one_at_a_time=False),
        await _facts_of(ns, "rm_alert_reversed", list(reversed(q.events)), one_at_a_time=True),
    ]
    for facts in results:
        (tally,) = facts.alerts
        assert (tally.severity, tally.category, tally.focus_area) == ("critical", "burglary_home", "indbrud")
        assert (tally.raised, tally.acknowledged) == (1, 1)
        (sample,) = facts.ack
        assert sorted(sample.seconds) == [60.0, 300.0]
        by_category = figures(facts.where(category="burglary_home"), threshold=1)
        assert by_category.alert_ack.count == 2 and by_category.alerts_raised == 1
        assert figures(facts.where(category="violence"), threshold=1).alert_ack.count == 0
