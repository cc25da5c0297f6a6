"""The bounds on every time a client gives (domain/times.py), on a fixed `now`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.intake.domain.times import (
    CLOCK_SKEW,
    EARLIEST,
    REQUESTED_TIME_HORIZON,
    past_time_problem,
    requested_time_problem,
)

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
CET = timezone(timedelta(hours=1))


@pytest.mark.parametrize(
    "when",
    [
        datetime(1, 1, 1, tzinfo=UTC),  # Go's zero time.Time
        datetime(1, 1, 1, tzinfo=CET),  # not even an instant in UTC
        datetime(1900, 1, 1, 8, 0, tzinfo=CET),
        datetime(1970, 1, 1, tzinfo=UTC),  # a Unix zero
        EARLIEST - timedelta(microseconds=1),
    ],
)
def test_a_time_before_records_begin_is_too_early(when: datetime) -> None:
    problem = past_time_problem(when, NOW)
    assert problem is not None and problem.code == "too_early" and "2000-01-01" in problem.message


def test_a_time_from_records_begin_to_now_plus_skew_is_plausible() -> None:
    for when in (EARLIEST, NOW - timedelta(days=400), NOW, NOW + CLOCK_SKEW):
        assert past_time_problem(when, NOW) is None
    problem = past_time_problem(NOW + CLOCK_SKEW + timedelta(seconds=1), NOW)
    assert problem is not None and problem.code == "in_the_future"


def test_a_requested_time_lies_after_the_request_and_within_the_horizon() -> None:
    asked = NOW - timedelta(minutes=5)
    assert requested_time_problem(NOW + timedelta(days=2), asked, NOW) is None
    assert requested_time_problem(NOW + REQUESTED_TIME_HORIZON, asked, NOW) is None
    too_far = requested_time_problem(NOW + REQUESTED_TIME_HORIZON + timedelta(minutes=1), asked, NOW)
    assert too_far is not None and too_far.code == "requested_time_too_far"
    before = requested_time_problem(asked, asked, NOW)
    assert before is not None and before.code == "requested_time_not_later"
    zero = requested_time_problem(datetime(1, 1, 1, tzinfo=CET), asked, NOW)
    assert zero is not None and zero.code == "too_early"


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        past_time_problem(NOW, datetime(2026, 3, 1, 9, 0))
