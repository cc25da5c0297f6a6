"""The ReadModel contract (services/reporting/handlers.py): facts stored merge alike on every backend, and
`period_facts` counts them alike: the tallies every council report is computed from.

Every expected tally is worked out by hand in its test (not by a second implementation), so a backend
that counts a fact in the wrong month, kommune, outcome or alert stage fails here.
"""

from __future__ import annotations

import dataclasses
import random
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.reporting import handlers
from services.reporting.domain.facts import FactBatch, RuleFact
from services.reporting.domain.kpis import (
    AlertTally,
    CaseKind,
    CaseTally,
    DeadlineTally,
    DurationSample,
    PeriodFacts,
    StockTally,
)
from services.reporting.domain.periods import Period
from shared.events import CloudEvent
from shared.events import alerts as al
from shared.events import cases as cs
from shared.events import deadlines as dl
from shared.unit_of_work import UnitOfWork
from tests.support.quarter import GREVE, ROSKILDE, Quarter, district_quarter

Uow = UnitOfWork[handlers.ReadModel]


class Boom(Exception):
    pass


def batch_of(events: list[CloudEvent]) -> FactBatch:
    batch = FactBatch()
    for event in events:
        handlers.add_event(batch, event.meta, event.payload())
    return batch


def expected_time(batch: FactBatch) -> Any:
    return max(batch.last_event_at.values())


# ---- the tallies of a period -------------------------------------------------------------------

SECOND, MINUTE, HOUR, DAY = timedelta(seconds=1), timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)
CATEGORY_OF = {  # the category and focus area Quarter gives each kind of case
    "report": ("burglary_home", "indbrud"),
    "tip": ("drug_dealing_street", "narkotika_gadeplan"),
    "request": ("traffic", "faerdselssikkerhed"),
}


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def cases(kind: CaseKind, count: int, month: str | None = None, kommune: str = ROSKILDE) -> CaseTally:
    """`count` cases of one kind, in the category Quarter gives that kind."""
    category, focus_area = CATEGORY_OF[kind]
    return CaseTally(kind, kommune, category, focus_area, count, month)


def burglary_24h(
    kommune: str = ROSKILDE, month: str | None = None, window_seconds: float = 86400.0, **outcomes: int
) -> DeadlineTally:
    """The tally of the 24-hour burglary guarantee (the law's window) with the given outcome counts."""
    return DeadlineTally(
        "burglary_home_24h", "burglary_home_24h", "guarantee", "law", window_seconds, kommune, "burglary_home",
        "indbrud", month=month, **outcomes,
    )  # fmt: skip


def rows(facts: PeriodFacts) -> dict[str, Any]:
    """Every tally of `facts` as a value to compare: rows as multisets (no backend promises an order), each
    duration sample sorted, an alert row with its own times to acknowledge."""
    for alert, ack in zip(facts.alerts, facts.ack, strict=True):
        assert (ack.kommune, ack.category, ack.focus_area) == (alert.kommune, alert.category, alert.focus_area)
    return {
        "cases": Counter(facts.cases),
        "deadlines": Counter(facts.deadlines),
        "stock": Counter(facts.stock),
        "response": Counter(
            (s.kommune, s.category, s.focus_area, tuple(sorted(map(float, s.seconds)))) for s in facts.response
        ),
        "alerts": Counter(
            (a, tuple(sorted(map(float, k.seconds)))) for a, k in zip(facts.alerts, facts.ack, strict=True)
        ),
        "actions": dict(facts.actions),
        "trend_cases": Counter(facts.trend_cases),
        "trend_deadlines": Counter(facts.trend_deadlines),
    }


def months_apart() -> list[CloudEvent]:
    """Cases a second either side of local midnight on the first of a month, in winter (CET) and summer (CEST)
    time, two with the 24-hour guarantee (met twelve hours on)."""
    q = Quarter()
    q.report(ROSKILDE, "burglary_home", utc(2025, 3, 31, 21, 59, 59))  # 23:59:59 CEST: March 2025
    q.report(ROSKILDE, "burglary_home", utc(2025, 3, 31, 22))  # April's first instant
    for at in (utc(2025, 12, 31, 22, 59, 59), utc(2025, 12, 31, 23)):  # December 2025; January 2026 (CET)
        case = q.report(ROSKILDE, "burglary_home", at, in_progress=False)
        q.deadline(case, ROSKILDE, "burglary_home_24h", "burglary_home", at, timedelta(hours=24), outcome="met")
    q.tip(ROSKILDE, utc(2026, 1, 31, 22, 59, 59))  # January
    q.tip(ROSKILDE, utc(2026, 1, 31, 23))  # February
    q.request(ROSKILDE, utc(2026, 3, 31, 21, 59, 59))  # March (summer time since the 29th)
    q.report(ROSKILDE, "burglary_home", utc(2026, 3, 31, 22))  # April
    return q.events


