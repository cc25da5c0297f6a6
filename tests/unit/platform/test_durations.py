"""ISO 8601 durations as rule windows: what is accepted, what is refused and why."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.durations import format_duration, parse_duration

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT24H", timedelta(hours=24)),
        ("PT15M", timedelta(minutes=15)),
        ("P14D", timedelta(days=14)),
        ("P30D", timedelta(days=30)),
        ("PT5S", timedelta(seconds=5)),
        ("PT0.5S", timedelta(milliseconds=500)),
        ("PT1,25S", timedelta(seconds=1.25)),
        ("P1DT2H30M", timedelta(days=1, hours=2, minutes=30)),
        ("PT1H0.000001S", timedelta(hours=1, microseconds=1)),
    ],
)
def test_parses_fixed_length_units(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["PT24", "24h", "P", "PT", "P1DT", "-PT1H", "PT1.5H", "", "P1.5D", "PT15MIN"])
def test_refuses_what_is_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError, match="is not an ISO 8601 duration like PT24H"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["P1Y", "P1M", "P2W", "P1Y2M3DT4H"])
def test_refuses_calendar_units_whose_length_varies(text: str) -> None:
    with pytest.raises(ValueError, match="years, months or weeks"):
        parse_duration(text)


def test_minutes_after_t_are_minutes_not_months() -> None:
    assert parse_duration("PT1M") == timedelta(minutes=1)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("PT24H", "P1D"),
        ("PT15M", "PT15M"),
        ("P14D", "P14D"),
        ("PT0.5S", "PT0.5S"),
        ("PT90M", "PT1H30M"),
        ("P1DT2H30M4.25S", "P1DT2H30M4.25S"),
        ("PT0S", "PT0S"),
    ],
)
def test_format_writes_the_same_length_back(text: str, canonical: str) -> None:
    assert format_duration(parse_duration(text)) == canonical
    assert parse_duration(canonical) == parse_duration(text)


def test_format_refuses_negative() -> None:
    with pytest.raises(ValueError, match="negative"):
        format_duration(timedelta(seconds=-1))
