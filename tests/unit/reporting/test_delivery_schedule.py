"""When a council report is due: the Nth working day after its period ends, Danish public holidays respected."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest
from holidays import country_holidays

from services.reporting.domain.delivery_plan import MAX_CATCH_UP, AfterPeriod, Once, PlanEntry, ReportChoice
from services.reporting.domain.periods import LOCAL, Period
from services.reporting.domain.report import Scope
from services.reporting.domain.working_days import CLOSING_DAYS, WorkingDays

PLAIN = WorkingDays()
OFFICES = WorkingDays.closing(["grundlovsdag", "juleaftensdag", "nytaarsaftensdag"])


def entry(kind: str = "quarter", working_day: int = 5, at: time = time(8, 0)) -> PlanEntry:
    return PlanEntry(
        id="lokalraad-0265",
        council=Scope("0265"),
        recipients=("lokalraad-roskilde@kommune.example",),
        report=ReportChoice(Scope("0265"), kind),  # type: ignore[arg-type]
        schedule=AfterPeriod(working_day, at),
    )


def due_local(period: str, calendar: WorkingDays = OFFICES, **kwargs: object) -> datetime:
    return entry(**kwargs).due_at(Period.parse(period), calendar).astimezone(LOCAL)  # type: ignore[arg-type]


def test_the_5th_working_day_after_q3_2026_is_wednesday_7_october_at_0800_copenhagen_time() -> None:
    due = due_local("2026-Q3")
    assert due == datetime(2026, 10, 7, 8, 0, tzinfo=LOCAL)
    # Summer time still: 08:00 in Copenhagen is 06:00 UTC.
    assert due.astimezone(UTC) == datetime(2026, 10, 7, 6, 0, tzinfo=UTC)


def test_easter_moves_the_first_quarters_report() -> None:
    # Q1 2026 ends Tuesday 31 March; skærtorsdag 2 April, langfredag 3 April and 2. påskedag 6 April
    # are holidays: 1 April, then 7, 8, 9, 10 April. Without Easter it would be 7 April.
    assert due_local("2026-Q1").date() == date(2026, 4, 10)
    # 2024: Easter Sunday is the quarter's last day, 2. påskedag (1 April) the first after it.
    assert due_local("2024-Q1").date() == date(2024, 4, 8)
    # 2027: Easter falls inside the quarter (25-29 March), so April's first five working days count.
    assert due_local("2027-Q1").date() == date(2027, 4, 7)
    # Winter time in late March and early April? No: 08:00 local is 06:00 UTC from the last Sunday of March.
    assert due_local("2026-Q1").astimezone(UTC).hour == 6


def test_the_year_end_crosses_nytaarsdag_and_the_report_of_q4_is_due_after_it() -> None:
    # 1 January 2027 is a Friday and a holiday: Monday 4 January is the first working day.
    assert due_local("2026-Q4").date() == date(2027, 1, 8)
    assert due_local("2026").date() == date(2027, 1, 8)  # the year report, the same day
    # Winter time: 08:00 in Copenhagen is 07:00 UTC.
    assert due_local("2026-Q4").astimezone(UTC) == datetime(2027, 1, 8, 7, 0, tzinfo=UTC)


def test_pentecost_and_ascension_are_holidays_for_a_monthly_report() -> None:
    # May 2026 ends on Sunday 31 May; June's 1-4 count, 5 June is grundlovsdag (closed by the plan).
    assert due_local("2026-05", kind="month").date() == date(2026, 6, 8)
    assert due_local("2026-05", PLAIN, kind="month").date() == date(2026, 6, 5)  # without the plan's closing days
    # April 2027: Kristi himmelfartsdag is Thursday 6 May; the Friday after it is a working day.
    assert due_local("2027-04", kind="month").date() == date(2027, 5, 10)
    # April 2026: 2. pinsedag is 25 May 2026, far away; 1 May is a working day unless the plan closes it.
    assert due_local("2026-04", kind="month").date() == date(2026, 5, 7)
    assert due_local("2026-04", WorkingDays.closing(["1_maj"]), kind="month").date() == date(2026, 5, 8)


def test_store_bededag_is_a_holiday_up_to_2023_and_a_working_day_from_2024() -> None:
    assert not PLAIN.is_working_day(date(2023, 5, 5))  # store bededag 2023, the last one
    assert due_local("2023-04", kind="month").date() == date(2023, 5, 8)
    assert PLAIN.is_working_day(date(2024, 4, 26))  # would have been store bededag 2024
    assert PLAIN.is_working_day(date(2026, 5, 1))


def test_every_public_holiday_of_2026_is_no_working_day_and_the_rest_of_the_weekdays_are() -> None:
    named = {
        date(2026, 1, 1), date(2026, 4, 2), date(2026, 4, 3), date(2026, 4, 5), date(2026, 4, 6),
        date(2026, 5, 14), date(2026, 5, 24), date(2026, 5, 25), date(2026, 12, 25), date(2026, 12, 26),
    }  # fmt: skip
    day = date(2026, 1, 1)
    while day.year == 2026:
        assert PLAIN.is_working_day(day) == (day.weekday() < 5 and day not in named), day
        day = date.fromordinal(day.toordinal() + 1)


def test_the_closing_days_are_the_ones_the_library_knows_as_optional_danish_days() -> None:
    optional = country_holidays("DK", years=2026, categories=("optional",))
    assert {(d.month, d.day) for d in optional} == set(CLOSING_DAYS.values())
    with pytest.raises(ValueError, match="unknown closing days"):
        WorkingDays.closing(["sankthansaften"])


def test_juleaftensdag_and_nytaarsaftensdag_count_only_when_the_plan_closes_them() -> None:
    # November 2026 with the 20th working day: December's 1-23 hold 17, then Thursday 24
    # (juleaftensdag), Friday 25 (juledag), Monday 28, Tuesday 29, Wednesday 30, Thursday 31
    # (nytårsaftensdag), Friday 1 January (nytårsdag), Monday 4 January.
    assert due_local("2026-11", PLAIN, kind="month", working_day=20).date() == date(2026, 12, 29)
    assert due_local("2026-11", OFFICES, kind="month", working_day=20).date() == date(2026, 12, 30)
    assert due_local("2026-11", PLAIN, kind="month", working_day=21).date() == date(2026, 12, 30)
    assert due_local("2026-11", OFFICES, kind="month", working_day=21).date() == date(2027, 1, 4)


def test_the_next_period_on_the_timer_is_the_first_whose_due_time_is_ahead() -> None:
    quarterly = entry()
    # 6 December 2026: Q3's report went out on 7 October; Q4's is next (8 January 2027).
    now = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
    assert quarterly.periods_to_plan(now, OFFICES, None) == [
        (Period.parse("2026-Q4"), datetime(2027, 1, 8, 7, 0, tzinfo=UTC))
    ]
    # 2 October 2026: Q3 has ended but its report is not yet due: Q3 is next.
    early = datetime(2026, 10, 2, 9, 0, tzinfo=UTC)
    assert [str(p) for p, _ in quarterly.periods_to_plan(early, OFFICES, None)] == ["2026-Q3"]
    # At the due time itself the report fires; the next one planned is the following quarter's.
    at_due = datetime(2026, 10, 7, 6, 0, tzinfo=UTC)
    assert [str(p) for p, _ in quarterly.periods_to_plan(at_due, OFFICES, None)] == ["2026-Q4"]


def test_periods_missed_during_an_outage_are_planned_late_but_never_more_than_a_few() -> None:
    quarterly = entry()
    now = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
    # Planned up to Q2 before the service stopped in the summer: Q3 is due already, Q4 next.
    planned = quarterly.periods_to_plan(now, OFFICES, Period.parse("2026-Q2"))
    assert [str(p) for p, _ in planned] == ["2026-Q3", "2026-Q4"]
    assert planned[0][1] < now < planned[1][1]
    # Years of silence: only the latest few are sent.
    long_ago = quarterly.periods_to_plan(now, OFFICES, Period.parse("2020-Q1"))
    assert [str(p) for p, _ in long_ago][-1] == "2026-Q4" and len(long_ago) == MAX_CATCH_UP + 1
    # A period of another kind (the entry was monthly before) is no reason to catch up.
    assert len(quarterly.periods_to_plan(now, OFFICES, Period.parse("2026-03"))) == 1


def test_a_once_entry_plans_its_period_at_its_time_whatever_the_time_now() -> None:
    at = datetime(2026, 12, 6, 10, 0, 5, tzinfo=UTC)
    demo = PlanEntry(
        id="kredsraad-demo", council=Scope(None), recipients=("kredsraad@politi.example",),
        report=ReportChoice(Scope(None), "quarter"), schedule=Once(Period.parse("2026-Q3"), at),
    )  # fmt: skip
    assert demo.periods_to_plan(datetime(2026, 12, 6, 10, tzinfo=UTC), OFFICES, None) == [(Period.parse("2026-Q3"), at)]
    assert demo.periods_to_plan(datetime(2027, 1, 1, tzinfo=UTC), OFFICES, None) == [(Period.parse("2026-Q3"), at)]
