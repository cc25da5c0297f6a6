"""ISO 8601 durations of fixed length (days, hours, minutes, seconds): rule windows, escalation timeouts."""

from __future__ import annotations

import re
from datetime import timedelta

# Days, then a time part; only seconds may carry a fraction (PT0.5S, PT1,5S), which is all a
# rule window needs. Years, months and weeks are refused below with their own message.
_DURATION = re.compile(
    r"P(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:[.,]\d+)?)S)?)?"
)
_CALENDAR_UNIT = re.compile(r"P[^T]*[YMW]")


def parse_duration(text: str) -> timedelta:
    """The elapsed time an ISO 8601 duration such as PT24H, PT15M, P14D or PT0.5S stands for.

    Raises ValueError with a message fit to show to whoever wrote the data file.
    """
    value = text.strip().upper()
    match = _DURATION.fullmatch(value)
    # "P" and "PT" match the pattern with no unit at all; a lone "T" with nothing after it is no duration.
    if match is None or not any(match.groupdict().values()) or value.endswith("T"):
        if _CALENDAR_UNIT.match(value):
            # A month or a year has no fixed length, so "P1M" would move with the calendar.
            raise ValueError(
                f"{text!r} uses years, months or weeks; write the window in days, hours, minutes or seconds, e.g. P30D"
            )
        raise ValueError(f"{text!r} is not an ISO 8601 duration like PT24H, PT15M or P14D")
    parts = match.groupdict()
    seconds = float((parts["seconds"] or "0").replace(",", "."))
    return timedelta(
        days=int(parts["days"] or 0),
        hours=int(parts["hours"] or 0),
        minutes=int(parts["minutes"] or 0),
        seconds=seconds,
    )


def format_duration(value: timedelta) -> str:
    """The ISO 8601 form of a non-negative timedelta, e.g. P1DT2H30M or PT0.5S; inverse of parse_duration."""
    if value < timedelta(0):
        raise ValueError(f"{value} is negative; a window is never negative")
    micros = value // timedelta(microseconds=1)
    days, micros = divmod(micros, 86_400_000_000)
    hours, micros = divmod(micros, 3_600_000_000)
    minutes, micros = divmod(micros, 60_000_000)
    seconds, micros = divmod(micros, 1_000_000)
    text = "P"
    if days:
        text += f"{days}D"
    time = ""
    if hours:
        time += f"{hours}H"
    if minutes:
        time += f"{minutes}M"
    if seconds or micros:
        time += f"{seconds}.{micros:06d}".rstrip("0").rstrip(".") + "S"
    if time:
        text += "T" + time
    return text if text != "P" else "PT0S"
