"""The roster file (vagtplan): read and validate it (pydantic models), build the domain Roster or list every problem."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Annotated, Any, ClassVar, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrulestr
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from services.notify.domain.roster import (
    VAGTCENTRAL_ID,
    Channel,
    ChannelKind,
    Override,
    Recipient,
    RecipientKind,
    Roster,
    RotaShift,
)
from shared.datafile import (
    ENTRY,
    LEFT_OUT,
    Entry,
    Loc,
    Problems,
    Refused,
    Version,
    collect,
    context_of,
    non_empty_list,
    non_empty_text,
    read_yaml,
)
from shared.reference import kommuner as district_kommuner

DEFAULT_ROSTER_FILE: Final = Path(__file__).resolve().parent.parent / "data" / "roster.yaml"

_TOP_FIELDS: Final = ("version", "timezone", "vagtcentral", "vagtchefer", "rota", "overrides", "kommuner")
_ID = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,63}$")
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
_URL = re.compile(r"^https?://[^\s]+$")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_DEFAULT_TZ: Final = "Europe/Copenhagen"
# Fields whose name in the file is a Python keyword or says less: pydantic's places name the field.
_WRITTEN_AS: Final = {"first_day": "from", "starts": "from", "ends": "to"}


def load_roster(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Roster:
    """The roster; webhook `secret_env` names are looked up in `env` (the process environment by default)."""
    source = os.fspath(path)
    return parse_roster(
        read_yaml(source, "roster"),
        source,
        kommuner=district_kommuner(),
        secrets=os.environ if env is None else env,
    )


def parse_roster(document: object, source: str, *, kommuner: Iterable[str], secrets: Mapping[str, str]) -> Roster:
    """Validates a parsed roster document; raises DataFileError naming each bad entry.

    `kommuner` are the district's codes (shared/data/kommuner.yaml); `secrets` resolves
    `secret_env` names of webhook channels (the environment, passed in).
    """
    problems = Problems(source)
    known = set(kommuner)
    # What the entries check against: the time zone, the ids used so far, the valid vagtchefer.
    context: dict[str, Any] = {
        "tz": ZoneInfo(_DEFAULT_TZ),
        "seen_ids": set(),
        "duty": set(),
        "kommuner": known,
        "secrets": secrets,
    }
    try:
        parsed: RosterFile | None = RosterFile.model_validate(document, context=context)
    except ValidationError as exc:
        parsed = None
        collect(exc, problems, place=lambda loc: _place(document, loc), unknown_field=_unknown_field)
    raw_kommuner = document.get("kommuner") if isinstance(document, Mapping) else None
    if isinstance(raw_kommuner, Mapping):
        for code in raw_kommuner:
            if str(code) not in known:
                problems.add(f"kommuner.{code}", f"{code!r} is not a kommunekode of the district (write it as '0265')")
        for code in sorted(known - {str(c) for c in raw_kommuner}):
            problems.add("kommuner", f"kommune {code} has no entry (give it lokalbetjente, or an empty list)")
    problems.raise_if_any()
    assert parsed is not None
    return Roster(
        version=parsed.version,
        tz=context["tz"],
        vagtcentral=parsed.vagtcentral.to_recipient("vagtcentral", None),
        duty_officers={r.id: r.to_recipient("vagtchef", None) for r in parsed.vagtchefer},
        lokalbetjente={
            str(code): tuple(r.to_recipient("lokalbetjent", str(code)) for r in entry.lokalbetjente)
            for code, entry in parsed.kommuner.items()
        },
        rota=tuple(shift.to_shift() for shift in parsed.rota),
        overrides=tuple(override.to_override() for override in parsed.overrides),
    )


# -- the file's words for places and problems ------------------------------------------------------


def _child(node: object, part: str | int) -> object:
    if isinstance(node, Mapping):
        return node.get(part)
    if isinstance(node, list) and isinstance(part, int) and part < len(node):
        return node[part]
    return None


def _is_recipient(loc: Loc) -> bool:
    return (
        loc == ("vagtcentral",)
        or (len(loc) == 2 and loc[0] == "vagtchefer")
        or (len(loc) == 4 and loc[0] == "kommuner" and loc[2] == "lokalbetjente")
    )


def _place(document: object, loc: Loc) -> str | None:
    """`vagtchefer #2 (vc-b).channels #1.to`: entries by their place, a recipient's name and channels by its id too."""
    text, node = "", document
    for depth, part in enumerate(loc):
        text += f" #{part + 1}" if isinstance(part, int) else ("." if text else "") + _WRITTEN_AS.get(part, part)
        node = _child(node, part)
        rid = _child(node, "id")
        if _is_recipient(loc[: depth + 1]) and loc[depth + 1 : depth + 2] in (("name",), ("channels",)):
            text += f" ({rid})" if isinstance(rid, str) else ""
    return text or None


def _unknown_field(loc: Loc) -> str:
    if _is_recipient(loc[:-1]):
        return "unknown field; a recipient has id, name, channels"
    return f"unknown field; a roster has {', '.join(sorted(_TOP_FIELDS))}"


