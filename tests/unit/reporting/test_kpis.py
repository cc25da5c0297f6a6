"""KPI arithmetic: percentiles, Rigspolitiet's mean, compliance with exceptions, small numbers, law apart."""

from __future__ import annotations

from typing import TypedDict, Unpack

import pytest

from services.reporting.domain.kpis import (
    DeadlineTally,
    DurationSample,
    PeriodFacts,
    Rate,
    Spread,
    StockTally,
    figures,
    mean_floor_seconds,
    percentile,
)


def test_nearest_rank_percentiles_are_observed_values() -> None:
    values = [float(v) for v in range(1, 11)]  # 1..10
    assert percentile(values, 50) == 5  # rank ceil(5) = 5: never the interpolated 5.5
    assert percentile(values, 80) == 8
    assert percentile(values, 90) == 9
    assert percentile(values, 100) == 10
    assert percentile([7.0], 90) == 7
    assert percentile([], 50) is None
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2  # the lower middle for an even count
    assert percentile([1.0, 2.0, 3.0], 50) == 2


def test_percentile_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        percentile([1.0], 0)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_mean_rounds_seconds_down_like_rigspolitiet() -> None:
    assert mean_floor_seconds([100.0, 101.0]) == 100  # 100.5 -> 100
    assert mean_floor_seconds([59.99]) == 59
    assert mean_floor_seconds([]) is None


def test_spread_in_whole_seconds_with_its_count() -> None:
    spread = Spread.of([600.9, 300.2, 900.7, 1200.0, 60.5])
    assert spread.count == 5
    assert spread.mean == 612  # (600.9 + 300.2 + 900.7 + 1200 + 60.5) / 5 = 612.46
    assert spread.median == 600
    assert spread.p80 == 900
    assert spread.p90 == 1200
    assert Spread.of([]).as_dict() == {
        "count": 0,
        "mean": None,
        "median": None,
        "p80": None,
        "p90": None,
        "suppressed": True,
    }


def test_a_spread_over_too_few_measurements_keeps_only_its_count() -> None:
    few = Spread.of([600.0, 60.0, 120.0], threshold=10)
    assert few.as_dict() == {"count": 3, "mean": None, "median": None, "p80": None, "p90": None, "suppressed": True}
    enough = Spread.of([60.0 * i for i in range(1, 11)], threshold=10)
    assert not enough.suppressed and enough.median == 300 and enough.p90 == 540


def test_rate_is_suppressed_below_the_threshold_but_keeps_its_count() -> None:
    few = Rate(8, 9, threshold=10)
    assert few.suppressed and few.percent is None
    assert few.as_dict() == {"numerator": 8, "denominator": 9, "percent": None, "suppressed": True}
    enough = Rate(9, 10, threshold=10)
    assert not enough.suppressed
    assert enough.percent == pytest.approx(90.0)
    assert Rate(0, 0, threshold=1).percent is None


class _Counts(TypedDict, total=False):
    started: int
    met_on_time: int
    met_late: int
    missed: int
    closed_before_met: int
    citizen_requested_later: int
    pending: int


def _tally(rule: str, basis: str = "guarantee", kommune: str = "0265", **counts: Unpack[_Counts]) -> DeadlineTally:
    return DeadlineTally(
        rule_id=rule,
        title=rule.replace("_", " "),
        basis=basis,  # type: ignore[arg-type]
        window_set_by="law",
        window_seconds=86400.0,
        kommune=kommune,
        category="burglary_home",
        focus_area="indbrud",
        **counts,
    )


def test_compliance_is_met_within_window_over_concluded_with_exceptions_listed() -> None:
    facts = PeriodFacts(
        deadlines=(
            _tally(
                "burglary_home_24h",
                started=20,
                met_on_time=12,
                met_late=2,
                missed=1,
                closed_before_met=3,
                citizen_requested_later=4,
                pending=2,
            ),
        )
    )
    rule = figures(facts, threshold=10).rules[0]
    assert rule.concluded == 15  # 12 on time + 2 late + 1 breached and never met; pending and closed-early out
    assert rule.rate.numerator == 12 and rule.rate.denominator == 15
    assert rule.rate.percent == pytest.approx(80.0)
    exceptions = rule.as_dict()["exceptions"]
    assert exceptions == {"citizen_requested_later": 4, "closed_before_met": 3, "met_late": 2}


def test_guarantees_and_local_targets_are_never_pooled() -> None:
    facts = PeriodFacts(
        deadlines=(
            _tally("burglary_home_24h", started=10, met_on_time=10),
            _tally("violence_acute", started=10, met_on_time=5, missed=5),
            _tally("tryghedsopfoelgning_burglary", basis="local_target", started=30, met_on_time=3, missed=27),
        )
    )
    result = figures(facts, threshold=10)
    assert (result.guarantees.numerator, result.guarantees.denominator) == (15, 20)
    assert (result.local_targets.numerator, result.local_targets.denominator) == (3, 30)
    assert result.followups.denominator == 30  # the follow-up KPI is that local target's own rate
    assert [r.basis for r in result.rules] == ["guarantee", "guarantee", "local_target"]


