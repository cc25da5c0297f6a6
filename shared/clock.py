"""Time as an injected dependency: domain code asks a Clock, never `datetime.now()`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class CorrectedClock:
    """The host's clock corrected by the offset last measured against Postgres (shared/runtime.py).

    Every instance of every service then agrees on "now" with the database and with each other,
    however far its own host's clock has drifted: a scheduler host running ahead does not breach
    early, and an intake host running behind does not stamp a report as received late.
    """

    def __init__(self, base: Clock | None = None) -> None:
        self.base = base or SystemClock()
        self.offset = timedelta(0)  # Postgres minus host; 0 until first measured

    def now(self) -> datetime:
        return self.base.now() + self.offset


class ManualClock:
    """A clock tests move by hand, so time-dependent rules run in microseconds."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
        if self._now.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start")

    def now(self) -> datetime:
        return self._now

    def set(self, instant: datetime) -> None:
        self._now = instant