# -- the models ------------------------------------------------------------------------------------


class ChannelEntry(BaseModel):
    """One way to reach a recipient, as written: {type: webhook, url, secret_env|secret}, {type: email, to}
    or {type: console}."""

    kind: ChannelKind
    target: str
    secret: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _channel(cls, item: object, info: ValidationInfo) -> dict[str, Any]:
        if not isinstance(item, Mapping) or item.get("type") not in ("webhook", "email", "console"):
            raise ValueError("must be {type: webhook, url, secret_env|secret}, {type: email, to} or {type: console}")
        kind = item["type"]
        if kind == "webhook":
            url = item.get("url")
            if not isinstance(url, str) or not _URL.match(url):
                raise Refused((("url",), f"{url!r} is not an http(s) URL"))
            secret = item.get("secret")
            env_name = item.get("secret_env")
            if env_name is not None:
                secret = context_of(info)["secrets"].get(str(env_name))
                if not secret:
                    raise Refused((("secret_env",), f"the environment has no {env_name}"))
            if not isinstance(secret, str) or not secret.startswith("whsec_") or len(secret) < 30:
                raise Refused((("secret",), "a webhook needs a signing secret 'whsec_<base64>' (or secret_env)"))
            return {"kind": "webhook", "target": url, "secret": secret}
        if kind == "email":
            to = item.get("to")
            if not isinstance(to, str) or not _EMAIL.match(to):
                raise Refused((("to",), f"{to!r} is not an e-mail address"))
            return {"kind": "email", "target": to}
        return {"kind": "console", "target": "console"}


class RecipientEntry(Entry):
    """Someone an alert can go to, as written: an id unique in the roster, a name, channels tried in order."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    id: str = LEFT_OUT
    name: Annotated[str, non_empty_text("must be a non-empty name")] = LEFT_OUT
    channels: Annotated[
        list[ChannelEntry], non_empty_list("must be a non-empty list, tried in order (e.g. webhook, email, console)")
    ] = LEFT_OUT

    SHAPE: ClassVar[str] = "must be a mapping with id, name and channels"

    @field_validator("id", mode="plain")
    @classmethod
    def _id(cls, value: object, info: ValidationInfo) -> str:
        seen: set[str] = context_of(info)["seen_ids"]
        if not isinstance(value, str) or not _ID.match(value):
            raise ValueError(f"{value!r} must be lower-case letters, digits and . _ : -")
        if value in seen:
            raise ValueError(f"{value!r} is used twice in the roster")
        seen.add(value)
        return value

    def to_recipient(self, kind: RecipientKind, kommune: str | None) -> Recipient:
        channels = tuple(Channel(c.kind, c.target, c.secret) for c in self.channels)
        return Recipient(id=self.id, name=self.name, kind=kind, channels=channels, kommune=kommune)


def _vagtchef(value: object, info: ValidationInfo) -> None:
    duty: set[str] = context_of(info)["duty"]
    if not isinstance(value, str) or value not in duty:
        raise ValueError(f"{value!r} is not one of the vagtchefer")


def _clock(value: object) -> time:
    match = _CLOCK.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"{value!r} must be a local time HH:MM")
    return time(int(match.group(1)), int(match.group(2)))


class ShiftEntry(Entry):
    """A recurring vagtchef shift as written: {officer, rrule, from, start, end} in local time."""

    officer: str = LEFT_OUT
    start: time = LEFT_OUT
    end: time = LEFT_OUT
    first_day: date = Field(LEFT_OUT, alias="from")
    rrule: str = LEFT_OUT

    model_config = ConfigDict(validate_default=True)

    SHAPE: ClassVar[str] = "must be {officer, rrule, from, start, end}"

    @field_validator("officer", mode="plain")
    @classmethod
    def _officer(cls, value: object, info: ValidationInfo) -> str:
        _vagtchef(value, info)
        return str(value)

    @field_validator("start", "end", mode="plain")
    @classmethod
    def _clock(cls, value: object) -> time:
        return _clock(value)

    @field_validator("first_day", mode="plain")
    @classmethod
    def _first_day(cls, value: object) -> date:
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            raise ValueError(f"{value!r} must be the first day, YYYY-MM-DD") from None

    @field_validator("rrule", mode="plain")
    @classmethod
    def _rrule(cls, value: object, info: ValidationInfo) -> str:
        if not isinstance(value, str) or not value.upper().startswith("FREQ="):
            raise ValueError(f"{value!r} must be an RFC 5545 RRULE such as FREQ=WEEKLY;BYDAY=MO,TU")
        first, start = info.data.get("first_day"), info.data.get("start")
        if first is not None and start is not None:
            try:
                rrulestr(value, dtstart=datetime.combine(first, start))
            except (ValueError, TypeError) as exc:
                raise ValueError(f"{value!r}: {exc}") from None
        return value

    def to_shift(self) -> RotaShift:
        return RotaShift(
            officer=self.officer, rule=self.rrule, first_day=self.first_day, start=self.start, end=self.end
        )


class OverrideEntry(Entry):
    """A dated change to the rota as written: {from, to, officer and/or absent, reason}, local times."""

    model_config = ConfigDict(validate_default=True)

    starts: datetime = Field(LEFT_OUT, alias="from")
    ends: datetime = Field(LEFT_OUT, alias="to")
    officer: str | None = None
    absent: str | None = None
    reason: str = ""

    SHAPE: ClassVar[str] = "must be {from, to, officer and/or absent, reason}"

    @field_validator("starts", "ends", mode="plain")
    @classmethod
    def _time(cls, value: object, info: ValidationInfo) -> datetime:
        try:
            local = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        except ValueError:
            raise ValueError(f"{value!r} must be a local time YYYY-MM-DDTHH:MM") from None
        # fold=0: an ambiguous autumn time means its first occurrence (as the rota's shifts).
        at = local.astimezone(UTC) if local.tzinfo else local.replace(tzinfo=context_of(info)["tz"]).astimezone(UTC)
        starts = info.data.get("starts")
        if info.field_name == "ends" and starts is not None and at <= starts:
            raise ValueError("must be after from")
        return at

    @field_validator("officer", "absent", mode="plain")
    @classmethod
    def _vagtchef(cls, value: object, info: ValidationInfo) -> str | None:
        if value is not None:
            _vagtchef(value, info)
        elif info.field_name == "absent" and "officer" in info.data and info.data["officer"] is None:
            raise Refused(((ENTRY,), "names nobody: give officer (on duty instead) and/or absent (off duty)"))
        return value if isinstance(value, str) else None

    @field_validator("reason", mode="plain")
    @classmethod
    def _reason(cls, value: object) -> str:
        return str(value)

    def to_override(self) -> Override:
        return Override(
            starts=self.starts, ends=self.ends, officer=self.officer, absent=self.absent, reason=self.reason
        )


class KommuneEntry(BaseModel):
    """A kommune's lokalbetjente (local officers); an empty list sends its alerts to the vagtcentral."""

    lokalbetjente: list[RecipientEntry]

    @model_validator(mode="before")
    @classmethod
    def _mapping(cls, entry: object) -> object:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("lokalbetjente"), list):
            raise ValueError("must have lokalbetjente: a list of officers")
        return entry


