"""The alert policy file: read and validate it (pydantic models), build the domain's Policy or list every problem."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, ClassVar, Final

from pydantic import (
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
)

from services.notify.domain.policy import (
    RAISING_EVENTS,
    REASONS,
    SEVERITIES,
    AlertRule,
    Chain,
    Policy,
    Reason,
    Severity,
)
from services.notify.domain.roster import GROUPS
from shared.datafile import LEFT_OUT, Entry, Loc, Problems, Version, collect, context_of, non_empty_list, read_yaml
from shared.durations import parse_duration

DATA_DIR: Final = Path(__file__).resolve().parent.parent / "data"
DEFAULT_POLICY_FILE: Final = DATA_DIR / "policy.yaml"

_RULE_FIELDS: Final = ("id", "event", "deadline_rules", "reason", "severity", "notify", "chain")


def load_policy(path: str | os.PathLike[str]) -> Policy:
    """Reads and validates a policy file; raises DataFileError listing every problem found."""
    source = os.fspath(path)
    return parse_policy(read_yaml(source, "alert policy"), source)


def parse_policy(document: object, source: str) -> Policy:
    """Validates a parsed policy document; `source` names it in error messages."""
    problems = Problems(source)
    _check_ids(document, problems)
    try:
        # "chains": the ids of the chains that are valid, for the rules' references (None: no chains given).
        parsed: PolicyFile | None = PolicyFile.model_validate(document, context={"chains": None})
    except ValidationError as exc:
        parsed = None
        collect(exc, problems, place=lambda loc: _place(document, loc), unknown_field=_unknown_field)
    problems.raise_if_any()
    assert parsed is not None
    chains = {
        str(key): Chain(str(key), entry.ack_timeout, tuple(entry.steps), entry.reminder_interval)
        for key, entry in parsed.chains.items()
    }
    rules = tuple(
        AlertRule(
            id=r.id,
            on=r.event,
            reason=r.reason,
            severity=r.severity,
            notify=tuple(r.notify),
            chain=chains[r.chain],
            deadline_rules=frozenset(r.deadline_rules) if r.deadline_rules is not None else None,
        )
        for r in parsed.rules
    )
    return Policy(version=parsed.version, rules=rules, chains=chains)


# -- the file's words for places and problems ------------------------------------------------------


def _raw_rule_id(document: object, index: int) -> object:
    raw_rules = document.get("rules") if isinstance(document, Mapping) else None
    raw = raw_rules[index] if isinstance(raw_rules, list) and index < len(raw_rules) else None
    return raw.get("id") if isinstance(raw, Mapping) else None


def _place(document: object, loc: Loc) -> str | None:
    if len(loc) >= 2 and loc[0] == "chains":
        entry, rest = f"chain {loc[1]!r}", loc[2:]
    elif len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        rule_id = _raw_rule_id(document, loc[1])
        entry, rest = (f"rule {rule_id!r}" if isinstance(rule_id, str) else f"rule #{loc[1] + 1}"), loc[2:]
    else:
        entry, rest = "", loc
    return ".".join(str(p) for p in (entry, *rest) if p != "") or None


def _unknown_field(loc: Loc) -> str:
    if loc[0] == "chains":
        return "unknown field"
    if loc[0] == "rules":
        return f"unknown field; a rule has {', '.join(_RULE_FIELDS)}"
    return "unknown field; a policy has version, chains, rules"


def _check_ids(document: object, problems: Problems) -> None:
    raw_rules = document.get("rules") if isinstance(document, Mapping) else None
    if not isinstance(raw_rules, list):
        return
    ids: set[str] = set()
    for index in range(len(raw_rules)):
        rule_id = _raw_rule_id(document, index)
        if isinstance(rule_id, str) and rule_id in ids:
            problems.add(f"rule {rule_id!r}.id", "used twice")
        ids.add(str(rule_id))


def _positive_duration(value: object) -> timedelta:
    try:
        found = parse_duration(value) if isinstance(value, str) else None
    except ValueError:
        found = None
    if found is None or found <= timedelta(0):
        raise ValueError(f"{value!r} must be an ISO 8601 duration longer than zero, e.g. PT10M")
    return found


# -- the models ------------------------------------------------------------------------------------


class ChainEntry(Entry):
    """An escalation chain as written: how long to wait for an ack, whom to tell next, how often to remind."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    ack_timeout: timedelta = LEFT_OUT
    reminder_interval: timedelta = LEFT_OUT
    steps: list[str] = Field(default_factory=list)

    SHAPE: ClassVar[str] = "must be {ack_timeout, steps, reminder_interval}"

    @field_validator("ack_timeout", "reminder_interval", mode="plain")
    @classmethod
    def _duration(cls, value: object) -> timedelta:
        return _positive_duration(value)

    @field_validator("steps", mode="plain")
    @classmethod
    def _steps(cls, value: object) -> list[str]:
        if not isinstance(value, list) or any(s not in GROUPS for s in value):
            raise ValueError(f"{value!r} must be a list of {', '.join(GROUPS)}")
        return value


