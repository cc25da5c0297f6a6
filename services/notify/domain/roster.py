"""The officer roster (vagtplan): lokalbetjente per kommune, the vagtchef rota, overrides, and who is on duty.

Shifts are written in Danish local time (Europe/Copenhagen) and recur by an RFC 5545 RRULE that
python-dateutil expands; each occurrence's local start and end are turned into UTC only then, so
a shift that spans a DST change keeps its wall-clock ends: 23:00-07:00 is 7 hours in the spring
night and 9 in the autumn one, and the next shift starts exactly where it ends (neither a gap
nor a double). A time with nobody on the rota is a gap: reported at start-up, and at alert time
the vagtcentral's shared channel (fælleskanal) takes the alert, so nothing is dropped.

Reading and validating the roster file is an adapter's job (services/notify/adapters/roster_file.py).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Literal
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr

ChannelKind = Literal["webhook", "email", "console"]
RecipientKind = Literal["lokalbetjent", "vagtchef", "vagtcentral"]
GROUPS: tuple[str, ...] = ("lokalbetjente", "vagtchef", "vagtcentral")

VAGTCENTRAL_ID = "vagtcentral"
# Shifts are at most a day and a bit long; looking this far back finds every one still running.
_LOOKBACK = timedelta(days=2)


@dataclass(frozen=True, slots=True)
class Channel:
    """One way to reach a recipient: a signed webhook, an e-mail address, or the console page."""

    kind: ChannelKind
    target: str  # URL, e-mail address, or "console"
    secret: str | None = field(default=None, repr=False)  # webhook signing secret (whsec_...)


@dataclass(frozen=True, slots=True)
class Recipient:
    """Someone an alert can go to: a lokalbetjent (local officer), a vagtchef (duty officer), or the vagtcentral."""

    id: str
    name: str
    kind: RecipientKind
    channels: tuple[Channel, ...]
    kommune: str | None = None


@dataclass(frozen=True, slots=True)
class RotaShift:
    """A recurring vagtchef shift: RRULE from a first day, local start and end times (end <= start: next day)."""

    officer: str
    rule: str
    first_day: date
    start: time
    end: time

    def occurrences(self, tz: ZoneInfo, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """UTC intervals of the shifts that overlap [start, end)."""
        recurrence = rrulestr(self.rule, dtstart=datetime.combine(self.first_day, self.start))
        local_from = start.astimezone(tz).replace(tzinfo=None) - _LOOKBACK
        local_to = end.astimezone(tz).replace(tzinfo=None)
        found = []
        for occurrence in recurrence.between(local_from, local_to, inc=True):
            shift_start = _to_utc(occurrence, tz)
            end_day = occurrence.date() + (timedelta(days=1) if self.end <= self.start else timedelta(0))
            shift_end = _to_utc(datetime.combine(end_day, self.end), tz)
            if shift_end > start and shift_start < end:
                found.append((shift_start, shift_end))
        return found


@dataclass(frozen=True, slots=True)
class Override:
    """A dated change to the rota (sygdom, bytte): `officer` is on duty instead, `absent` is off duty."""

    starts: datetime  # UTC
    ends: datetime
    officer: str | None
    absent: str | None
    reason: str = ""

    def covers(self, at: datetime) -> bool:
        return self.starts <= at < self.ends


@functools.lru_cache(maxsize=256)
def _shifts_of_day(shift: RotaShift, tz: ZoneInfo, day: date) -> tuple[tuple[datetime, datetime], ...]:
    """The shift's occurrences that overlap one UTC day, worked out once per day.

    Every alert asks who is on duty, and expanding the RRULE walks every occurrence since the
    shift's first day (hundreds after a year): in a burst of alerts that was a tenth of notify's
    CPU. Every shift that covers a moment of the day overlaps the day, so the answer is the same;
    the arguments are frozen values, so a roster that changes is a new key, never a stale answer.
    """
    start = datetime.combine(day, time(), UTC)
    return tuple(shift.occurrences(tz, start, start + timedelta(days=1)))


def _to_utc(local: datetime, tz: ZoneInfo) -> datetime:
    # fold=0: an ambiguous autumn time means its first occurrence; a spring time that does not
    # exist is read with the offset before the change (02:30 becomes 03:30 summer time).
    return local.replace(tzinfo=tz).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Roster:
    version: int
    tz: ZoneInfo
    vagtcentral: Recipient
    duty_officers: Mapping[str, Recipient]
    lokalbetjente: Mapping[str, tuple[Recipient, ...]]  # by kommunekode
    rota: tuple[RotaShift, ...]
    overrides: tuple[Override, ...] = ()

    def on_duty(self, at: datetime) -> list[Recipient]:
        """The vagtchefer on duty at `at` (UTC): the rota, less who is absent, plus who stands in."""
        ids: list[str] = []
        day = at.astimezone(UTC).date()
        for shift in self.rota:
            if any(s <= at < e for s, e in _shifts_of_day(shift, self.tz, day)):
                ids.append(shift.officer)
        covering = [o for o in self.overrides if o.covers(at)]
        absent = {o.absent for o in covering if o.absent}
        ids = [i for i in ids if i not in absent]
        ids.extend(o.officer for o in covering if o.officer and o.officer not in ids)
        return [self.duty_officers[i] for i in dict.fromkeys(ids)]

    def recipients(self, group: str, kommune: str, at: datetime) -> list[Recipient]:
        """Who `group` means for a case in `kommune` at `at`; never empty (the vagtcentral stands in)."""
        if group == "vagtcentral":
            return [self.vagtcentral]
        found = self.on_duty(at) if group == "vagtchef" else list(self.lokalbetjente.get(kommune, ()))
        return found or [self.vagtcentral]

    def find(self, recipient_id: str) -> Recipient | None:
        if recipient_id == self.vagtcentral.id:
            return self.vagtcentral
        if recipient_id in self.duty_officers:
            return self.duty_officers[recipient_id]
        for officers in self.lokalbetjente.values():
            for officer in officers:
                if officer.id == recipient_id:
                    return officer
        return None

    def gaps(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """Spans in [start, end) with no vagtchef on duty, merged; checked at every point coverage can change."""
        edges = {start, end}
        for shift in self.rota:
            for s, e in shift.occurrences(self.tz, start, end):
                edges.update((s, e))
        for o in self.overrides:
            edges.update((o.starts, o.ends))
        points = sorted(p for p in edges if start <= p <= end)
        found: list[tuple[datetime, datetime]] = []
        for a, b in pairwise(points):
            if b <= a or self.on_duty(a + (b - a) / 2):
                continue
            if found and found[-1][1] == a:
                found[-1] = (found[-1][0], b)
            else:
                found.append((a, b))
        return found


def describe_gaps(gaps: Sequence[tuple[datetime, datetime]], tz: ZoneInfo) -> list[str]:
    """Gaps as Danish local times for a start-up warning."""
    fmt = "%Y-%m-%d %H:%M"
    return [f"{a.astimezone(tz).strftime(fmt)} - {b.astimezone(tz).strftime(fmt)}" for a, b in gaps]
