"""The rules file: read it, validate every field (pydantic models), build the domain's RuleSet or list every problem."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, ClassVar, Final, get_args

from pydantic import (
    AwareDatetime,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from services.deadlines.domain.rules import (
    DEFAULT_CANCEL_ON,
    RESCHEDULING_ACTIONS,
    Rule,
    RuleSet,
    Scalar,
    Trigger,
    WindowSetBy,
)
from shared.datafile import (
    LEFT_OUT,
    DataFileError,
    Entry,
    Loc,
    Problems,
    Refused,
    Version,
    collect,
    non_empty_list,
    non_empty_text,
    read_yaml,
)
from shared.durations import parse_duration
from shared.events import cases
from shared.events.deadlines import Basis
from shared.events.envelope import EventData
from shared.reference import categories, focus_areas

__all__ = [
    "DEFAULT_RULES_FILE",
    "DEMO_RULES_FILE",
    "DataFileError",
    "load_rules",
    "parse_rules",
]

DATA_DIR: Final = Path(__file__).resolve().parent.parent / "data"
DEFAULT_RULES_FILE: Final = DATA_DIR / "politigarantier.yaml"
DEMO_RULES_FILE: Final = DATA_DIR / "demo-minutes.yaml"

_RULE_ID = re.compile(r"[a-z][a-z0-9_]*")
_TOP_FIELDS: Final = ("version", "rules")
# cancel_on left out is not cancel_on: null (which is refused): the default leaves out the stop_on actions.
_ABSENT: Final[Any] = object()


def load_rules(path: str | os.PathLike[str]) -> RuleSet:
    """Reads and validates a rules file; raises DataFileError listing every problem found."""
    source = os.fspath(path)
    return parse_rules(read_yaml(source, "rules"), source)


def parse_rules(document: object, source: str) -> RuleSet:
    """Validates an already parsed rules document; `source` names it in error messages."""
    problems = Problems(source)
    try:
        parsed: RulesFile | None = RulesFile.model_validate(document)
    except ValidationError as exc:
        parsed = None
        collect(exc, problems, place=lambda loc: _place(document, loc), unknown_field=_unknown_field)
    _check_ids(document, problems)
    problems.raise_if_any()
    assert parsed is not None
    return RuleSet(version=parsed.version, rules=tuple(r.to_rule() for r in parsed.rules), source=source)


# -- the file's words for places and problems ------------------------------------------------------


def _raw_ids(document: object) -> list[object]:
    raw_rules = document.get("rules") if isinstance(document, Mapping) else None
    if not isinstance(raw_rules, list):
        return []
    return [raw.get("id") if isinstance(raw, Mapping) else None for raw in raw_rules]


def _where(ids: list[object], index: int) -> str:
    """A rule by its id, with its place in the list when two rules share the id, else by its place."""
    rule_id = ids[index] if index < len(ids) else None
    if not isinstance(rule_id, str) or not rule_id:
        return f"rule #{index + 1}"
    return f"rule {rule_id!r} (#{index + 1})" if ids.count(rule_id) > 1 else f"rule {rule_id!r}"


def _place(document: object, loc: Loc) -> str | None:
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        field_path = ".".join(str(part) for part in loc[2:])
        return ": ".join(p for p in (_where(_raw_ids(document), loc[1]), field_path) if p)
    return ".".join(str(part) for part in loc) or None


def _unknown_field(loc: Loc) -> str:
    return "unknown field" if loc[0] == "rules" else f"unknown field; a rules file has only {', '.join(_TOP_FIELDS)}"


def _check_ids(document: object, problems: Problems) -> None:
    ids = _raw_ids(document)
    for index, rule_id in enumerate(ids):
        if isinstance(rule_id, str) and ids.index(rule_id) < index:
            problems.add(f"{_where(ids, index)}: id", f"already used by rule #{ids.index(rule_id) + 1}")


# -- the models ------------------------------------------------------------------------------------


class RuleEntry(Entry):
    """One rule as written in the file; field order is the order its problems are reported in."""

    model_config = ConfigDict(extra="forbid", validate_default=True, arbitrary_types_allowed=True)

    id: str
    title: Annotated[str, non_empty_text("must be a non-empty Danish title")]
    description: str = ""
    basis: Basis
    window_set_by: WindowSetBy | None = None
    law_says: str | None = None
    when: Trigger
    start: str
    stop_on: tuple[str, ...]
    cancel_on: tuple[str, ...] = Field(_ABSENT)
    reschedule_on: str | None = None
    window: timedelta
    warn_at: tuple[float, ...]

    SHAPE: ClassVar[str] = "must be a mapping of fields"

    @field_validator("id", mode="plain")
    @classmethod
    def _id(cls, value: object) -> str:
        if not isinstance(value, str) or not _RULE_ID.fullmatch(value):
            raise ValueError(f"{value!r} must be lower-case letters, digits and _, starting with a letter")
        return value

    @field_validator("description", mode="plain")
    @classmethod
    def _description(cls, value: object) -> str:
        if not isinstance(value, str):
            raise ValueError("must be text")
        return value.strip()

    @field_validator("basis", mode="plain")
    @classmethod
    def _basis(cls, value: object) -> Basis:
        if value not in get_args(Basis):
            raise ValueError(f"{value!r} must be one of {', '.join(get_args(Basis))}")
        return "guarantee" if value == "guarantee" else "local_target"

    @field_validator("window_set_by", mode="plain")
    @classmethod
    def _window_set_by(cls, value: object, info: ValidationInfo) -> WindowSetBy | None:
        basis = info.data.get("basis")
        if basis == "guarantee" and value not in get_args(WindowSetBy):
            raise ValueError(f"{value!r}: a guarantee must say whose window it is: law or district")
        if basis == "local_target" and value not in (None, "district"):
            raise ValueError(f"{value!r}: a local target's window is always set by the district")
        return "law" if value == "law" else "district"

    @field_validator("law_says", mode="plain")
    @classmethod
    def _law_says(cls, value: object, info: ValidationInfo) -> str | None:
        basis = info.data.get("basis")
        if basis == "guarantee" and (not isinstance(value, str) or not value.strip()):
            raise ValueError("a guarantee must quote what the law says about its window, e.g. 'med det samme'")
        if basis == "local_target" and value is not None:
            raise ValueError("a local target has no law text; put the reasoning in description")
        return value.strip() if isinstance(value, str) else None

    @field_validator("when", mode="plain")
    @classmethod
    def _when(cls, value: object) -> Trigger:
        return _parse_when(value)

    @field_validator("start", mode="plain")
    @classmethod
    def _start(cls, value: object, info: ValidationInfo) -> str:
        if not isinstance(value, str):
            raise ValueError(f"{value!r} must name a time field of the event")
        when = info.data.get("when")
        if when is not None:
            _check_start_field(_case_event_models()[when.event], value)
        return value

    @field_validator("stop_on", mode="plain")
    @classmethod
    def _stop_on(cls, value: object) -> tuple[str, ...]:
        return _action_list(value, allow_empty=False)

    @field_validator("cancel_on", mode="plain")
    @classmethod
    def _cancel_on(cls, value: object, info: ValidationInfo) -> tuple[str, ...]:
        stop_on = info.data.get("stop_on", ())
        if value is _ABSENT:
            return tuple(a for a in DEFAULT_CANCEL_ON if a not in stop_on)
        cancel_on = _action_list(value, allow_empty=True)
        both = sorted(set(stop_on) & set(cancel_on))
        if both:
            raise ValueError(f"{', '.join(both)} also in stop_on; an action either meets or cancels")
        return cancel_on

    @field_validator("reschedule_on", mode="plain")
    @classmethod
    def _reschedule_on(cls, value: object, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or value not in RESCHEDULING_ACTIONS:
            raise ValueError(
                f"{value!r} carries no requested time; only "
                f"{', '.join(sorted(RESCHEDULING_ACTIONS))} can move a deadline"
            )
        if value in info.data.get("stop_on", ()) or value in info.data.get("cancel_on", ()):
            raise ValueError(f"{value!r} is also in stop_on or cancel_on")
        return value

    @field_validator("window", mode="plain")
    @classmethod
    def _window(cls, value: object) -> timedelta:
        if not isinstance(value, str):
            raise ValueError(f"{value!r} is not an ISO 8601 duration like PT24H")
        window = parse_duration(value)  # its ValueError names the problem
        if window <= timedelta(0):
            raise ValueError(f"{value!r} is empty; a window must be longer than zero")
        return window

    @field_validator("warn_at", mode="plain")
    @classmethod
    def _warn_at(cls, value: object) -> tuple[float, ...]:
        numbers = isinstance(value, list) and all(isinstance(f, int | float) and not isinstance(f, bool) for f in value)
        if not isinstance(value, list) or not numbers:
            raise ValueError(f"{value!r} must be a list of fractions of the window, e.g. [0.5, 0.75, 0.9]")
        fractions = [float(f) for f in value]
        outside = [f for f in fractions if not 0 < f < 1]
        if outside:
            raise ValueError(f"{', '.join(map(str, outside))} not between 0 and 1 (exclusive)")
        if fractions != sorted(set(fractions)):
            raise ValueError(f"{value!r} must be in rising order without repeats")
        return tuple(fractions)

    def to_rule(self) -> Rule:
        return Rule(
            id=self.id,
            title=self.title,
            basis=self.basis,
            when=self.when,
            start=self.start,
            stop_on=self.stop_on,
            window=self.window,
            warn_at=self.warn_at,
            reschedule_on=self.reschedule_on,
            cancel_on=self.cancel_on,
            window_set_by=self.window_set_by or "district",
            law_says=self.law_says,
            description=self.description,
        )


class RulesFile(Entry):
    """The whole file: a version and the rules, in the order they match."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    version: Version = LEFT_OUT
    rules: Annotated[list[RuleEntry], non_empty_list("must be a non-empty list of rules")] = LEFT_OUT

    SHAPE: ClassVar[str] = "must be a mapping with `version` and `rules`"


