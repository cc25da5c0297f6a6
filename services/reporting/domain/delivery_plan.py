"""The delivery plan (udsendelsesplan): which council gets which report by e-mail, and when. Pure: time is an argument.

An entry names a council (the kredsråd or a kommune's lokalråd), its recipients, a report (scope,
period kind, focus area) and a schedule: the Nth working day after each period ends at a local time
(`AfterPeriod`), or one period at one instant (`Once`: an extra meeting, the demo). Each
(entry, period) is delivered once; each of its recipients gets one e-mail with a Message-ID made
from the entry, the period and the address, so a repeat is recognisable as the same message.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Final, Literal

from services.reporting.domain.periods import LOCAL, Kind, Period
from services.reporting.domain.report import Scope
from services.reporting.domain.working_days import WorkingDays
from shared.backoff import doubling

ENTRY_ID: Final = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
# An address as the plan may give it: one mailbox, no display name, nothing that could end a header.
ADDRESS: Final = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
# A recurring entry whose service was down over several due times sends the missed periods late;
# never more than this many at once (a plan kept for years on a stopped service would flood councils).
MAX_CATCH_UP: Final = 4


@dataclass(frozen=True, slots=True)
class AfterPeriod:
    """Every period: on the `working_day`th working day after it ends, at `at` (Europe/Copenhagen)."""

    working_day: int
    at: time


@dataclass(frozen=True, slots=True)
class Once:
    """One period, at one instant (aware)."""

    period: Period
    at: datetime


Schedule = AfterPeriod | Once


@dataclass(frozen=True, slots=True)
class ReportChoice:
    """Which council report: the scope (kreds or a kommune), the kind of period, optionally one focus area."""

    scope: Scope
    kind: Kind
    focus_area: str | None = None


@dataclass(frozen=True, slots=True)
class PlanEntry:
    id: str
    council: Scope  # who reads it: the kredsråd (kreds) or the lokalråd of a kommune
    recipients: tuple[str, ...]
    report: ReportChoice
    schedule: Schedule

    @property
    def kind(self) -> Kind:
        return self.report.kind

    def due_at(self, period: Period, calendar: WorkingDays) -> datetime:
        """When the report of `period` is due (UTC)."""
        if isinstance(self.schedule, Once):
            return self.schedule.at.astimezone(UTC)
        last_day = period.shifted(1).first_day - timedelta(days=1)
        day = calendar.nth_after(last_day, self.schedule.working_day)
        return datetime.combine(day, self.schedule.at, tzinfo=LOCAL).astimezone(UTC)

    def periods_to_plan(
        self, now: datetime, calendar: WorkingDays, latest_planned: Period | None
    ) -> list[tuple[Period, datetime]]:
        """The periods to put on the timer now, with their due times.

        A `Once` entry: its period. A recurring one: the next period whose due time is still ahead,
        and, after an outage, the periods between the latest one planned before (of this kind) and
        that one (at most MAX_CATCH_UP): they are due already and go out late, rather than never.
        A period whose due time passed before the entry was first planned (a new entry, a first
        deployment) is not sent: a council does not get an old report unasked.
        """
        if isinstance(self.schedule, Once):
            return [(self.schedule.period, self.due_at(self.schedule.period, calendar))]
        upcoming = Period.containing(now, self.kind)
        for _ in range(24):  # a due time can lie more than one period after the period's end
            earlier = upcoming.previous()
            if self.due_at(earlier, calendar) <= now:
                break
            upcoming = earlier
        planned = [upcoming]
        if latest_planned is not None and latest_planned.kind == self.kind and latest_planned < upcoming:
            missed = latest_planned.shifted(1)
            between: list[Period] = []
            while missed < upcoming:
                between.append(missed)
                missed = missed.shifted(1)
            planned = between[-MAX_CATCH_UP:] + planned
        return [(p, self.due_at(p, calendar)) for p in planned]

    def message_id(self, period: Period, recipient: str, domain: str) -> str:
        """The Message-ID of this entry's e-mail of `period` to `recipient`: the same on every try."""
        # Short enough to stay on one header line for the plan's usual ids (a folded one is as valid).
        digest = hashlib.sha256(f"{self.id}\n{period}\n{recipient.casefold()}".encode()).hexdigest()[:16]
        return f"<{self.id}.{period}.{digest}@{domain}>"

    def filename(self, period: Period) -> str:
        """The PDF's name, as the API names it: raadsrapport-0265-2026-Q3.pdf (with the focus area, if one)."""
        focus = f"-{self.report.focus_area}" if self.report.focus_area else ""
        return f"raadsrapport-{self.report.scope}-{period}{focus}.pdf"


@dataclass(frozen=True, slots=True)
class DeliveryPlan:
    version: int
    calendar: WorkingDays
    entries: tuple[PlanEntry, ...]

    def entry(self, entry_id: str) -> PlanEntry | None:
        return next((e for e in self.entries if e.id == entry_id), None)


Decision = Literal["retry", "failed"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """After a failed try: again after a capped exponential step with equal jitter, until `max_attempts`.

    A permanent refusal (the server's 5xx: no such mailbox, policy) fails at once: trying again
    gives the same answer, and the operators should hear of it now.
    """

    base: float = 60.0
    cap: float = 3600.0
    max_attempts: int = 8

    def after(self, attempts: int, permanent: bool, random: Callable[[], float]) -> tuple[Decision, float]:
        """What to do after try number `attempts` failed: ("retry", seconds) or ("failed", 0)."""
        if permanent or attempts >= self.max_attempts:
            return "failed", 0.0
        step = doubling(self.base, self.cap, attempts)
        return "retry", step / 2 + random() * step / 2
