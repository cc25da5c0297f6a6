"""The rules file: read it, validate every field, and build the domain's RuleSet (or list every problem)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final, get_args

import yaml
from pydantic import AwareDatetime, TypeAdapter, ValidationError

from services.deadlines.domain.durations import parse_duration
from services.deadlines.domain.rules import (
    DEFAULT_CANCEL_ON,
    RESCHEDULING_ACTIONS,
    Rule,
    RuleSet,
    Scalar,
    Trigger,
    WindowSetBy,
)
from shared.events import cases
from shared.events.deadlines import Basis
from shared.events.envelope import EventData
from shared.reference import categories, focus_areas

RULES_DIR: Final = Path(__file__).resolve().parent.parent / "rules"
DEFAULT_RULES_FILE: Final = RULES_DIR / "politigarantier.yaml"
SECONDS_RULES_FILE: Final = RULES_DIR / "test-seconds.yaml"
DEMO_RULES_FILE: Final = RULES_DIR / "demo-minutes.yaml"

_RULE_ID = re.compile(r"[a-z][a-z0-9_]*")
_TOP_FIELDS: Final = ("version", "rules")
_REQUIRED_FIELDS: Final = ("id", "title", "basis", "when", "start", "stop_on", "window", "warn_at")
_OPTIONAL_FIELDS: Final = ("description", "reschedule_on", "cancel_on", "window_set_by", "law_says")

# Records one problem of the rule being parsed: (field, message).
_Complain = Callable[[str, str], None]


class RulesError(ValueError):
    """A rules file that cannot be used; the message names file, rule and field of each problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def load_rules(path: str | os.PathLike[str]) -> RuleSet:
    """Reads and validates a rules file; raises RulesError listing every problem found."""
    source = os.fspath(path)
    try:
        text = Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError([f"{source}: cannot read the rules file: {exc.strerror or exc}"]) from exc
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RulesError([f"{source}: not valid YAML: {exc}"]) from exc
    return parse_rules(document, source)


def parse_rules(document: object, source: str) -> RuleSet:
    """Validates an already parsed rules document; `source` names it in error messages."""
    problems = _Problems(source)
    if not isinstance(document, Mapping):
        problems.add(None, None, "must be a mapping with `version` and `rules`")
        raise RulesError(problems.found)
    for name in document:
        if name not in _TOP_FIELDS:
            problems.add(None, str(name), f"unknown field; a rules file has only {', '.join(_TOP_FIELDS)}")
    version = document.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        problems.add(None, "version", f"must be a whole number from 1 up, not {version!r}")
    raw_rules = document.get("rules")
    rules: list[Rule] = []
    if not isinstance(raw_rules, list) or not raw_rules:
        problems.add(None, "rules", "must be a non-empty list of rules")
    else:
        ids = [raw.get("id") if isinstance(raw, Mapping) else None for raw in raw_rules]
        # Two rules with one id are told apart by their place in the list.
        shared_ids = {i for i in ids if isinstance(i, str) and ids.count(i) > 1}
        for index, (raw, rule_id) in enumerate(zip(raw_rules, ids, strict=True), start=1):
            where = _where(rule_id, index, rule_id in shared_ids)
            rule = _parse_rule(raw, where, problems)
            if rule_id in shared_ids and ids.index(rule_id) + 1 < index:
                problems.add(where, "id", f"already used by rule #{ids.index(rule_id) + 1}")
            if rule is not None:
                rules.append(rule)
    if problems.found:
        raise RulesError(problems.found)
    assert isinstance(version, int)
    return RuleSet(version=version, rules=tuple(rules), source=source)


class _Problems:
    def __init__(self, source: str) -> None:
        self.source = source
        self.found: list[str] = []

    def add(self, where: str | None, field_name: str | None, message: str) -> None:
        parts = [self.source, where, field_name]
        self.found.append(": ".join(p for p in parts if p) + ": " + message)


def _where(rule_id: object, index: int, shared: bool) -> str:
    if not isinstance(rule_id, str) or not rule_id:
        return f"rule #{index}"
    return f"rule {rule_id!r} (#{index})" if shared else f"rule {rule_id!r}"


def _case_event_models() -> dict[str, type[EventData]]:
    return {name: model for name, model in EventData.registry.items() if model.topic == cases.TOPIC}