def test_rates_over_kommuner_add_counts_not_percentages() -> None:
    facts = PeriodFacts(
        deadlines=(
            _tally("burglary_home_24h", kommune="0265", started=2, met_on_time=1, missed=1),  # 50 %
            _tally("burglary_home_24h", kommune="0253", started=18, met_on_time=18),  # 100 %
        )
    )
    district = figures(facts, threshold=10)
    assert district.guarantees.percent == pytest.approx(19 / 20 * 100)  # not the mean of 50 % and 100 %
    roskilde = figures(facts.where(kommune="0265"), threshold=10)
    assert roskilde.guarantees.suppressed and roskilde.guarantees.denominator == 2


def test_response_times_pool_across_groups_and_stay_per_category() -> None:
    facts = PeriodFacts(
        response=(
            DurationSample("0265", "burglary_home", "indbrud", (600.0, 1200.0)),
            DurationSample("0253", "burglary_home", "indbrud", (300.0,)),
            DurationSample("0265", "violence", "kriminalitetsforebyggelse", (120.0,)),
        )
    )
    result = figures(facts, threshold=1)
    assert result.response.count == 4
    assert result.response.median == 300
    assert result.response_by_category["burglary_home"].count == 3
    assert result.response_by_category["violence"].median == 120
    assert figures(facts.where(focus_area="indbrud"), threshold=1).response.count == 3
    # The small-number threshold holds for spreads too: per category and pooled, counts stay.
    small = figures(facts, threshold=4)
    assert small.response.median == 300 and not small.response.suppressed
    assert small.response_by_category["violence"] == Spread(1, None, None, None, None, suppressed=True)
    assert small.response_by_category["burglary_home"].suppressed


def test_open_and_breached_deadlines_by_basis() -> None:
    facts = PeriodFacts(
        stock=(
            StockTally("burglary_home_24h", "guarantee", "0265", "indbrud", open_at_end=3, breached_in_period=1),
            StockTally("tryghedsopfoelgning_burglary", "local_target", "0265", "indbrud", 7, 2),
        )
    )
    result = figures(facts, threshold=10)
    assert result.open_deadlines == {"guarantee": 3, "local_target": 7}
    assert result.breached_deadlines == {"guarantee": 1, "local_target": 2}


def test_trend_counts_each_month_and_pools_only_guarantees() -> None:
    from dataclasses import replace

    from services.reporting.domain.kpis import CaseTally
    from services.reporting.domain.periods import Period
    from services.reporting.domain.report import trend_of

    march = "2026-03"
    facts = PeriodFacts(
        trend_cases=(
            CaseTally("report", "0265", "burglary_home", "indbrud", 4, month=march),
            CaseTally("tip", "0265", "drug_dealing_street", "narkotika_gadeplan", 2, month=march),
            CaseTally("report", "0265", "burglary_home", "indbrud", 7, month="2025-12"),
        ),
        trend_deadlines=(
            replace(_tally("burglary_home_24h", met_on_time=9, met_late=1, missed=2), month=march),
            replace(_tally("tryghedsopfoelgning_burglary", basis="local_target", missed=30), month=march),
        ),
    )
    points = trend_of(facts, Period.parse("2026-Q1").trailing_months(12), threshold=10)
    assert len(points) == 12 and str(points[0].month) == "2025-04" and str(points[-1].month) == march
    by_month = {str(p.month): p for p in points}
    assert (by_month[march].reports, by_month[march].tips) == (4, 2)
    assert (by_month[march].guarantees.numerator, by_month[march].guarantees.denominator) == (9, 12)
    assert by_month["2025-12"].reports == 7
    assert by_month["2026-01"].reports == 0 and by_month["2026-01"].guarantees.denominator == 0


@pytest.mark.parametrize("count", [1, 2, 3, 9, 10, 11, 99, 1000, 4097])
def test_a_spread_takes_the_values_a_full_sort_would(count: int) -> None:
    """Spread.of picks its three ranks without sorting: the same values as sorting all of them, with
    ties, negative durations (clock skew, counted as 0) and fractions of a second."""
    import random

    rng = random.Random(count)
    values = [
        round(rng.lognormvariate(6.6, 0.9), rng.choice([0, 3, 6])) - rng.choice([0, 0, 0, 900]) for _ in range(count)
    ]
    ordered = sorted(max(v, 0.0) for v in values)
    spread = Spread.of(values)
    expected = [percentile(ordered, p) for p in (50, 80, 90)]
    assert [spread.median, spread.p80, spread.p90] == [int(v // 1) for v in expected if v is not None]
    assert spread.mean == mean_floor_seconds(ordered) and spread.count == count
