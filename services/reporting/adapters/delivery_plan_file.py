"""The delivery plan file (COUNCIL_DELIVERY_PLAN_FILE): read and validate it (pydantic), build the domain's plan.

Every problem is named with its place: `delivery 'lokalraad-0265'.recipients #2: ...`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Annotated, Any, ClassVar, Final

from pydantic import ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from services.reporting.domain.delivery_plan import (
    ADDRESS,
    ENTRY_ID,
    AfterPeriod,
    DeliveryPlan,
    Once,
    PlanEntry,
    ReportChoice,
    Schedule,
)
from services.reporting.domain.periods import LOCAL, Kind, Period, PeriodError
from services.reporting.domain.report import Scope, ScopeError
from services.reporting.domain.working_days import CLOSING_DAYS, WorkingDays
from shared.datafile import (
    LEFT_OUT,
    Entry,
    Loc,
    Problems,
    Refused,
    Version,
    collect,
    context_of,
    read_yaml,
)
from shared.reference import focus_areas

DATA_DIR: Final = Path(__file__).resolve().parent.parent / "data"
DEFAULT_PLAN_FILE: Final = DATA_DIR / "council-delivery-plan.yaml"

_KINDS: Final = ("quarter", "month", "year")
_CLOCK: Final = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
# No plan needs more: the 20th working day after a month ends is a month later.
MAX_WORKING_DAY: Final = 20


def load_plan(path: str | os.PathLike[str]) -> DeliveryPlan:
    """Reads and validates a plan file; raises DataFileError listing every problem found."""
    source = os.fspath(path)
    return parse_plan(read_yaml(source, "council delivery plan"), source)


def parse_plan(document: object, source: str) -> DeliveryPlan:
    problems = Problems(source)
    try:
        parsed: PlanFile | None = PlanFile.model_validate(document, context={"ids": set()})
    except ValidationError as exc:
        parsed = None
        collect(exc, problems, place=lambda loc: _place(document, loc), unknown_field=_unknown_field)
    problems.raise_if_any()
    assert parsed is not None
    return DeliveryPlan(
        version=parsed.version,
        calendar=WorkingDays.closing(parsed.closed_also),
        entries=tuple(d.to_entry() for d in parsed.deliveries),
    )


# -- the file's words for places and problems ------------------------------------------------------


def _place(document: object, loc: Loc) -> str | None:
    if len(loc) >= 2 and loc[0] == "deliveries" and isinstance(loc[1], int):
        raw = document.get("deliveries") if isinstance(document, Mapping) else None
        entry = raw[loc[1]] if isinstance(raw, list) and loc[1] < len(raw) else None
        entry_id = entry.get("id") if isinstance(entry, Mapping) else None
        head = f"delivery {entry_id!r}" if isinstance(entry_id, str) else f"delivery #{loc[1] + 1}"
        rest = [f"#{p + 1}" if isinstance(p, int) else str(p) for p in loc[2:]]
        return ".".join([head, *rest]).replace(".#", " #")
    return ".".join(str(p) for p in loc) or None


def _unknown_field(loc: Loc) -> str:
    if loc[0] == "deliveries" and len(loc) == 3:
        return f"unknown field; a delivery has {', '.join(DeliveryEntry.model_fields)}"
    if loc[0] == "deliveries" and len(loc) == 4 and loc[2] == "report":
        return "unknown field; a report has scope, period and focus_area"
    if loc[0] == "deliveries" and len(loc) == 4 and loc[2] == "when":
        return "unknown field; when is {working_day, at} or {period, at}"
    return "unknown field; a plan has version, closed_also, deliveries"


def _scope(value: object) -> Scope:
    # An unquoted 0265 is a number to YAML (an octal one, even): refused, so no code is misread.
    if not isinstance(value, str):
        raise ValueError(f"{value!r} must be 'kreds' or a kommunekode in quotes, e.g. '0265'")
    try:
        return Scope.parse(value)
    except ScopeError as exc:
        raise ValueError(f"{value!r}: {exc}") from exc


# -- the models ------------------------------------------------------------------------------------


class ReportEntry(Entry):
    model_config = ConfigDict(extra="forbid", validate_default=True, arbitrary_types_allowed=True)

    scope: Scope = LEFT_OUT
    period: Kind = LEFT_OUT
    focus_area: str | None = None

    SHAPE: ClassVar[str] = "must be {scope, period, focus_area}"

    @field_validator("scope", mode="plain")
    @classmethod
    def _scope(cls, value: object) -> Scope:
        return _scope(value)

    @field_validator("period", mode="plain")
    @classmethod
    def _period(cls, value: object) -> str:
        if value not in _KINDS:
            raise ValueError(f"{value!r} must be one of {', '.join(_KINDS)}")
        return str(value)

    @field_validator("focus_area", mode="plain")
    @classmethod
    def _focus_area(cls, value: object) -> str | None:
        if value is not None and value not in focus_areas():
            raise ValueError(f"{value!r} is not a focus area; known: {', '.join(focus_areas())}")
        return None if value is None else str(value)


class WhenEntry(Entry):
    """`{working_day: 5, at: "08:00"}`: every period; or `{period: 2026-Q3, at: 2026-10-09T08:00}`: once."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    working_day: int | None = None
    period: Period | None = None
    at: time | datetime = LEFT_OUT

    SHAPE: ClassVar[str] = "must be {working_day, at} or {period, at}"

    @field_validator("working_day", mode="plain")
    @classmethod
    def _working_day(cls, value: object) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_WORKING_DAY:
            raise ValueError(f"{value!r} must be a whole number from 1 to {MAX_WORKING_DAY}")
        return value

    @field_validator("period", mode="plain")
    @classmethod
    def _period(cls, value: object) -> Period:
        try:
            return Period.parse(str(value))
        except PeriodError as exc:
            raise ValueError(f"{value!r}: {exc}") from exc

    @field_validator("at", mode="plain")
    @classmethod
    def _at(cls, value: object, info: ValidationInfo) -> time | datetime:
        if isinstance(value, datetime):
            return value if value.tzinfo is not None else value.replace(tzinfo=LOCAL)
        if isinstance(value, str) and _CLOCK.match(value.strip()):
            hours, minutes = value.strip().split(":")
            return time(int(hours), int(minutes))
        if isinstance(value, str):
            try:
                found = datetime.fromisoformat(value.strip())
            except ValueError:
                found = None
            if found is not None:
                return found if found.tzinfo is not None else found.replace(tzinfo=LOCAL)
        raise ValueError(
            f"{value!r} must be a local time in quotes such as '08:00' (with working_day), or a date and time"
            " such as 2026-10-09T08:00 (with period; Europe/Copenhagen unless an offset is given)"
        )

    @model_validator(mode="after")
    def _one_shape(self) -> WhenEntry:
        if self.at is None:
            raise Refused((("at",), "missing"))
        if (self.working_day is None) == (self.period is None):
            raise Refused(((), "give either working_day (every period) or period (once), with at"))
        if self.working_day is not None and not isinstance(self.at, time):
            raise Refused((("at",), "with working_day, at is a local time of day in quotes, e.g. '08:00'"))
        if self.period is not None and not isinstance(self.at, datetime):
            raise Refused((("at",), "with period, at is a date and time, e.g. 2026-10-09T08:00"))
        return self

    def schedule(self) -> Schedule:
        if self.period is not None:
            assert isinstance(self.at, datetime)
            return Once(self.period, self.at.astimezone(UTC))
        assert self.working_day is not None and isinstance(self.at, time)
        return AfterPeriod(self.working_day, self.at)


