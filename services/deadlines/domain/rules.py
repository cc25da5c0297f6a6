"""Deadline rules as data: a rule (politigaranti or local target), a rule set, and the rules a case event starts.

Reading and validating the rules file is an adapter's job (services/deadlines/adapters/rules_file.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from shared.durations import format_duration, parse_duration
from shared.events.deadlines import Basis
from shared.events.envelope import EventData

WindowSetBy = Literal["law", "district"]
Scalar = str | bool | int | None

# citizen_requested_later is the only action that carries a requested_time (ActionRecorded),
# so it is the only one a deadline can be moved by.
RESCHEDULING_ACTIONS: Final = frozenset({"citizen_requested_later"})
# A case that is closed before its deadline is met no longer owes the action, unless a rule says
# otherwise (cancel_on) or counts the closing itself as the response (stop_on).
DEFAULT_CANCEL_ON: Final = ("closed",)

# What a payload lacks a condition's field as; equal to no allowed value.
_MISSING = object()


@dataclass(frozen=True, slots=True)
class Trigger:
    """The case event a rule starts on: its type, and the values some of its data fields must have."""

    event: str
    conditions: tuple[tuple[str, tuple[Scalar, ...]], ...] = ()

    def matches(self, event_type: str, payload: EventData) -> bool:
        if event_type != self.event:
            return False
        return all(_one_of(getattr(payload, name, _MISSING), values) for name, values in self.conditions)

    def to_snapshot(self) -> dict[str, Any]:
        found: dict[str, Any] = {"event": self.event}
        for name, values in self.conditions:
            found[name] = values[0] if len(values) == 1 else list(values)
        return found


def _one_of(value: object, allowed: tuple[Scalar, ...]) -> bool:
    # Python has False == 0 and True == 1; a flag must match a flag, not a number.
    return any(value == a and isinstance(value, bool) == isinstance(a, bool) for a in allowed)


@dataclass(frozen=True, slots=True)
class Rule:
    """A politigaranti (national police guarantee) or a local target: what starts, meets and times it.

    `window_set_by` says whose number the window is: "law" when the guarantee itself names it
    (24 hours for a burglary), "district" when the law says only "med det samme" (at once) or
    names no time, and for every local target.
    """

    id: str
    title: str
    basis: Basis
    when: Trigger
    start: str
    stop_on: tuple[str, ...]
    window: timedelta
    warn_at: tuple[float, ...]
    reschedule_on: str | None = None
    cancel_on: tuple[str, ...] = DEFAULT_CANCEL_ON
    window_set_by: WindowSetBy = "district"
    law_says: str | None = None
    description: str = ""

    def starts_on(self, event_type: str, payload: EventData) -> bool:
        return self.when.matches(event_type, payload)

    def start_time(self, payload: EventData) -> datetime:
        value = getattr(payload, self.start)
        if not isinstance(value, datetime):
            raise TypeError(f"rule {self.id!r}: {type(payload).__name__}.{self.start} is not a time")
        return value

    def to_snapshot(self) -> dict[str, Any]:
        """The rule as JSON-ready data: a deadline keeps the terms it started under when the file changes."""
        return {
            "id": self.id,
            "title": self.title,
            "basis": self.basis,
            "when": self.when.to_snapshot(),
            "start": self.start,
            "stop_on": list(self.stop_on),
            "window": format_duration(self.window),
            "warn_at": list(self.warn_at),
            "reschedule_on": self.reschedule_on,
            "cancel_on": list(self.cancel_on),
            "window_set_by": self.window_set_by,
            "law_says": self.law_says,
            "description": self.description,
        }

    @classmethod
    def from_snapshot(cls, data: Mapping[str, Any]) -> Rule:
        """Inverse of to_snapshot. No reference-data checks: a stored deadline keeps its rule even if
        the category list has changed since it started."""
        when = dict(data["when"])
        event = when.pop("event")
        conditions = tuple(
            (name, tuple(value) if isinstance(value, list) else (value,)) for name, value in when.items()
        )
        return cls(
            id=data["id"],
            title=data["title"],
            basis=data["basis"],
            when=Trigger(event=event, conditions=conditions),
            start=data["start"],
            stop_on=tuple(data["stop_on"]),
            window=parse_duration(data["window"]),
            warn_at=tuple(float(f) for f in data["warn_at"]),
            reschedule_on=data.get("reschedule_on"),
            cancel_on=tuple(data.get("cancel_on", DEFAULT_CANCEL_ON)),
            window_set_by=data.get("window_set_by", "district"),
            law_says=data.get("law_says"),
            description=data.get("description", ""),
        )


@dataclass(frozen=True, slots=True)
class RuleSet:
    """The rules of one version of the rules file."""

    version: int
    rules: tuple[Rule, ...]
    source: str = field(default="<memory>", compare=False)

    def __iter__(self) -> Iterator[Rule]:
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(rule.id for rule in self.rules)

    def get(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)

    def match(self, event_type: str, payload: EventData) -> list[Rule]:
        """The rules a case event starts, in file order; one report may start several (burglary)."""
        return [rule for rule in self.rules if rule.starts_on(event_type, payload)]