def _parse_rule(raw: object, where: str, problems: _Problems) -> Rule | None:
    """One rule, or None after recording why it cannot be one; `where` names it in messages."""
    if not isinstance(raw, Mapping):
        problems.add(where, None, "must be a mapping of fields")
        return None
    before = len(problems.found)

    def bad(field_name: str, message: str) -> None:
        problems.add(where, field_name, message)

    for name in raw:
        if name not in _REQUIRED_FIELDS and name not in _OPTIONAL_FIELDS:
            bad(str(name), "unknown field")
    for name in _REQUIRED_FIELDS:
        if name not in raw:
            bad(name, "missing")

    rule_id = raw.get("id")
    if "id" in raw and (not isinstance(rule_id, str) or not _RULE_ID.fullmatch(rule_id)):
        bad("id", f"{rule_id!r} must be lower-case letters, digits and _, starting with a letter")

    title = raw.get("title")
    if "title" in raw and (not isinstance(title, str) or not title.strip()):
        bad("title", "must be a non-empty Danish title")
    description = raw.get("description", "")
    if not isinstance(description, str):
        bad("description", "must be text")

    basis = raw.get("basis")
    if "basis" in raw and basis not in get_args(Basis):
        bad("basis", f"{basis!r} must be one of {', '.join(get_args(Basis))}")

    window_set_by = raw.get("window_set_by")
    law_says = raw.get("law_says")
    if basis == "guarantee":
        if window_set_by not in get_args(WindowSetBy):
            bad("window_set_by", f"{window_set_by!r}: a guarantee must say whose window it is: law or district")
        if not isinstance(law_says, str) or not law_says.strip():
            bad("law_says", "a guarantee must quote what the law says about its window, e.g. 'med det samme'")
    elif basis == "local_target":
        if window_set_by not in (None, "district"):
            bad("window_set_by", f"{window_set_by!r}: a local target's window is always set by the district")
        if law_says is not None:
            bad("law_says", "a local target has no law text; put the reasoning in description")
        window_set_by = "district"

    trigger, model = _parse_when(raw.get("when"), "when" in raw, bad)

    start = raw.get("start")
    if "start" in raw:
        if not isinstance(start, str):
            bad("start", f"{start!r} must name a time field of the event")
        elif model is not None:
            _check_start_field(model, start, bad)

    known_actions = set(cases.ACTIONS)
    stop_on = _action_list(raw, "stop_on", known_actions, bad, allow_empty=False)
    if "cancel_on" in raw:
        cancel_on = _action_list(raw, "cancel_on", known_actions, bad, allow_empty=True)
    else:
        cancel_on = tuple(a for a in DEFAULT_CANCEL_ON if a not in (stop_on or ()))
    if stop_on is not None and cancel_on is not None:
        both = sorted(set(stop_on) & set(cancel_on))
        if both:
            bad("cancel_on", f"{', '.join(both)} also in stop_on; an action either meets or cancels")

    reschedule_on = raw.get("reschedule_on")
    if reschedule_on is not None:
        if reschedule_on not in RESCHEDULING_ACTIONS:
            bad(
                "reschedule_on",
                f"{reschedule_on!r} carries no requested time; only "
                f"{', '.join(sorted(RESCHEDULING_ACTIONS))} can move a deadline",
            )
        elif reschedule_on in (stop_on or ()) or reschedule_on in (cancel_on or ()):
            bad("reschedule_on", f"{reschedule_on!r} is also in stop_on or cancel_on")

    window = _parse_window(raw.get("window"), "window" in raw, bad)
    warn_at = _parse_warn_at(raw.get("warn_at"), "warn_at" in raw, bad)

    if len(problems.found) > before:
        return None
    assert isinstance(rule_id, str) and isinstance(title, str) and isinstance(start, str)
    assert trigger is not None and stop_on is not None and cancel_on is not None
    assert window is not None and warn_at is not None
    return Rule(
        id=rule_id,
        title=title.strip(),
        basis="guarantee" if basis == "guarantee" else "local_target",
        when=trigger,
        start=start,
        stop_on=stop_on,
        window=window,
        warn_at=warn_at,
        reschedule_on=reschedule_on,
        cancel_on=cancel_on,
        window_set_by="law" if window_set_by == "law" else "district",
        law_says=law_says.strip() if isinstance(law_says, str) else None,
        description=description.strip() if isinstance(description, str) else "",
    )