class DeliveryEntry(Entry):
    """One line of the plan: a council, its recipients, the report and when it goes out."""

    model_config = ConfigDict(extra="forbid", validate_default=True, arbitrary_types_allowed=True)

    id: str = LEFT_OUT
    council: Scope = LEFT_OUT
    recipients: list[str] = LEFT_OUT
    report: ReportEntry = LEFT_OUT
    when: WhenEntry = LEFT_OUT

    SHAPE: ClassVar[str] = "must be {id, council, recipients, report, when}"

    @field_validator("id", mode="plain")
    @classmethod
    def _id(cls, value: object, info: ValidationInfo) -> str:
        if not isinstance(value, str) or not ENTRY_ID.match(value):
            raise ValueError(f"{value!r} must be a name of lower-case letters, digits and '-', e.g. lokalraad-0265")
        seen: set[str] = context_of(info)["ids"]
        if value in seen:
            raise ValueError(f"{value!r} is used twice; each delivery needs its own id")
        seen.add(value)
        return value

    @field_validator("council", mode="plain")
    @classmethod
    def _council(cls, value: object) -> Scope:
        return _scope(value)

    @field_validator("recipients", mode="plain")
    @classmethod
    def _recipients(cls, value: object) -> list[str]:
        if not isinstance(value, list) or not value:
            raise ValueError("must be a non-empty list of e-mail addresses")
        problems: list[tuple[Loc, str]] = []
        seen: set[str] = set()
        for i, address in enumerate(value):
            if not isinstance(address, str) or not ADDRESS.match(address.strip()):
                problems.append(((i,), f"{address!r} is not an e-mail address like navn@kommune.example"))
            elif address.strip().casefold() in seen:
                problems.append(((i,), f"{address!r} is listed twice"))
            else:
                seen.add(address.strip().casefold())
        if problems:
            raise Refused(*problems)
        return [a.strip() for a in value]

    @model_validator(mode="after")
    def _fits(self) -> DeliveryEntry:
        # A lokalråd reads its own kommune's figures and the kreds's, never another kommune's
        # (the council pages give a council user of a kommune the same two).
        if self.council.kommune is not None and self.report.scope.kommune not in (None, self.council.kommune):
            raise Refused(
                (("report", "scope"), f"the lokalråd of {self.council} may get its own kommune's report or kreds's")
            )
        if self.when.period is not None and self.when.period.kind != self.report.period:
            raise Refused((("when", "period"), f"must be a {self.report.period}, as the report's period is"))
        return self

    def to_entry(self) -> PlanEntry:
        return PlanEntry(
            id=self.id,
            council=self.council,
            recipients=tuple(self.recipients),
            report=ReportChoice(self.report.scope, self.report.period, self.report.focus_area),
            schedule=self.when.schedule(),
        )


class PlanFile(Entry):
    model_config = ConfigDict(extra="forbid", validate_default=True)

    version: Version = LEFT_OUT
    # Days the offices close beyond the public holidays; they do not count as working days.
    closed_also: list[str] = Field(default_factory=list)
    # An empty list is a plan that sends nothing (a deployment with no council e-mail yet).
    deliveries: Annotated[list[DeliveryEntry], Field()] = LEFT_OUT

    SHAPE: ClassVar[str] = "must be a mapping with version, closed_also and deliveries"

    @field_validator("closed_also", mode="plain")
    @classmethod
    def _closed_also(cls, value: object) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list) or any(name not in CLOSING_DAYS for name in value):
            raise ValueError(f"{value!r} must be a list of {', '.join(CLOSING_DAYS)}")
        return [str(name) for name in value]

    @field_validator("deliveries", mode="before")
    @classmethod
    def _deliveries(cls, value: object) -> Any:
        if not isinstance(value, list):
            raise ValueError("must be a list of deliveries (an empty list sends nothing)")
        return value
