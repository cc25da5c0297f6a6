"""The officer roster (vagtplan): lokalbetjente per kommune, the vagtchef rota, overrides, and who is on duty.

Shifts are written in Danish local time (Europe/Copenhagen) and recur by an RFC 5545 RRULE that
python-dateutil expands; each occurrence's local start and end are turned into UTC only then, so
a shift that spans a DST change keeps its wall-clock ends: 23:00-07:00 is 7 hours in the spring
night and 9 in the autumn one, and the next shift starts exactly where it ends (neither a gap
nor a double). A time with nobody on the rota is a gap: reported at start-up, and at alert time
the vagtcentral's shared channel (fælleskanal) takes the alert, so nothing is dropped.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrulestr

from services.notify.domain.problems import Problems

ChannelKind = Literal["webhook", "email", "console"]
RecipientKind = Literal["lokalbetjent", "vagtchef", "vagtcentral"]
Group = Literal["lokalbetjente", "vagtchef", "vagtcentral"]
GROUPS: tuple[str, ...] = ("lokalbetjente", "vagtchef", "vagtcentral")

VAGTCENTRAL_ID = "vagtcentral"
_ID = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,63}$")
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
# Shifts are at most a day and a bit long; looking this far back finds every one still running.
_LOOKBACK = timedelta(days=2)


@dataclass(frozen=True, slots=True)
class Channel:
    """One way to reach a recipient: a signed webhook, an e-mail address, or the console page."""

    kind: ChannelKind
    target: str  # URL, e-mail address, or "console"
    secret: str | None = field(default=None, repr=False)  # webhook signing secret (whsec_...)

    @property
    def label(self) -> str:
        return self.kind


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


def parse_roster(document: object, source: str, *, kommuner: Iterable[str], secrets: Mapping[str, str]) -> Roster:
    """Validates a parsed roster document; raises DataFileError naming each bad entry.

    `kommuner` are the district's codes (shared/data/kommuner.yaml); `secrets` resolves
    `secret_env` names of webhook channels (the environment, passed in).
    """
    problems = Problems(source)
    known_kommuner = set(kommuner)
    if not isinstance(document, Mapping):
        problems.add(None, "must be a mapping with version, timezone, vagtcentral, vagtchefer, rota, kommuner")
        problems.raise_if_any()
        raise AssertionError  # unreachable
    allowed = {"version", "timezone", "vagtcentral", "vagtchefer", "rota", "overrides", "kommuner"}
    for name in document:
        if name not in allowed:
            problems.add(str(name), f"unknown field; a roster has {', '.join(sorted(allowed))}")
    version = document.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        problems.add("version", f"must be a whole number from 1 up, not {version!r}")
    tz_name = document.get("timezone", "Europe/Copenhagen")
    tz = ZoneInfo("Europe/Copenhagen")
    try:
        tz = ZoneInfo(str(tz_name))
    except (ZoneInfoNotFoundError, ValueError):
        problems.add("timezone", f"{tz_name!r} is not a known time zone")

    seen_ids: set[str] = set()
    vagtcentral = _parse_recipient(
        document.get("vagtcentral"), "vagtcentral", "vagtcentral", None, problems, secrets, seen_ids
    )
    if vagtcentral is not None and vagtcentral.id != VAGTCENTRAL_ID:
        problems.add("vagtcentral.id", f"must be {VAGTCENTRAL_ID!r} (alerts and chains name it so)")

    duty: dict[str, Recipient] = {}
    raw_duty = document.get("vagtchefer")
    if not isinstance(raw_duty, list) or not raw_duty:
        problems.add("vagtchefer", "must be a non-empty list of duty officers")
    else:
        for i, raw in enumerate(raw_duty, start=1):
            officer = _parse_recipient(raw, f"vagtchefer #{i}", "vagtchef", None, problems, secrets, seen_ids)
            if officer is not None:
                duty[officer.id] = officer

    rota: list[RotaShift] = []
    raw_rota = document.get("rota")
    if not isinstance(raw_rota, list) or not raw_rota:
        problems.add("rota", "must be a non-empty list of shifts")
    else:
        for i, raw in enumerate(raw_rota, start=1):
            shift = _parse_shift(raw, f"rota #{i}", duty, problems)
            if shift is not None:
                rota.append(shift)

    overrides: list[Override] = []
    raw_overrides = document.get("overrides") or []
    if not isinstance(raw_overrides, list):
        problems.add("overrides", "must be a list")
    else:
        for i, raw in enumerate(raw_overrides, start=1):
            override = _parse_override(raw, f"overrides #{i}", duty, tz, problems)
            if override is not None:
                overrides.append(override)

    lokal: dict[str, tuple[Recipient, ...]] = {}
    raw_kommuner = document.get("kommuner")
    if not isinstance(raw_kommuner, Mapping):
        problems.add("kommuner", "must map each kommunekode to {lokalbetjente: [...]}")
    else:
        for code, entry in raw_kommuner.items():
            where = f"kommuner.{code}"
            if str(code) not in known_kommuner:
                problems.add(where, f"{code!r} is not a kommunekode of the district (write it as '0265')")
                continue
            officers = entry.get("lokalbetjente") if isinstance(entry, Mapping) else None
            if not isinstance(officers, list):
                problems.add(where, "must have lokalbetjente: a list of officers")
                continue
            parsed = [
                _parse_recipient(
                    raw, f"{where}.lokalbetjente #{i}", "lokalbetjent", str(code), problems, secrets, seen_ids
                )
                for i, raw in enumerate(officers, start=1)
            ]
            lokal[str(code)] = tuple(p for p in parsed if p is not None)
        for code in sorted(known_kommuner - {str(c) for c in raw_kommuner}):
            problems.add("kommuner", f"kommune {code} has no entry (give it lokalbetjente, or an empty list)")

    problems.raise_if_any()
    assert vagtcentral is not None and isinstance(version, int)
    return Roster(
        version=version,
        tz=tz,
        vagtcentral=vagtcentral,
        duty_officers=duty,
        lokalbetjente=lokal,
        rota=tuple(rota),
        overrides=tuple(overrides),
    )


def _parse_recipient(
    raw: object,
    where: str,
    kind: RecipientKind,
    kommune: str | None,
    problems: Problems,
    secrets: Mapping[str, str],
    seen_ids: set[str],
) -> Recipient | None:
    if not isinstance(raw, Mapping):
        problems.add(where, "must be a mapping with id, name and channels")
        return None
    before = len(problems.found)
    for name in raw:
        if name not in ("id", "name", "channels"):
            problems.add(f"{where}.{name}", "unknown field; a recipient has id, name, channels")
    rid = raw.get("id")
    if not isinstance(rid, str) or not _ID.match(rid):
        problems.add(f"{where}.id", f"{rid!r} must be lower-case letters, digits and . _ : -")
    elif rid in seen_ids:
        problems.add(f"{where}.id", f"{rid!r} is used twice in the roster")
    else:
        seen_ids.add(rid)
    label = f"{where} ({rid})" if isinstance(rid, str) else where
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.add(f"{label}.name", "must be a non-empty name")
    channels = _parse_channels(raw.get("channels"), label, problems, secrets)
    if len(problems.found) > before:
        return None
    assert isinstance(rid, str) and isinstance(name, str)
    return Recipient(id=rid, name=name.strip(), kind=kind, channels=channels, kommune=kommune)


def _parse_channels(raw: object, where: str, problems: Problems, secrets: Mapping[str, str]) -> tuple[Channel, ...]:
    if not isinstance(raw, list) or not raw:
        problems.add(f"{where}.channels", "must be a non-empty list, tried in order (e.g. webhook, email, console)")
        return ()
    found: list[Channel] = []
    for i, item in enumerate(raw, start=1):
        at = f"{where}.channels #{i}"
        if not isinstance(item, Mapping) or item.get("type") not in ("webhook", "email", "console"):
            problems.add(at, "must be {type: webhook, url, secret_env|secret}, {type: email, to} or {type: console}")
            continue
        kind = item["type"]
        if kind == "webhook":
            url = item.get("url")
            if not isinstance(url, str) or not re.match(r"^https?://[^\s]+$", url):
                problems.add(f"{at}.url", f"{url!r} is not an http(s) URL")
                continue
            secret = item.get("secret")
            env_name = item.get("secret_env")
            if env_name is not None:
                secret = secrets.get(str(env_name))
                if not secret:
                    problems.add(f"{at}.secret_env", f"the environment has no {env_name}")
                    continue
            if not isinstance(secret, str) or not secret.startswith("whsec_") or len(secret) < 30:
                problems.add(f"{at}.secret", "a webhook needs a signing secret 'whsec_<base64>' (or secret_env)")
                continue
            found.append(Channel("webhook", url, secret))
        elif kind == "email":
            to = item.get("to")
            if not isinstance(to, str) or not _EMAIL.match(to):
                problems.add(f"{at}.to", f"{to!r} is not an e-mail address")
                continue
            found.append(Channel("email", to))
        else:
            found.append(Channel("console", "console"))
    return tuple(found)


def _parse_clock(value: object, where: str, problems: Problems) -> time | None:
    match = _CLOCK.match(value) if isinstance(value, str) else None
    if match is None:
        problems.add(where, f"{value!r} must be a local time HH:MM")
        return None
    return time(int(match.group(1)), int(match.group(2)))


def _parse_shift(raw: object, where: str, duty: Mapping[str, Recipient], problems: Problems) -> RotaShift | None:
    if not isinstance(raw, Mapping):
        problems.add(where, "must be {officer, rrule, from, start, end}")
        return None
    before = len(problems.found)
    officer = raw.get("officer")
    if officer not in duty:
        problems.add(f"{where}.officer", f"{officer!r} is not one of the vagtchefer")
    start = _parse_clock(raw.get("start"), f"{where}.start", problems)
    end = _parse_clock(raw.get("end"), f"{where}.end", problems)
    first = raw.get("from")
    if not isinstance(first, date) or isinstance(first, datetime):
        try:
            first = date.fromisoformat(str(first))
        except ValueError:
            problems.add(f"{where}.from", f"{first!r} must be the first day, YYYY-MM-DD")
            first = None
    rule = raw.get("rrule")
    if not isinstance(rule, str) or not rule.upper().startswith("FREQ="):
        problems.add(f"{where}.rrule", f"{rule!r} must be an RFC 5545 RRULE such as FREQ=WEEKLY;BYDAY=MO,TU")
    elif first is not None and start is not None:
        try:
            rrulestr(rule, dtstart=datetime.combine(first, start))
        except (ValueError, TypeError) as exc:
            problems.add(f"{where}.rrule", f"{rule!r}: {exc}")
    if len(problems.found) > before:
        return None
    assert isinstance(officer, str) and isinstance(rule, str) and isinstance(first, date)
    assert start is not None and end is not None
    return RotaShift(officer=officer, rule=rule, first_day=first, start=start, end=end)


def _parse_override(
    raw: object, where: str, duty: Mapping[str, Recipient], tz: ZoneInfo, problems: Problems
) -> Override | None:
    if not isinstance(raw, Mapping):
        problems.add(where, "must be {from, to, officer and/or absent, reason}")
        return None
    before = len(problems.found)
    times: list[datetime] = []
    for name in ("from", "to"):
        value = raw.get(name)
        try:
            local = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        except ValueError:
            problems.add(f"{where}.{name}", f"{value!r} must be a local time YYYY-MM-DDTHH:MM")
            continue
        times.append(local.astimezone(UTC) if local.tzinfo else _to_utc(local, tz))
    officer, absent = raw.get("officer"), raw.get("absent")
    if officer is None and absent is None:
        problems.add(where, "names nobody: give officer (on duty instead) and/or absent (off duty)")
    for name, value in (("officer", officer), ("absent", absent)):
        if value is not None and value not in duty:
            problems.add(f"{where}.{name}", f"{value!r} is not one of the vagtchefer")
    if len(times) == 2 and times[1] <= times[0]:
        problems.add(f"{where}.to", "must be after from")
    if len(problems.found) > before:
        return None
    return Override(
        starts=times[0],
        ends=times[1],
        officer=officer if isinstance(officer, str) else None,
        absent=absent if isinstance(absent, str) else None,
        reason=str(raw.get("reason", "")),
    )


def describe_gaps(gaps: Sequence[tuple[datetime, datetime]], tz: ZoneInfo) -> list[str]:
    """Gaps as Danish local times for a start-up warning."""
    fmt = "%Y-%m-%d %H:%M"
    return [f"{a.astimezone(tz).strftime(fmt)} - {b.astimezone(tz).strftime(fmt)}" for a, b in gaps]


def as_dict(recipient: Recipient) -> dict[str, Any]:
    return {"id": recipient.id, "name": recipient.name, "kind": recipient.kind}