def _parse_when(when: object, present: bool, bad: _Complain) -> tuple[Trigger | None, type[EventData] | None]:
    if not present:
        return None, None
    if not isinstance(when, Mapping):
        bad("when", "must be a mapping like {event: dk.politi.case.reported, category: burglary_home}")
        return None, None
    models = _case_event_models()
    event = when.get("event")
    model = models.get(event) if isinstance(event, str) else None
    if model is None or not isinstance(event, str):
        bad("when.event", f"{event!r} is not a case event type; known: {', '.join(sorted(models))}")
        return None, None

    all_flags = {flag for category in categories().values() for flag in category.flags}
    named_categories = when.get("category")
    conditions: list[tuple[str, tuple[Scalar, ...]]] = []
    ok = True
    for name, raw_value in when.items():
        if name == "event":
            continue
        path = f"when.{name}"
        if name not in model.model_fields:
            bad(path, f"{model.__name__} has no field {name!r}")
            ok = False
            continue
        values = raw_value if isinstance(raw_value, list) else [raw_value]
        if not values:
            bad(path, "an empty list matches nothing")
            ok = False
            continue
        adapter: TypeAdapter[Any] = TypeAdapter(model.model_fields[name].annotation or Any)
        for value in values:
            if isinstance(value, list | dict):
                bad(path, f"{value!r} must be a single value or a list of values")
                ok = False
                continue
            try:
                adapter.validate_python(value, strict=True)
            except ValidationError:
                bad(path, f"{value!r} is not a valid value for {model.__name__}.{name}")
                ok = False
        if name == "category":
            for value in values:
                if value not in categories():
                    bad(path, f"unknown category {value!r}; see shared/data/categories.yaml")
                    ok = False
        elif name == "focus_area":
            for value in values:
                if value not in focus_areas():
                    bad(path, f"unknown focus area {value!r}; see shared/data/categories.yaml")
                    ok = False
        elif name in all_flags:
            # A flag only means something for the categories that state it (categories.yaml).
            named = named_categories if isinstance(named_categories, list) else [named_categories]
            if named_categories is None:
                bad(path, f"the flag {name} needs a category that has it")
                ok = False
            for category_id in named:
                category = categories().get(category_id) if isinstance(category_id, str) else None
                if category is not None and name not in category.flags:
                    bad(path, f"category {category_id!r} has no flag {name}")
                    ok = False
        conditions.append((name, tuple(values)))
    if not ok:
        return None, model
    return Trigger(event=event, conditions=tuple(conditions)), model


def _check_start_field(model: type[EventData], start: str, bad: _Complain) -> None:
    info = model.model_fields.get(start)
    if info is None:
        times = [n for n, f in model.model_fields.items() if f.annotation in (datetime, AwareDatetime)]
        bad("start", f"{model.__name__} has no field {start!r}; its time fields: {', '.join(times)}")
    elif info.annotation not in (datetime, AwareDatetime) or not info.is_required():
        # An optional time (occurred_at) may be missing, and a deadline cannot start at "unknown".
        bad("start", f"{model.__name__}.{start} is not a time every such event carries")


def _action_list(
    raw: Mapping[str, Any], name: str, known: set[str], bad: _Complain, *, allow_empty: bool
) -> tuple[str, ...] | None:
    if name not in raw:
        return None
    value = raw[name]
    if not isinstance(value, list) or (not value and not allow_empty):
        bad(name, "must be a non-empty list of actions" if not allow_empty else "must be a list of actions")
        return None
    unknown = [a for a in value if a not in known]
    if unknown:
        bad(name, f"unknown action {', '.join(map(repr, unknown))}; known: {', '.join(sorted(known))}")
        return None
    if len(set(value)) != len(value):
        bad(name, "lists an action twice")
        return None
    return tuple(value)


def _parse_window(value: object, present: bool, bad: _Complain) -> timedelta | None:
    if not present:
        return None
    if not isinstance(value, str):
        bad("window", f"{value!r} is not an ISO 8601 duration like PT24H")
        return None
    try:
        window = parse_duration(value)
    except ValueError as exc:
        bad("window", str(exc))
        return None
    if window <= timedelta(0):
        bad("window", f"{value!r} is empty; a window must be longer than zero")
        return None
    return window


def _parse_warn_at(value: object, present: bool, bad: _Complain) -> tuple[float, ...] | None:
    if not present:
        return None
    if not isinstance(value, list) or not all(isinstance(f, int | float) and not isinstance(f, bool) for f in value):
        bad("warn_at", f"{value!r} must be a list of fractions of the window, e.g. [0.5, 0.75, 0.9]")
        return None
    fractions = [float(f) for f in value]
    outside = [f for f in fractions if not 0 < f < 1]
    if outside:
        bad("warn_at", f"{', '.join(map(str, outside))} not between 0 and 1 (exclusive)")
        return None
    if fractions != sorted(set(fractions)):
        bad("warn_at", f"{value!r} must be in rising order without repeats")
        return None
    return tuple(fractions)
