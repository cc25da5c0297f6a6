"""The month counters and the one-stage alert shortcut (migrations 0004, 0005) give what counting the facts
gives: events one at a time in any order with repeats, or in reverse, or facts already there when the counters are added;
and a new event on Kafka moves the counted figures at once."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from services.reporting import handlers
from services.reporting.adapters.repository import PostgresReadModel
from services.reporting.bootstrap import migrations
from services.reporting.domain.facts import FactBatch
from services.reporting.domain.periods import Period
from shared.db import Conn, create_pool, migrate
from shared.events import CloudEvent
from shared.events import alerts as al
from shared.unit_of_work import InTransaction
from tests.integration.reporting.conftest import Bus
from tests.integration.reporting.test_figures import kpis, publish_and_wait, rule
from tests.support.infra import Namespace
from tests.support.quarter import GREVE, Q1, ROSKILDE, Quarter, district_quarter

# The tallies counted straight from the fact rows: the read model's queries before the counters.
DIRECT = {
    "cases": "SELECT kind, kommune, category, focus_area, count(*) FROM cases"
    " WHERE received_at >= $1 AND received_at < $2 AND kind IS NOT NULL{k} GROUP BY 1, 2, 3, 4",
    "deadlines": "SELECT rule_id, title, basis, window_set_by, max(window_seconds), kommune, category, focus_area,"
    " count(*), count(*) FILTER (WHERE met_at IS NOT NULL AND NOT met_late),"
    " count(*) FILTER (WHERE met_at IS NOT NULL AND met_late),"
    " count(*) FILTER (WHERE met_at IS NULL AND breached_at IS NOT NULL"
    "   AND (cancelled_at IS NULL OR cancelled_at >= breached_at)),"
    " count(*) FILTER (WHERE met_at IS NULL AND cancelled_at IS NOT NULL"
    "   AND (breached_at IS NULL OR cancelled_at < breached_at)),"
    " count(*) FILTER (WHERE rescheduled),"
    " count(*) FILTER (WHERE met_at IS NULL AND breached_at IS NULL AND cancelled_at IS NULL)"
    " FROM deadlines WHERE started_at >= $1 AND started_at < $2{k} GROUP BY 1, 2, 3, 4, 6, 7, 8",
    "stock": "SELECT rule_id, basis, kommune, focus_area,"
    " count(*) FILTER (WHERE (met_at IS NULL OR met_at >= $2) AND (cancelled_at IS NULL OR cancelled_at >= $2)),"
    " count(*) FILTER (WHERE breached_at >= $1 AND breached_at < $2)"
    " FROM deadlines WHERE started_at < $2"
    "  AND (((met_at IS NULL OR met_at >= $2) AND (cancelled_at IS NULL OR cancelled_at >= $2))"
    "       OR (breached_at >= $1 AND breached_at < $2)){k} GROUP BY 1, 2, 3, 4",
    "actions": "SELECT action, count(*) FROM case_actions WHERE occurred_at >= $1 AND occurred_at < $2{k} GROUP BY 1",
    # Every alert through the per-stage window and join, one stage or many.
    "alerts": "WITH s AS (SELECT st.alert_id, st.started_at, a.kommune, coalesce(a.severity, 'ukendt') AS severity,"
    "   coalesce(a.category, 'ukendt') AS category,"
    "   coalesce(a.focus_area, 'lokal_tilstedevaerelse') AS focus_area, a.escalation_level,"
    "   lag(st.started_at) OVER w AS previous_at, lead(st.started_at) OVER w AS next_at"
    "   FROM alert_stages st JOIN alerts a USING (alert_id) WHERE a.raised_at >= $1 AND a.raised_at < $2{ka}"
    "   WINDOW w AS (PARTITION BY st.alert_id ORDER BY st.started_at)),"
    " sa AS (SELECT s.kommune, s.severity, s.category, s.focus_area, s.escalation_level, s.next_at IS NULL AS current,"
    "   (SELECT min(k.acknowledged_at) FROM alert_acks k WHERE k.alert_id = s.alert_id"
    "     AND (s.previous_at IS NULL OR k.acknowledged_at >= s.started_at)"
    "     AND (s.next_at IS NULL OR k.acknowledged_at < s.next_at)) - s.started_at AS ack FROM s)"
    " SELECT kommune, severity, category, focus_area, count(*) FILTER (WHERE current),"
    " count(*) FILTER (WHERE current AND ack IS NOT NULL), count(*) FILTER (WHERE current AND escalation_level > 0),"
    " coalesce(array_agg(extract(epoch FROM ack)::float8) FILTER (WHERE ack IS NOT NULL), '{{}}')"
    " FROM sa GROUP BY 1, 2, 3, 4",
}


async def counted_directly(
    conn: Conn, start: datetime, end: datetime, kommune: str | None
) -> dict[str, list[tuple[Any, ...]]]:
    args: list[Any] = [start, end] + ([kommune] if kommune else [])
    k = " AND kommune = $3" if kommune else ""
    ka = " AND a.kommune = $3" if kommune else ""
    counted = {}
    for name, sql in DIRECT.items():
        rows = [tuple(r) for r in await conn.fetch(sql.format(k=k, ka=ka), *args)]
        # An alert group's ack times are a multiset: compared sorted.
        counted[name] = sorted((*r[:-1], sorted(r[-1])) if name == "alerts" else r for r in rows)
    return counted


async def counted_by_the_report(
    conn: Conn, start: datetime, end: datetime, kommune: str | None
) -> dict[str, list[tuple[Any, ...]]]:
    facts = await PostgresReadModel(conn).period_facts(start, end, kommune)
    return {
        "cases": sorted((c.kind, c.kommune, c.category, c.focus_area, c.count) for c in facts.cases),
        "deadlines": sorted(
            (
                d.rule_id,
                d.title,
                d.basis,
                d.window_set_by,
                d.window_seconds,
                d.kommune,
                d.category,
                d.focus_area,
                d.started,
                d.met_on_time,
                d.met_late,
                d.missed,
                d.closed_before_met,
                d.citizen_requested_later,
                d.pending,
            )
            for d in facts.deadlines
        ),
        "stock": sorted(
            (s.rule_id, s.basis, s.kommune, s.focus_area, s.open_at_end, s.breached_in_period) for s in facts.stock
        ),
        "actions": sorted(facts.actions.items()),
        "alerts": sorted(
            (
                a.kommune,
                a.severity,
                a.category,
                a.focus_area,
                a.raised,
                a.acknowledged,
                a.escalated,
                sorted(float(s) for s in ack.seconds),
            )
            for a, ack in zip(facts.alerts, facts.ack, strict=True)  # one row of the same query each
        ),
    }


def eventful_months() -> list[CloudEvent]:
    """The district's quarter, every deadline outcome, cases at local midnight across month ends (one in
    CEST), a deadline open at March's end and broken in April, a rule whose window changed, and an alert
    superseded and acknowledged per stage beside single-stage ones."""
    q = district_quarter()
    outcomes = [
        "met", "late", "breached", "cancelled", "breached_closed", "cancelled_late_breach", "pending", "breach_withdrawn",
    ]  # fmt: skip
    for i, outcome in enumerate(outcomes):
        received = Q1 + timedelta(days=30 + i)
        case = q.report(GREVE, "burglary_home", received, in_progress=False)
        q.deadline(case, GREVE, "burglary_home_24h", "burglary_home", received, timedelta(hours=24), outcome=outcome)
    # 00:30 local on 1 January (CET) and on 1 April (CEST): the new month, not the old one.
    for at in (datetime(2025, 12, 31, 23, 30, tzinfo=UTC), datetime(2026, 3, 31, 22, 30, tzinfo=UTC)):
        case = q.report(ROSKILDE, "burglary_home", at, in_progress=True)
        q.action(case, ROSKILDE, "burglary_home", "on_scene", at + timedelta(minutes=9))
        q.deadline(case, ROSKILDE, "burglary_home_in_progress", "burglary_home", at, timedelta(minutes=15),
                   window_set_by="district", outcome="met", at=at + timedelta(minutes=9))  # fmt: skip
    late_march = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)
    case = q.report(ROSKILDE, "burglary_home", late_march, in_progress=False)
    q.deadline(
        case, ROSKILDE, "burglary_home_24h", "burglary_home", late_march, timedelta(hours=24), outcome="breached"
    )
    case = q.report(ROSKILDE, "violence", Q1 + timedelta(days=3), acute=True)
    q.deadline(case, ROSKILDE, "violence_acute", "violence", Q1 + timedelta(days=3), timedelta(minutes=10),
               window_set_by="district", outcome="late")  # fmt: skip
    alert, raised, breach = uuid.uuid4(), Q1 + timedelta(days=3, hours=1), Q1 + timedelta(days=3, hours=2)
    for data, at in (
        (al.AlertRaised(alert_id=alert, case_id=case, reason="deadline_warning", severity="warning",
                        title="Frist", recipients=["vagtchef"], raised_at=raised), raised),
        (al.AlertAcknowledged(alert_id=alert, case_id=case, by="v1", acknowledged_at=raised + timedelta(seconds=40)),
         raised + timedelta(seconds=40)),
        (al.AlertUpdated(alert_id=alert, case_id=case, reason="deadline_breached", severity="critical",
                         superseded="deadline_warning", recipients=["vagtchef"], updated_at=breach), breach),
        (al.AlertAcknowledged(alert_id=alert, case_id=case, by="v1", acknowledged_at=breach + timedelta(seconds=70)),
         breach + timedelta(seconds=70)),
    ):  # fmt: skip
        q.add(data, ROSKILDE, at, "/mvsj/notify")
    q.alert(case, ROSKILDE, Q1 + timedelta(days=50), None)  # raised, never acknowledged
    q.alert(case, GREVE, Q1 + timedelta(days=51), timedelta(seconds=30))
    again = q.events[-1].payload()
    assert isinstance(again, al.AlertAcknowledged)  # acknowledged once more later: the first one counts
    later = again.acknowledged_at + timedelta(seconds=500)
    q.add(again.model_copy(update={"acknowledged_at": later, "by": "v2"}), GREVE, later, "/mvsj/notify")
    return q.events


PERIODS = ["2025-12", "2026-01", "2026-02", "2026-03", "2026-04", "2026-Q1", "2026-Q2", "2025-Q4", "2026", "2025"]


async def test_counters_and_the_shortcut_equal_counting_the_facts(ns: Namespace) -> None:
    events = eventful_months()
    rng = random.Random(4)
    shuffled = events + rng.sample(events, len(events) // 3)
    rng.shuffle(shuffled)
    # "late": the facts were there before migrations 0004 and 0005 added the counters and the shortcut.
    upgraded = [m for m in migrations() if not m.version.startswith(("0004", "0005"))]
    assert len(upgraded) < len(migrations())
    pools = {}
    for name, first in (("single", migrations()), ("reversed", migrations()), ("late", upgraded)):
        schema = ns.schema(f"rm_count_{name}")
        await migrate(ns.database_url, schema, first)
        pools[name] = await create_pool(ns.database_url, schema, application="tests")
    try:
        for event in shuffled:
            async with pools["single"].acquire() as conn, conn.transaction():
                await handlers.handle(InTransaction(conn, PostgresReadModel), event.meta, event.payload())
        for event in reversed(events):
            async with pools["reversed"].acquire() as conn, conn.transaction():
                await handlers.handle(InTransaction(conn, PostgresReadModel), event.meta, event.payload())
        batch = FactBatch()
        for event in events:
            handlers.add_event(batch, event.meta, event.payload())
        async with pools["late"].acquire() as conn, conn.transaction():
            await handlers.apply(InTransaction(conn, PostgresReadModel), batch)
        await migrate(ns.database_url, ns.schema("rm_count_late"), migrations())

        for pool in pools.values():
            async with pool.acquire() as conn:
                for text in PERIODS:
                    period = Period.parse(text)
                    for kommune in (None, ROSKILDE):
                        direct = await counted_directly(conn, period.start, period.end, kommune)
                        assert await counted_by_the_report(conn, period.start, period.end, kommune) == direct, text
                q1 = await counted_directly(conn, Period.parse("2026-Q1").start, Period.parse("2026-Q1").end, None)
                assert q1["alerts"] and q1["stock"] and q1["actions"], "the scenario should give every tally"
                stages = await conn.fetchval("SELECT max(stages) FROM alerts")
                assert stages == 2, "one alert should take the per-stage path"
    finally:
        for pool in pools.values():
            await pool.close()


async def test_a_new_event_moves_the_counted_figures(
    ns: Namespace, reporting_service: tuple[FastAPI, httpx.AsyncClient], bus: Bus
) -> None:
    """The live consumer keeps the counters in the event's own transaction: the next report shows it."""
    _, client = reporting_service
    q = Quarter()
    case = q.report(ROSKILDE, "burglary_home", Q1, in_progress=False)
    q.deadline(case, ROSKILDE, "burglary_home_24h", "burglary_home", Q1, timedelta(hours=24), outcome="met")
    met = q.events.pop()  # held back: the deadline is open until it comes
    q.alert(case, ROSKILDE, Q1 + timedelta(hours=1), timedelta(seconds=45))
    acknowledged = q.events.pop()
    await publish_and_wait(ns, bus, q.events)
    before = (await kpis(client))["current"]
    assert (before["reports"], before["tips"], before["open_deadlines"]["guarantee"]) == (1, 0, 1)
    assert rule(before, "burglary_home_24h")["started"] == 1
    assert rule(before, "burglary_home_24h")["compliance"]["denominator"] == 0
    assert before["alerts"]["raised"] == 1 and before["alerts"]["acknowledged"] == 0
    assert before["police_actions"].get("on_scene", 0) == 0

    more = Quarter()
    more.tip(GREVE, Q1 + timedelta(days=2))
    more.action(case, ROSKILDE, "burglary_home", "on_scene", Q1 + timedelta(hours=2))
    await publish_and_wait(ns, bus, [met, acknowledged, *more.events])
    after = (await kpis(client))["current"]
    assert (after["reports"], after["tips"], after["open_deadlines"]["guarantee"]) == (1, 1, 0)
    assert rule(after, "burglary_home_24h")["compliance"]["denominator"] == 1
    assert rule(after, "burglary_home_24h")["compliance"]["numerator"] == 1
    assert after["alerts"]["raised"] == 1 and after["alerts"]["acknowledged"] == 1
    assert after["alerts"]["time_to_acknowledge_seconds"]["count"] == 1
    assert after["police_actions"]["on_scene"] == 1
