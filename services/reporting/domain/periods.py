"""Reporting periods (month, quarter, year) with boundaries at local midnight in Europe/Copenhagen."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Literal
from zoneinfo import ZoneInfo

LOCAL = ZoneInfo("Europe/Copenhagen")

Kind = Literal["year", "quarter", "month"]

_PERIOD = re.compile(r"^(?P<year>\d{4})(?:-Q(?P<quarter>[1-4])|-(?P<month>0[1-9]|1[0-2]))?$")

MONTHS_DA = (
    "januar", "februar", "marts", "april", "maj", "juni",
    "juli", "august", "september", "oktober", "november", "december",
)  # fmt: skip


class PeriodError(ValueError):
    """A period text that is not `2026`, `2026-Q1` or `2026-03`."""


def local_midnight(day: date) -> datetime:
    """The UTC instant of 00:00 local time on `day` (never ambiguous: DST changes happen at 02:00/03:00)."""
    return datetime(day.year, day.month, day.day, tzinfo=LOCAL).astimezone(UTC)


@dataclass(frozen=True, slots=True, order=True)
class Period:
    """A calendar period as councils read it; `start` inclusive, `end` exclusive, both UTC instants."""

    year: int
    kind: Kind
    index: int  # 1 for a year; 1-4 for a quarter; 1-12 for a month

    @classmethod
    def parse(cls, text: str) -> Period:
        # Errors are fixed sentences: an answer never repeats what the client typed (shared/validation.py).
        match = _PERIOD.match(text.strip())
        if match is None:
            raise PeriodError("Not a period; write 2026, 2026-Q1 or 2026-03.")
        year = int(match["year"])
        if year < 2000 or year > 2100:
            raise PeriodError("The year must lie between 2000 and 2100.")
        if match["quarter"]:
            return cls(year, "quarter", int(match["quarter"]))
        if match["month"]:
            return cls(year, "month", int(match["month"]))
        return cls(year, "year", 1)

    @classmethod
    def containing(cls, instant: datetime, kind: Kind) -> Period:
        local = instant.astimezone(LOCAL)
        if kind == "year":
            return cls(local.year, "year", 1)
        if kind == "quarter":
            return cls(local.year, "quarter", (local.month - 1) // 3 + 1)
        return cls(local.year, "month", local.month)

    def __str__(self) -> str:
        if self.kind == "quarter":
            return f"{self.year}-Q{self.index}"
        if self.kind == "month":
            return f"{self.year}-{self.index:02d}"
        return str(self.year)

    @property
    def first_day(self) -> date:
        if self.kind == "quarter":
            return date(self.year, 3 * (self.index - 1) + 1, 1)
        if self.kind == "month":
            return date(self.year, self.index, 1)
        return date(self.year, 1, 1)

    @property
    def months(self) -> int:
        return {"year": 12, "quarter": 3, "month": 1}[self.kind]

    def shifted(self, steps: int) -> Period:
        """The period `steps` periods of the same kind later (negative: earlier), across year ends."""
        per_year = 12 // self.months
        n = self.year * per_year + (self.index - 1) + steps
        return Period(n // per_year, self.kind, n % per_year + 1)

    def previous(self) -> Period:
        return self.shifted(-1)

    def year_earlier(self) -> Period:
        return Period(self.year - 1, self.kind, self.index)

    @property
    def start(self) -> datetime:
        return local_midnight(self.first_day)

    @property
    def end(self) -> datetime:
        return self.shifted(1).start

    def month_periods(self) -> list[Period]:
        """The months this period consists of, in order."""
        first = self.first_day.month
        return [Period(self.year, "month", m) for m in range(first, first + self.months)]

    def trailing_months(self, count: int = 12) -> list[Period]:
        """`count` months ending with this period's last month: the window of the trend chart."""
        last = self.month_periods()[-1]
        return [last.shifted(-i) for i in reversed(range(count))]

    def label_da(self) -> str:
        """'1. kvartal 2026', 'marts 2026', '2026'."""
        if self.kind == "quarter":
            return f"{self.index}. kvartal {self.year}"
        if self.kind == "month":
            return f"{MONTHS_DA[self.index - 1]} {self.year}"
        return str(self.year)

    def short_label_da(self) -> str:
        """'K1 2026', 'mar 26', '2026' for chart axes."""
        if self.kind == "quarter":
            return f"K{self.index} {self.year}"
        if self.kind == "month":
            return f"{MONTHS_DA[self.index - 1][:3]} {self.year % 100:02d}"
        return str(self.year)

    def contains(self, instant: datetime) -> bool:
        return self.start <= instant < self.end
