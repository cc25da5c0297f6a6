"""Reporting periods: boundaries at local midnight in Copenhagen, across DST and year ends."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from services.reporting.domain.periods import Period, PeriodError


def test_parses_the_three_shapes() -> None:
    assert Period.parse("2026") == Period(2026, "year", 1)
    assert Period.parse("2026-Q1") == Period(2026, "quarter", 1)
    assert Period.parse("2026-03") == Period(2026, "month", 3)
    assert [str(Period.parse(t)) for t in ("2026", "2026-Q4", "2026-12")] == ["2026", "2026-Q4", "2026-12"]


@pytest.mark.parametrize("text", ["26", "2026-Q5", "2026-13", "2026-00", "2026-3", "2026Q1", "q1-2026", ""])
def test_refuses_other_text(text: str) -> None:
    with pytest.raises(PeriodError):
        Period.parse(text)


def test_winter_boundaries_are_local_midnight_at_utc_plus_one() -> None:
    q1 = Period.parse("2026-Q1")
    assert q1.start == datetime(2025, 12, 31, 23, 0, tzinfo=UTC)
    # Q1 ends on 1 April, after the switch to summer time (29 March 2026): midnight is 22:00 UTC.
    assert q1.end == datetime(2026, 3, 31, 22, 0, tzinfo=UTC)


def test_month_across_the_spring_dst_change_is_an_hour_short() -> None:
    march = Period.parse("2026-03")
    assert march.start == datetime(2026, 2, 28, 23, 0, tzinfo=UTC)
    assert march.end == datetime(2026, 3, 31, 22, 0, tzinfo=UTC)
    assert (march.end - march.start).total_seconds() == 31 * 86400 - 3600


def test_month_across_the_autumn_dst_change_is_an_hour_long() -> None:
    october = Period.parse("2026-10")
    assert october.start == datetime(2026, 9, 30, 22, 0, tzinfo=UTC)
    assert october.end == datetime(2026, 10, 31, 23, 0, tzinfo=UTC)
    assert (october.end - october.start).total_seconds() == 31 * 86400 + 3600


def test_new_years_eve_after_23_utc_belongs_to_the_new_year() -> None:
    late = datetime(2025, 12, 31, 23, 30, tzinfo=UTC)  # 00:30 on 1 January in Copenhagen
    assert Period.containing(late, "year") == Period(2026, "year", 1)
    assert Period.containing(late, "quarter") == Period(2026, "quarter", 1)
    assert Period.parse("2026").contains(late)
    assert not Period.parse("2025").contains(late)
    assert Period.parse("2025-12").contains(datetime(2025, 12, 31, 22, 59, 59, tzinfo=UTC))


def test_previous_and_year_earlier_cross_year_ends() -> None:
    assert Period.parse("2026-Q1").previous() == Period.parse("2025-Q4")
    assert Period.parse("2026-01").previous() == Period.parse("2025-12")
    assert Period.parse("2026").previous() == Period.parse("2025")
    assert Period.parse("2026-Q1").year_earlier() == Period.parse("2025-Q1")
    assert Period.parse("2026-03").year_earlier() == Period.parse("2025-03")
    assert Period.parse("2025-12").shifted(1) == Period.parse("2026-01")


def test_consecutive_periods_leave_no_gap() -> None:
    months = Period.parse("2026").month_periods()
    assert len(months) == 12
    for a, b in itertools.pairwise(months):
        assert a.end == b.start
    assert months[0].start == Period.parse("2026").start
    assert months[-1].end == Period.parse("2026").end


def test_trailing_months_end_with_the_period() -> None:
    months = Period.parse("2026-Q1").trailing_months(12)
    assert str(months[0]) == "2025-04"
    assert str(months[-1]) == "2026-03"


def test_danish_labels() -> None:
    assert Period.parse("2026-Q1").label_da() == "1. kvartal 2026"
    assert Period.parse("2026-03").label_da() == "marts 2026"
    assert Period.parse("2026").label_da() == "2026"


def test_scope_is_the_district_or_one_of_its_kommuner() -> None:
    from services.reporting.domain.report import Scope, ScopeError

    assert Scope.parse("kreds").kommune is None
    assert Scope.parse("KREDS").kommune is None
    assert Scope.parse("265").kommune == "0265"
    assert Scope.parse("0265").label_da() == "Roskilde Kommune"
    assert Scope.parse("0253").council_da == "Lokalrådet i Greve"
    for bad in ("0101", "danmark", "", "12345"):
        with pytest.raises(ScopeError):
            Scope.parse(bad)


@pytest.mark.parametrize("text", ["Hans Jensen 12-3456", "<b>1999</b>", "1999"])
def test_an_error_never_repeats_what_the_client_typed(text: str) -> None:
    # The text may be personal (issue 8): the answer is a fixed sentence.
    from services.reporting.domain.report import Scope, ScopeError

    with pytest.raises(PeriodError) as period_error:
        Period.parse(text)
    with pytest.raises(ScopeError) as scope_error:
        Scope.parse(text)
    for error in (period_error.value, scope_error.value):
        assert text not in str(error) and text.strip("<b>/") not in str(error)
