"""Danish working days (arbejdsdage): weekdays that are neither a public holiday (helligdag) nor a day the
district's offices close by its own decision (grundlovsdag, juleaftensdag, nytårsaftensdag, 1. maj).

The public holidays come from python-holidays (`holidays.country_holidays("DK")`, public category): nytårsdag,
skærtorsdag, langfredag, påskedag, 2. påskedag, Kristi himmelfartsdag, pinsedag, 2. pinsedag,
juledag, 2. juledag, and store bededag up to 2023 (abolished from 2024 by lov nr. 161 of
28 February 2023). The others are not public holidays but days many public offices close; the
delivery plan names which of them the district treats as closed. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from typing import Final

from holidays import country_holidays

# Days that are not public holidays but that an office may close on, by their plan-file names, as
# (month, day): fixed dates. tests/unit/reporting/test_working_days.py checks them against the
# library's "optional" Danish category, so a mistake here cannot hide.
CLOSING_DAYS: Final[dict[str, tuple[int, int]]] = {
    "grundlovsdag": (6, 5),
    "juleaftensdag": (12, 24),
    "nytaarsaftensdag": (12, 31),
    "1_maj": (5, 1),
}

# Beyond this many days a search for the Nth working day has certainly gone wrong (no calendar has
# more than two weeks without one); it stops rather than loop.
_SEARCH_LIMIT: Final = 366


@lru_cache(maxsize=64)
def public_holidays(year: int) -> frozenset[date]:
    """Denmark's public holidays (helligdage) of one year, Easter-dependent ones included."""
    return frozenset(country_holidays("DK", years=year, categories=("public",)).keys())


@dataclass(frozen=True, slots=True)
class WorkingDays:
    """Which days count as working days: Monday to Friday, less the public holidays and `closed_also`."""

    closed_also: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        unknown = set(self.closed_also) - set(CLOSING_DAYS)
        if unknown:
            raise ValueError(f"unknown closing days {sorted(unknown)}; known: {', '.join(CLOSING_DAYS)}")

    @classmethod
    def closing(cls, names: Iterable[str]) -> WorkingDays:
        return cls(frozenset(names))

    def is_working_day(self, day: date) -> bool:
        if day.weekday() >= 5:
            return False
        if day in public_holidays(day.year):
            return False
        return (day.month, day.day) not in {CLOSING_DAYS[name] for name in self.closed_also}

    def nth_after(self, day: date, n: int) -> date:
        """The `n`th working day after `day` (day itself not counted): n=1 is the first working day after it."""
        if n < 1:
            raise ValueError("n counts from 1: the first working day after the day")
        found = 0
        current = day
        for _ in range(_SEARCH_LIMIT):
            current += timedelta(days=1)
            if self.is_working_day(current):
                found += 1
                if found == n:
                    return current
        raise ValueError(f"no {n} working days within a year after {day}")