class AlertRuleEntry(Entry):
    """One line of the policy as written."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    id: str = LEFT_OUT
    event: str = LEFT_OUT
    reason: Reason = LEFT_OUT
    severity: Severity = LEFT_OUT
    notify: list[str] = LEFT_OUT
    chain: str = LEFT_OUT
    deadline_rules: list[str] | None = None

    SHAPE: ClassVar[str] = "must be {id, event, reason, severity, notify, chain}"

    @field_validator("id", mode="plain")
    @classmethod
    def _id(cls, value: object) -> str:
        if not isinstance(value, str) or not value:
            raise ValueError("must be a name")
        return value

    @field_validator("event", "reason", "severity", mode="plain")
    @classmethod
    def _one_of(cls, value: object, info: ValidationInfo) -> Any:
        allowed = {"event": RAISING_EVENTS, "reason": REASONS, "severity": SEVERITIES}[info.field_name or ""]
        if value not in allowed:
            raise ValueError(f"{value!r} must be one of {', '.join(allowed)}")
        return value

    @field_validator("notify", mode="plain")
    @classmethod
    def _notify(cls, value: object) -> list[str]:
        if not isinstance(value, list) or not value or any(g not in GROUPS for g in value):
            raise ValueError(f"{value!r} must be a non-empty list of {', '.join(GROUPS)}")
        return value

    @field_validator("chain", mode="plain")
    @classmethod
    def _chain(cls, value: object, info: ValidationInfo) -> str:
        chains: set[str] | None = context_of(info)["chains"]
        if chains is not None and (not isinstance(value, str) or value not in chains):
            raise ValueError(f"{value!r} is not one of the chains: {', '.join(sorted(chains))}")
        return str(value)

    @field_validator("deadline_rules", mode="plain")
    @classmethod
    def _deadline_rules(cls, value: object) -> list[str] | None:
        if value is not None and (
            not isinstance(value, list) or not value or not all(isinstance(r, str) for r in value)
        ):
            raise ValueError("must be a non-empty list of deadline rule ids (or left out: all)")
        return value


class PolicyFile(Entry):
    """The whole policy: a version, the escalation chains by name, and the rules in the order they match."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    version: Version = LEFT_OUT
    chains: dict[Any, ChainEntry] = LEFT_OUT
    rules: Annotated[list[AlertRuleEntry], non_empty_list("must be a non-empty list")] = LEFT_OUT

    SHAPE: ClassVar[str] = "must be a mapping with version, chains and rules"

    @field_validator("chains", mode="wrap")
    @classmethod
    def _chains(cls, value: object, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
        if not isinstance(value, Mapping):
            raise ValueError("must map chain names to {ack_timeout, steps, reminder_interval}")
        # A rule may name only a chain that is itself valid.
        known: set[str] = set()
        context_of(info)["chains"] = known
        if not value:
            raise ValueError("must map chain names to {ack_timeout, steps, reminder_interval}")
        try:
            chains = handler(value)
        except ValidationError as exc:
            bad = {found["loc"][0] for found in exc.errors()}
            known.update(str(key) for key in value if key not in bad)
            raise
        known.update(str(key) for key in value)
        return chains
