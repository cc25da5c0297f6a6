"""Which times a client may give: after records begin, not in the future, a requested visit not years ahead.

Every time a client sends (a report's or tip's occurred_at, an action's occurred_at and
requested_time) passes here before anything is stored. A time outside these bounds is a mistyped
year or another system's "zero" time (0001-01-01), never a fact: stored, it would count a
guarantee as met decades early, or end up as -infinity and break every read of the case.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

# Nothing this service handles happened before its records begin; a police district's case
# system is younger than that. Earlier is a typo or a zero value, never a crime to investigate.
EARLIEST: Final = datetime(2000, 1, 1, tzinfo=UTC)
# Portal and police clocks run a little apart; a report stamped "now" by a fast clock is not a lie.
CLOCK_SKEW: Final = timedelta(minutes=2)
# A citizen may ask the police to come weeks later, not years: this catches a mistyped year.
REQUESTED_TIME_HORIZON: Final = timedelta(days=60)


@dataclass(frozen=True, slots=True)
class TimeProblem:
    """Why a time cannot be right: `code` for machines, `message` for the person who typed it."""

    code: str
    message: str


def past_time_problem(value: datetime, now: datetime) -> TimeProblem | None:
    """A time something happened: from EARLIEST to now (plus CLOCK_SKEW). None when plausible."""
    _aware(now)
    try:
        instant = value.astimezone(UTC)
    except OverflowError:
        # 0001-01-01T00:00+01:00 parses, but is no instant in UTC: nothing could store or publish it.
        instant = EARLIEST - timedelta(days=1)
    if instant < EARLIEST:
        return TimeProblem(
            "too_early", f"This date cannot be right: give a time after {EARLIEST:%Y-%m-%d}, when it happened."
        )
    if instant > now + CLOCK_SKEW:
        return TimeProblem("in_the_future", "This time is in the future. Give the time it happened.")
    return None


def requested_time_problem(value: datetime, asked_at: datetime, now: datetime) -> TimeProblem | None:
    """A time the citizen wants the police to come: after they asked, within REQUESTED_TIME_HORIZON of now."""
    _aware(now)
    try:
        value.astimezone(UTC)
    except OverflowError:
        return TimeProblem(
            "too_early", "This date cannot be right. Give the time the citizen wants the police to come."
        )
    if value <= asked_at:
        return TimeProblem(
            "requested_time_not_later", "The requested time must be later than when the citizen asked (occurred_at)."
        )
    if value > now + REQUESTED_TIME_HORIZON:
        return TimeProblem(
            "requested_time_too_far",
            f"The requested time is more than {REQUESTED_TIME_HORIZON.days} days ahead; check the date.",
        )
    return None


def _aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("`now` must be timezone-aware; take it from shared.clock")