def alert_events(q: Quarter, alert: uuid.UUID, case: uuid.UUID, kommune: str, *steps: tuple[str, datetime]) -> None:
    """notify's events for one alert: raised (a warning), ack, supersede (the breach: critical), escalate."""
    for step, at in steps:
        data: al.AlertData
        if step == "raised":
            data = al.AlertRaised(alert_id=alert, case_id=case, reason="deadline_warning", severity="warning",
                                  title="Frist nærmer sig", recipients=["vagtchef"], raised_at=at)  # fmt: skip
        elif step == "ack":
            data = al.AlertAcknowledged(alert_id=alert, case_id=case, by="vagtchef-1", acknowledged_at=at)
        elif step == "supersede":
            data = al.AlertUpdated(alert_id=alert, case_id=case, reason="deadline_breached", severity="critical",
                                   superseded="deadline_warning", recipients=["vagtchef"], updated_at=at)  # fmt: skip
        else:
            data = al.AlertEscalated(alert_id=alert, case_id=case, to="vagtchef", level=1, escalated_at=at)
        q.add(data, kommune, at, "/mvsj/notify")


class ReadModelContract:
    """Subclasses give `uow` (a fixture) and `stored`: every stored fact, by type, as the domain's dataclasses.

    The tallies are asked for as `council_report` asks: whole local months (a month, quarter or year, and the
    trend's twelve months), on which Postgres' month counters and a count of the facts' instants agree.
    """

    @pytest.fixture
    def uow(self) -> Uow:
        raise NotImplementedError

    async def stored(self, uow: Uow) -> dict[type, list[Any]]:
        raise NotImplementedError

    async def test_events_saved_one_at_a_time_in_any_order_with_repeats_store_the_domains_merge(self, uow: Uow) -> None:
        events = district_quarter().events
        rng = random.Random(15)
        shuffled = events + rng.sample(events, len(events) // 3)
        rng.shuffle(shuffled)
        for event in shuffled:
            await handlers.handle(uow, event.meta, event.payload())
        expected = batch_of(events)
        stored = await self.stored(uow)
        found = FactBatch()
        for facts in stored.values():
            found.add("", expected_time(expected), facts)
        assert found.facts == expected.facts
        async with uow.transaction() as read_model:
            assert await read_model.freshness() == expected.last_event_at
            rules = await read_model.rules_seen()
        seen = sorted(expected.of_type(RuleFact), key=lambda r: (r.basis, r.rule_id))
        assert rules == [
            {"rule_id": r.rule_id, "title": r.title, "basis": r.basis, "window_set_by": r.window_set_by,
             "window_seconds": r.window_seconds} for r in seen
        ] and rules  # fmt: skip

    async def test_a_transaction_that_raises_stores_nothing(self, uow: Uow) -> None:
        events = district_quarter().events
        with pytest.raises(Boom):
            async with uow.transaction() as read_model:
                await read_model.save(batch_of(events))
                raise Boom
        assert not any((await self.stored(uow)).values())
        async with uow.transaction() as read_model:
            assert await read_model.freshness() == {}

    # ---- period_facts: the tallies of [start, end) in one kommune or the district

    async def store(self, uow: Uow, events: list[CloudEvent]) -> None:
        """One event at a time, as the live consumer applies them, shuffled and with some repeated."""
        rng = random.Random(len(events))
        shuffled = events + rng.sample(events, len(events) // 3)
        rng.shuffle(shuffled)
        for event in shuffled:
            await handlers.handle(uow, event.meta, event.payload())

    async def tallies(self, uow: Uow, period: str, kommune: str | None = None, *, trend: bool = False) -> PeriodFacts:
        """As council_report asks: a period's own bounds, and with `trend` the twelve months ending with it."""
        p = Period.parse(period)
        window = [(str(m), m.start) for m in p.trailing_months(12)] if trend else []
        async with uow.transaction() as read_model:
            return await read_model.period_facts(p.start, p.end, kommune, window)

    async def test_cases_and_deadlines_count_in_the_local_month_they_began(self, uow: Uow) -> None:
        await self.store(uow, months_apart())
        expected = {
            "2025-03": [cases("report", 1)],
            "2025-04": [cases("report", 1)],
            "2025-12": [cases("report", 1)],
            "2026-01": [cases("report", 1), cases("tip", 1)],
            "2026-02": [cases("tip", 1)],
            "2026-03": [cases("request", 1)],
            "2026-04": [cases("report", 1)],
            "2025-Q4": [cases("report", 1)],
            "2026-Q1": [cases("report", 1), cases("tip", 2), cases("request", 1)],
            "2025": [cases("report", 3)],
            "2026": [cases("report", 2), cases("tip", 2), cases("request", 1)],
        }
        met = burglary_24h(started=1, met_on_time=1)
        for period, counted in expected.items():
            facts = await self.tallies(uow, period)
            assert Counter(facts.cases) == Counter(counted), period
            started = period in ("2025-12", "2026-01", "2025-Q4", "2026-Q1", "2025", "2026")
            assert facts.deadlines == ((met,) if started else ()), period
            assert (facts.trend_cases, facts.trend_deadlines) == ((), ()), period
        # December's deadline was met in January (local time): open at December's end, not at January's.
        open_at_new_year = StockTally("burglary_home_24h", "guarantee", ROSKILDE, "indbrud", 1, 0)
        assert (await self.tallies(uow, "2025-12")).stock == (open_at_new_year,)
        assert (await self.tallies(uow, "2025")).stock == (open_at_new_year,)
        assert (await self.tallies(uow, "2026-01")).stock == ()
        assert rows(await self.tallies(uow, "2026", GREVE)) == rows(PeriodFacts())

    async def test_the_trend_counts_per_month_of_the_twelve_and_the_period_is_its_last_months(self, uow: Uow) -> None:
        """Cases and deadlines per month of the window; every other tally is of the period alone: December's
        deadline, broken in December and open since, is open at the quarter's end but did not break in it."""
        q = Quarter()
        december = utc(2025, 12, 10, 8)
        case = q.report(GREVE, "burglary_home", december, in_progress=False)
        q.action(case, GREVE, "burglary_home", "on_scene", december + 10 * MINUTE)
        q.deadline(case, GREVE, "burglary_home_24h", "burglary_home", december, 24 * HOUR, outcome="breached")
        alert_events(q, uuid.uuid4(), case, GREVE, ("raised", december + HOUR), ("ack", december + 2 * HOUR))
        await self.store(uow, months_apart() + q.events)

        facts = await self.tallies(uow, "2026-Q1", trend=True)
        in_q1 = [cases("report", 1, "2026-01"), cases("tip", 1, "2026-01"), cases("tip", 1, "2026-02"),
                 cases("request", 1, "2026-03")]  # fmt: skip
        # The window runs from April 2025 to March 2026: March 2025 and April 2026 lie outside it.
        before_q1 = [cases("report", 1, "2025-04"), cases("report", 1, "2025-12"),
                     cases("report", 1, "2025-12", kommune=GREVE)]  # fmt: skip
        assert Counter(facts.trend_cases) == Counter(before_q1 + in_q1)
        assert Counter(facts.cases) == Counter(in_q1)
        assert Counter(facts.trend_deadlines) == Counter(
            [burglary_24h(month=m, started=1, met_on_time=1) for m in ("2025-12", "2026-01")]
            + [burglary_24h(GREVE, month="2025-12", started=1, missed=1)]
        )
        assert facts.deadlines == (burglary_24h(month="2026-01", started=1, met_on_time=1),)
        assert facts.stock == (StockTally("burglary_home_24h", "guarantee", GREVE, "indbrud", 1, 0),)
        assert (facts.response, facts.alerts, facts.ack, facts.actions) == ((), (), (), {})
        plain = await self.tallies(uow, "2026-Q1")
        assert Counter(plain.cases) == Counter([cases("report", 1), cases("tip", 2), cases("request", 1)])
        assert plain.deadlines == (burglary_24h(started=1, met_on_time=1),)
        assert (plain.trend_cases, plain.trend_deadlines) == ((), ())
        assert (plain.stock, plain.response, plain.alerts, plain.ack, plain.actions) == (facts.stock, (), (), (), {})

    async def test_each_deadline_outcome_is_counted_once_per_rule(self, uow: Uow) -> None:
        """met, met late, missed (breached and never met, also when closed after the breach), closed before met
        (also when a breach word came after the closing), pending; a withdrawn breach is met on time; the
        citizen's later time is counted beside its outcome. Each rule's terms stay its own; a rule's window is the
        longest its deadlines state (one whose deadline.started has not arrived states none)."""
        q = Quarter()
        outcomes = ["met", "late", "breached", "cancelled", "breached_closed", "cancelled_late_breach", "pending",
                    "breach_withdrawn", "rescheduled_met"]  # fmt: skip
        for i, outcome in enumerate(outcomes):
            at = utc(2026, 2, 2, 8) + i * DAY
            case = q.report(GREVE, "burglary_home", at, in_progress=False)
            q.deadline(case, GREVE, "burglary_home_24h", "burglary_home", at, timedelta(hours=24), outcome=outcome)
        for hours, at in ((36, utc(2026, 2, 20, 8)), (24, utc(2026, 2, 21, 8))):
            case = q.report(GREVE, "burglary_home", at, in_progress=False)
            q.deadline(case, GREVE, "burglary_home_24h", "burglary_home", at, hours * HOUR, outcome="met")
        not_yet_started = q.events.pop(-2)  # the last one's deadline.started is still on its way
        assert isinstance(not_yet_started.payload(), dl.DeadlineStarted)
        case = q.report(GREVE, "burglary_home", utc(2026, 2, 2, 9), in_progress=False)
        q.deadline(case, GREVE, "tryghedsopfoelgning_burglary", "burglary_home", utc(2026, 2, 2, 9), 14 * DAY,
                   basis="local_target", window_set_by="district", title="Tryghedsopfølgning", outcome="late")  # fmt: skip
        await self.store(uow, q.events)
        guarantee = burglary_24h(GREVE, window_seconds=36 * 3600.0, started=11, met_on_time=5, met_late=1, missed=2,
                                 closed_before_met=2, citizen_requested_later=1, pending=1)  # fmt: skip
        target = DeadlineTally("tryghedsopfoelgning_burglary", "Tryghedsopfølgning", "local_target", "district",
                               14 * 86400.0, GREVE, "burglary_home", "indbrud", started=1, met_late=1)  # fmt: skip
        for period, kommune in (("2026-02", GREVE), ("2026-Q1", None), ("2026", GREVE)):
            assert Counter((await self.tallies(uow, period, kommune)).deadlines) == Counter([guarantee, target])
        assert (await self.tallies(uow, "2026-02", ROSKILDE)).deadlines == ()
        assert (await self.tallies(uow, "2026-01")).deadlines == ()

    async def test_the_stock_is_what_is_open_at_the_periods_end_and_what_broke_in_it(self, uow: Uow) -> None:
        q = Quarter()

        def deadline(kommune: str, started: datetime, outcome: str, at: datetime | None = None) -> None:
            case = q.report(kommune, "burglary_home", started, in_progress=False)
            q.deadline(case, kommune, "burglary_home_24h", "burglary_home", started, timedelta(hours=24),
                       outcome=outcome, at=at)  # fmt: skip

        deadline(ROSKILDE, utc(2026, 3, 31, 12), "breached")  # breaks on 1 April, never met
        deadline(ROSKILDE, utc(2026, 3, 10, 8), "met")  # met in March
        deadline(ROSKILDE, utc(2026, 3, 20, 8), "breached")  # breaks in March, never met
        deadline(ROSKILDE, utc(2026, 3, 25, 8), "cancelled")  # closed in March
        deadline(ROSKILDE, utc(2026, 3, 31, 20), "met", at=utc(2026, 3, 31, 23))  # met 01:00 on 1 April, local
        deadline(ROSKILDE, utc(2026, 4, 2, 8), "pending")  # started in April
        deadline(ROSKILDE, utc(2026, 2, 28, 23, 30), "breached_closed")  # 00:30 on 1 March: breaks, then closed
        deadline(ROSKILDE, utc(2026, 3, 5, 8), "breach_withdrawn")  # never broken after all
        deadline(GREVE, utc(2026, 3, 15, 8), "pending")
        await self.store(uow, q.events)

        def stock(kommune: str, open_at_end: int, breached_in_period: int) -> StockTally:
            return StockTally("burglary_home_24h", "guarantee", kommune, "indbrud", open_at_end, breached_in_period)

        march = [stock(ROSKILDE, 3, 2), stock(GREVE, 1, 0)]
        for period in ("2026-03", "2026-Q1"):
            assert Counter((await self.tallies(uow, period)).stock) == Counter(march), period
        assert (await self.tallies(uow, "2026-03", ROSKILDE)).stock == (stock(ROSKILDE, 3, 2),)
        assert (await self.tallies(uow, "2026-03", GREVE)).stock == (stock(GREVE, 1, 0),)
        april = [stock(ROSKILDE, 3, 1), stock(GREVE, 1, 0)]
        assert Counter((await self.tallies(uow, "2026-04")).stock) == Counter(april)
        assert (await self.tallies(uow, "2026-02")).stock == ()

    async def test_deadline_months_count_each_deadline_in_the_local_month_it_began_over_any_span(
        self, uow: Uow
    ) -> None:
        """The public figures' read: per month, every kommune, only the months asked for; the same tallies a
        month's own period_facts gives."""
        q = Quarter()
        february = utc(2026, 2, 10, 8)
        case = q.report(GREVE, "burglary_home", february, in_progress=False)
        q.deadline(case, GREVE, "burglary_home_24h", "burglary_home", february, 24 * HOUR, outcome="breached")
        await self.store(uow, months_apart() + q.events)
        december = burglary_24h(month="2025-12", started=1, met_on_time=1)  # 23:59:59 on New Year's Eve, CET
        january = burglary_24h(month="2026-01", started=1, met_on_time=1)  # a second later: January
        greve = burglary_24h(GREVE, month="2026-02", started=1, missed=1)
        q4, q1 = Period.parse("2025-Q4"), Period.parse("2026-Q1")
        async with uow.transaction() as read_model:
            both = await read_model.deadline_months(q4.start, q1.end)
            only_q1 = await read_model.deadline_months(q1.start, q1.end)
            nothing = await read_model.deadline_months(q1.end, Period.parse("2026-Q3").end)
        assert Counter(both) == Counter([december, january, greve])
        assert Counter(only_q1) == Counter([january, greve])
        assert nothing == ()
        for month in ("2025-12", "2026-01", "2026-02"):
            counted = (await self.tallies(uow, month)).deadlines
            assert Counter(dataclasses.replace(d, month=month) for d in counted) == Counter(
                d for d in both if d.month == month
            )

    async def test_a_kommune_reads_its_own_tallies_and_the_district_all_of_them(self, uow: Uow) -> None:
        """The district's quarter (tests/support/quarter.py), every tally, per kommune and for the kreds."""
        await self.store(uow, district_quarter().events)
        roskilde = PeriodFacts(
            cases=(cases("report", 12), cases("tip", 3), cases("request", 1)),
            deadlines=(burglary_24h(started=12, met_on_time=10, met_late=1, missed=1, citizen_requested_later=1),),
            # The breached one is open; it and the one met late broke in the quarter.
            stock=(StockTally("burglary_home_24h", "guarantee", ROSKILDE, "indbrud", 1, 2),),
            response=(
                DurationSample(ROSKILDE, "burglary_home", "indbrud", [600.0 * i for i in range(1, 11)] + [90000.0]),
            ),
            alerts=(AlertTally(ROSKILDE, "warning", "burglary_home", "indbrud", 1, 1, 0),),
            ack=(DurationSample(ROSKILDE, "burglary_home", "indbrud", [90.0]),),
            actions={"on_scene": 11},
        )
        violence = ("violence", "kriminalitetsforebyggelse")
        greve = PeriodFacts(
            cases=(CaseTally("report", GREVE, *violence, 2),),
            deadlines=(
                DeadlineTally(
                    "violence_acute",
                    "violence_acute",
                    "guarantee",
                    "district",
                    900.0,
                    GREVE,
                    *violence,
                    started=2,
                    met_on_time=1,
                    closed_before_met=1,
                ),
            ),
            response=(DurationSample(GREVE, *violence, [120.0]),),
            actions={"on_scene": 1},
        )
        kreds = PeriodFacts(
            cases=roskilde.cases + greve.cases,
            deadlines=roskilde.deadlines + greve.deadlines,
            stock=roskilde.stock,
            response=roskilde.response + greve.response,
            alerts=roskilde.alerts,
            ack=roskilde.ack,
            actions={"on_scene": 12},
        )
        for kommune, expected in ((ROSKILDE, roskilde), (GREVE, greve), (None, kreds), ("0259", PeriodFacts())):
            assert rows(await self.tallies(uow, "2026-Q1", kommune)) == rows(expected), kommune
        december = PeriodFacts(cases=(CaseTally("report", ROSKILDE, "traffic", "faerdselssikkerhed", 1),))
        assert rows(await self.tallies(uow, "2025-Q4")) == rows(december)
        assert rows(await self.tallies(uow, "2025-Q4", GREVE)) == rows(PeriodFacts())

    async def test_a_response_time_runs_from_a_reports_receipt_to_its_first_patrol_on_scene(self, uow: Uow) -> None:
        """Reports only (not tips), counted in the period they were received; police actions in the month they
        happened, those on cases never reported too."""
        q = Quarter()
        t = utc(2026, 1, 10, 10)
        burglary = q.report(ROSKILDE, "burglary_home", t, in_progress=True)
        q.action(burglary, ROSKILDE, "burglary_home", "dispatched", t + MINUTE)
        q.action(burglary, ROSKILDE, "burglary_home", "on_scene", t + 5 * MINUTE)
        q.action(burglary, ROSKILDE, "burglary_home", "on_scene", t + 3 * MINUTE)  # the first patrol there
        late = utc(2026, 1, 31, 22, 50)  # 23:50 local; the patrol comes at 00:10 on 1 February
        violence = q.report(ROSKILDE, "violence", late, acute=True)
        q.action(violence, ROSKILDE, "violence", "on_scene", late + 20 * MINUTE)
        q.report(ROSKILDE, "burglary_home", t + HOUR, in_progress=False)  # no patrol yet: no response time
        february = utc(2026, 1, 31, 23)  # local midnight: February's first instant
        burglary_in_february = q.report(ROSKILDE, "burglary_home", february, in_progress=True)
        q.action(burglary_in_february, ROSKILDE, "burglary_home", "dispatched", february)
        q.action(burglary_in_february, ROSKILDE, "burglary_home", "on_scene", february + 4 * MINUTE)
        q.tip(ROSKILDE, t)
        tip = q.events[-1].payload()
        assert isinstance(tip, cs.TipReceived)
        q.action(tip.case_id, ROSKILDE, "drug_dealing_street", "on_scene", t + MINUTE)
        q.action(uuid.uuid4(), ROSKILDE, "burglary_home", "on_scene", t + 2 * MINUTE)  # its case never reported
        greve = q.report(GREVE, "burglary_home", t, in_progress=True)
        q.action(greve, GREVE, "burglary_home", "on_scene", t + 7 * MINUTE)
        await self.store(uow, q.events)

        january = PeriodFacts(
            cases=(
                cases("report", 2),
                CaseTally("report", ROSKILDE, "violence", "kriminalitetsforebyggelse", 1),
                cases("tip", 1),
                cases("report", 1, kommune=GREVE),
            ),
            response=(
                DurationSample(ROSKILDE, "burglary_home", "indbrud", [180.0]),
                DurationSample(ROSKILDE, "violence", "kriminalitetsforebyggelse", [1200.0]),
                DurationSample(GREVE, "burglary_home", "indbrud", [420.0]),
            ),
            actions={"on_scene": 5, "dispatched": 1},
        )
        assert rows(await self.tallies(uow, "2026-01")) == rows(january)
        roskilde = await self.tallies(uow, "2026-01", ROSKILDE)
        assert rows(roskilde)["response"] == rows(january.where(kommune=ROSKILDE))["response"]
        assert roskilde.actions == {"on_scene": 4, "dispatched": 1}
        assert rows(await self.tallies(uow, "2026-02")) == rows(
            PeriodFacts(
                cases=(cases("report", 1),),
                response=(DurationSample(ROSKILDE, "burglary_home", "indbrud", [240.0]),),
                actions={"on_scene": 2, "dispatched": 1},
            )
        )

    async def test_alerts_count_per_latest_severity_and_case_with_a_time_to_acknowledge_per_stage(
        self, uow: Uow
    ) -> None:
        """An alert is acknowledged when its current stage is; every stage's first acknowledgement within it
        gives a time (the first stage's may be stamped before its start); an alert is filed under its case's
        category and focus area, 'ukendt' and lokal_tilstedevaerelse while the case is not known."""
        q = Quarter()
        t = utc(2026, 1, 12, 8)
        case = q.report(ROSKILDE, "burglary_home", t, in_progress=False)
        # Acknowledged after 40 s; the breach supersedes it, acknowledged 70 s after that (and again later).
        alert_events(q, uuid.uuid4(), case, ROSKILDE, ("raised", t + HOUR), ("ack", t + HOUR + 40 * SECOND),
                     ("supersede", t + 2 * HOUR), ("ack", t + 2 * HOUR + 70 * SECOND),
                     ("ack", t + 2 * HOUR + 500 * SECOND))  # fmt: skip
        # Superseded before anyone acknowledged it: an ack at the supersede's very instant is the new stage's.
        alert_events(q, uuid.uuid4(), case, ROSKILDE, ("raised", t + 7 * HOUR), ("supersede", t + 8 * HOUR),
                     ("ack", t + 8 * HOUR))  # fmt: skip
        # One stage, acknowledged twice: the first counts.
        alert_events(q, uuid.uuid4(), case, ROSKILDE, ("raised", t + 3 * HOUR), ("ack", t + 3 * HOUR + 30 * SECOND),
                     ("ack", t + 3 * HOUR + 500 * SECOND))  # fmt: skip
        # Its case never reported.
        alert_events(q, uuid.uuid4(), uuid.uuid4(), ROSKILDE, ("raised", t + 4 * HOUR))
        # Acknowledged 5 s before its raising (clocks differ), superseded, the new stage never acknowledged; escalated.
        alert_events(q, uuid.uuid4(), case, ROSKILDE, ("raised", t + 5 * HOUR), ("ack", t + 5 * HOUR - 5 * SECOND),
                     ("supersede", t + 6 * HOUR), ("escalate", t + 6 * HOUR + 10 * MINUTE))  # fmt: skip
        alert_events(q, uuid.uuid4(), case, ROSKILDE, ("raised", utc(2025, 12, 20, 8)),
                     ("ack", utc(2025, 12, 20, 8) + 10 * SECOND))  # fmt: skip
        alert_events(q, uuid.uuid4(), case, ROSKILDE, ("raised", utc(2026, 1, 31, 23)))  # local midnight: February
        violence = q.report(GREVE, "violence", t, acute=True)
        alert_events(q, uuid.uuid4(), violence, GREVE, ("raised", t + HOUR), ("ack", t + HOUR + 15 * SECOND))
        await self.store(uow, q.events)

        burglary = ("burglary_home", "indbrud")
        roskilde = [
            (
                AlertTally(ROSKILDE, "critical", *burglary, raised=3, acknowledged=2, escalated=1),
                [40.0, 70.0, -5.0, 0.0],
            ),
            (AlertTally(ROSKILDE, "warning", *burglary, raised=1, acknowledged=1, escalated=0), [30.0]),
            (AlertTally(ROSKILDE, "warning", "ukendt", "lokal_tilstedevaerelse", 1, 0, 0), []),
        ]
        greve = [(AlertTally(GREVE, "warning", "violence", "kriminalitetsforebyggelse", 1, 1, 0), [15.0])]

        def alerts(tallied: list[tuple[AlertTally, list[float]]]) -> Counter[Any]:
            return Counter(
                rows(
                    PeriodFacts(
                        alerts=tuple(a for a, _ in tallied),
                        ack=tuple(DurationSample(a.kommune, a.category, a.focus_area, s) for a, s in tallied),
                    )
                )["alerts"]
            )

        assert rows(await self.tallies(uow, "2026-01", ROSKILDE))["alerts"] == alerts(roskilde)
        assert rows(await self.tallies(uow, "2026-01"))["alerts"] == alerts(roskilde + greve)
        assert rows(await self.tallies(uow, "2026-01", GREVE))["alerts"] == alerts(greve)
        december = [(AlertTally(ROSKILDE, "warning", *burglary, 1, 1, 0), [10.0])]
        assert rows(await self.tallies(uow, "2025-12"))["alerts"] == alerts(december)
        february: list[tuple[AlertTally, list[float]]] = [(AlertTally(ROSKILDE, "warning", *burglary, 1, 0, 0), [])]
        assert rows(await self.tallies(uow, "2026-02"))["alerts"] == alerts(february)
        assert rows(await self.tallies(uow, "2026-03"))["alerts"] == alerts([])