# -- checks that need the case events and the reference data ----------------------------------------


def _case_event_models() -> dict[str, type[EventData]]:
    return {name: model for name, model in EventData.registry.items() if model.topic == cases.TOPIC}


def _parse_when(when: object) -> Trigger:
    """The trigger, or Refused naming each bad condition (`when.<field>`)."""
    if not isinstance(when, Mapping):
        raise ValueError("must be a mapping like {event: dk.politi.case.reported, category: burglary_home}")
    models = _case_event_models()
    event = when.get("event")
    model = models.get(event) if isinstance(event, str) else None
    if model is None or not isinstance(event, str):
        raise Refused((("event",), f"{event!r} is not a case event type; known: {', '.join(sorted(models))}"))

    found: list[tuple[Loc, str]] = []
    all_flags = {flag for category in categories().values() for flag in category.flags}
    named_categories = when.get("category")
    conditions: list[tuple[str, tuple[Scalar, ...]]] = []
    for name, raw_value in when.items():
        if name == "event":
            continue

        def bad(message: str, name: str = name) -> None:
            found.append(((name,), message))

        if name not in model.model_fields:
            bad(f"{model.__name__} has no field {name!r}")
            continue
        values = raw_value if isinstance(raw_value, list) else [raw_value]
        if not values:
            bad("an empty list matches nothing")
            continue
        adapter: TypeAdapter[Any] = TypeAdapter(model.model_fields[name].annotation or Any)
        for value in values:
            if isinstance(value, list | dict):
                bad(f"{value!r} must be a single value or a list of values")
                continue
            try:
                adapter.validate_python(value, strict=True)
            except ValidationError:
                bad(f"{value!r} is not a valid value for {model.__name__}.{name}")
        if name == "category":
            for value in values:
                if value not in categories():
                    bad(f"unknown category {value!r}; see shared/data/categories.yaml")
        elif name == "focus_area":
            for value in values:
                if value not in focus_areas():
                    bad(f"unknown focus area {value!r}; see shared/data/categories.yaml")
        elif name in all_flags:
            # A flag only means something for the categories that state it (categories.yaml).
            named = named_categories if isinstance(named_categories, list) else [named_categories]
            if named_categories is None:
                bad(f"the flag {name} needs a category that has it")
            for category_id in named:
                category = categories().get(category_id) if isinstance(category_id, str) else None
                if category is not None and name not in category.flags:
                    bad(f"category {category_id!r} has no flag {name}")
        conditions.append((name, tuple(values)))
    if found:
        raise Refused(*found)
    return Trigger(event=event, conditions=tuple(conditions))


def _check_start_field(model: type[EventData], start: str) -> None:
    info = model.model_fields.get(start)
    if info is None:
        times = [n for n, f in model.model_fields.items() if f.annotation in (datetime, AwareDatetime)]
        raise ValueError(f"{model.__name__} has no field {start!r}; its time fields: {', '.join(times)}")
    if info.annotation not in (datetime, AwareDatetime) or not info.is_required():
        # An optional time (occurred_at) may be missing, and a deadline cannot start at "unknown".
        raise ValueError(f"{model.__name__}.{start} is not a time every such event carries")


def _action_list(value: object, *, allow_empty: bool) -> tuple[str, ...]:
    known = set(cases.ACTIONS)
    if not isinstance(value, list) or (not value and not allow_empty):
        raise ValueError("must be a non-empty list of actions" if not allow_empty else "must be a list of actions")
    unknown = [a for a in value if a not in known]
    if unknown:
        raise ValueError(f"unknown action {', '.join(map(repr, unknown))}; known: {', '.join(sorted(known))}")
    if len(set(value)) != len(value):
        raise ValueError("lists an action twice")
    return tuple(value)
