"""Reporting's use cases (handlers.py) on the in-memory read model: what a council report reads and compares.

`handle` and `apply` (an event's facts merged into the read model) and the tallies of `period_facts` run
on this fake in test_repository_contract.py, the suite Postgres passes too. Here a council report is
computed from a quarter of events on the fake; and a fake answering each period with tallies of its
own shows the use case's part: which periods it reads, for which scope, and what it puts beside the figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from services.reporting import handlers
from services.reporting.domain.facts import FactBatch, RuleFact
from services.reporting.domain.kpis import CaseTally, PeriodFacts
from services.reporting.domain.periods import Period
from services.reporting.domain.report import Scope
from tests.support.quarter import district_quarter
from tests.unit.reporting.fakes import FakeReadModel

pytestmark = pytest.mark.unit

NOW = datetime(2026, 4, 2, 8, 0, tzinfo=UTC)
ROSKILDE = "0265"


async def test_a_quarters_report_from_its_events_gives_the_figures_worked_out_by_hand() -> None:
    """The district's quarter (tests/support/quarter.py; tests/integration/reporting/test_figures.py reads
    the same figures over HTTP): 11 of 13 guarantees met, response times 120 s, 600 ... 6,000 s and 90,000 s."""
    read_model = FakeReadModel()
    for event in district_quarter().events:
        await handlers.handle(read_model, event.meta, event.payload())

    report = await handlers.council_report(
        read_model, scope=Scope(None), period=Period.parse("2026-Q1"), focus_area=None, threshold=10, now=NOW
    )

    now = report.current
    assert (now.reports, now.tips, now.requests) == (14, 3, 1)
    assert (report.previous.reports, report.year_earlier.reports) == (1, 0)  # December 2025; none a year before
    assert (now.guarantees.numerator, now.guarantees.denominator) == (11, 13)
    assert (now.response.count, now.response.mean, now.response.median, now.response.p80, now.response.p90) == (
        12, 10260, 3000, 5400, 6000,
    )  # fmt: skip
    assert (now.open_deadlines["guarantee"], now.breached_deadlines["guarantee"]) == (1, 2)
    assert (now.alerts_raised, now.alerts_acknowledged, now.alert_ack.count) == (1, 1, 1)
    assert now.actions == {"on_scene": 12}
    assert report.by_kommune[ROSKILDE].guarantees.numerator == 10
    trend = {str(point.month): point.reports for point in report.trend}
    assert (trend["2025-12"], trend["2026-01"], trend["2026-02"]) == (1, 0, 14)


class TalliedReadModel(FakeReadModel):
    """The fake, answering `period_facts` with `reports[period start]` burglary reports in Roskilde."""

    def __init__(self, reports: dict[datetime, int]) -> None:
        super().__init__()
        self.reports = reports
        self.asked: list[tuple[datetime, datetime, str | None, int]] = []

    async def period_facts(
        self, start: datetime, end: datetime, kommune: str | None, window: Sequence[tuple[str, datetime]] = ()
    ) -> PeriodFacts:
        self.asked.append((start, end, kommune, len(window)))
        tally = CaseTally("report", ROSKILDE, "burglary_home", "indbrud", self.reports.get(start, 0))
        return PeriodFacts(cases=(tally,))


async def test_a_quarters_report_compares_it_with_the_quarter_before_and_the_same_quarter_a_year_earlier() -> None:
    q1 = Period.parse("2026-Q1")
    read_model = TalliedReadModel({q1.start: 30, q1.previous().start: 20, q1.year_earlier().start: 10})
    seen = FactBatch()
    seen.add("deadlines", NOW, [RuleFact("burglary_response", "Indbrud: patrulje", "guarantee", "district", 3600, NOW)])
    await read_model.save(seen)

    report = await handlers.council_report(
        read_model, scope=Scope(ROSKILDE), period=q1, focus_area=None, threshold=10, now=NOW
    )

    assert (report.current.reports, report.previous.reports, report.year_earlier.reports) == (30, 20, 10)
    assert read_model.asked == [
        (q1.start, q1.end, ROSKILDE, 12),  # the period itself, with the twelve months of the trend
        (q1.previous().start, q1.previous().end, ROSKILDE, 0),
        (q1.year_earlier().start, q1.year_earlier().end, ROSKILDE, 0),
    ]
    assert report.freshness == {"deadlines": NOW} and report.generated_at == NOW
    assert [(r.rule_id, r.window_seconds) for r in report.rules] == [("burglary_response", 3600)]


async def test_a_years_report_reads_the_year_before_once_as_both_previous_and_year_earlier() -> None:
    year = Period.parse("2025")
    read_model = TalliedReadModel({year.start: 300, year.previous().start: 200})

    report = await handlers.council_report(
        read_model, scope=Scope(None), period=year, focus_area=None, threshold=10, now=NOW
    )

    assert (report.current.reports, report.previous.reports, report.year_earlier.reports) == (300, 200, 200)
    assert [(start, kommune) for start, _, kommune, _ in read_model.asked] == [
        (year.start, None),
        (year.previous().start, None),
    ]