class RosterFile(Entry):
    """The whole roster, validated in the order of its sections (a rota names the vagtchefer before it)."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    version: Version = LEFT_OUT
    timezone: str = _DEFAULT_TZ
    vagtcentral: RecipientEntry = LEFT_OUT
    vagtchefer: list[RecipientEntry] = LEFT_OUT
    rota: Annotated[list[ShiftEntry], non_empty_list("must be a non-empty list of shifts")] = LEFT_OUT
    overrides: list[OverrideEntry] = Field(default_factory=list)
    kommuner: dict[Any, KommuneEntry] = LEFT_OUT

    SHAPE: ClassVar[str] = "must be a mapping with version, timezone, vagtcentral, vagtchefer, rota, kommuner"

    @field_validator("timezone", mode="plain")
    @classmethod
    def _timezone(cls, value: object, info: ValidationInfo) -> str:
        try:
            context_of(info)["tz"] = ZoneInfo(str(value))
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a known time zone") from None
        return str(value)

    @field_validator("vagtcentral", mode="after")
    @classmethod
    def _vagtcentral(cls, value: RecipientEntry) -> RecipientEntry:
        if value.id != VAGTCENTRAL_ID:
            raise Refused((("id",), f"must be {VAGTCENTRAL_ID!r} (alerts and chains name it so)"))
        return value

    @field_validator("vagtchefer", mode="wrap")
    @classmethod
    def _vagtchefer(cls, value: object, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
        if not isinstance(value, list) or not value:
            raise ValueError("must be a non-empty list of duty officers")
        # The rota and the overrides may name only a vagtchef whose entry is valid.
        duty: set[str] = context_of(info)["duty"]
        try:
            officers = handler(value)
        except ValidationError as exc:
            bad = {found["loc"][0] for found in exc.errors()}
            duty.update(str(raw["id"]) for i, raw in enumerate(value) if i not in bad)
            raise
        duty.update(officer.id for officer in officers)
        return officers

    @field_validator("overrides", mode="before")
    @classmethod
    def _overrides(cls, value: object) -> object:
        value = value or []
        if not isinstance(value, list):
            raise ValueError("must be a list")
        return value

    @field_validator("kommuner", mode="wrap")
    @classmethod
    def _kommuner(cls, value: object, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
        if not isinstance(value, Mapping):
            raise ValueError("must map each kommunekode to {lokalbetjente: [...]}")
        # A code that is not the district's is reported by parse_roster; its officers are not read.
        return handler({code: entry for code, entry in value.items() if str(code) in context_of(info)["kommuner"]})
