"""The alert policy (alarmpolitik) as data: which deadline events raise an alert, for whom, how urgent, escalation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from pydantic import TypeAdapter, ValidationError

from services.notify.domain.problems import Problems
from services.notify.domain.roster import GROUPS
from shared.events import deadlines as deadline_events

Reason = Literal["deadline_warning", "acute_report", "deadline_breached"]
Severity = Literal["info", "warning", "critical"]
REASONS: tuple[str, ...] = ("deadline_warning", "acute_report", "deadline_breached")
SEVERITIES: tuple[str, ...] = ("info", "warning", "critical")
# A later event of a higher rank supersedes the alert (a breach after warnings); a lower one only updates it.
RANK: Mapping[str, int] = {"deadline_warning": 1, "acute_report": 2, "deadline_breached": 3}

RAISING_EVENTS: tuple[str, ...] = (deadline_events.STARTED, deadline_events.WARNING, deadline_events.BREACHED)
RESOLVING_EVENTS: tuple[str, ...] = (deadline_events.MET, deadline_events.CANCELLED)
_DURATION: TypeAdapter[timedelta] = TypeAdapter(timedelta)


@dataclass(frozen=True, slots=True)
class Chain:
    """An escalation chain (eskalationskæde): unacknowledged after `ack_timeout`, the next step's group
    is told; after the last step, reminders every `reminder_interval` to that step's recipients."""

    id: str
    ack_timeout: timedelta
    steps: tuple[str, ...]
    reminder_interval: timedelta

    def to_snapshot(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ack_timeout": self.ack_timeout.total_seconds(),
            "steps": list(self.steps),
            "reminder_interval": self.reminder_interval.total_seconds(),
        }

    @classmethod
    def from_snapshot(cls, data: Mapping[str, Any]) -> Chain:
        return cls(
            id=data["id"],
            ack_timeout=timedelta(seconds=data["ack_timeout"]),
            steps=tuple(data["steps"]),
            reminder_interval=timedelta(seconds=data["reminder_interval"]),
        )


@dataclass(frozen=True, slots=True)
class AlertRule:
    """One line of the policy: on this deadline event (for these deadline rules, or any), raise this alert."""

    id: str
    on: str
    reason: Reason
    severity: Severity
    notify: tuple[str, ...]
    chain: Chain
    deadline_rules: frozenset[str] | None = None  # None: every deadline rule

    def matches(self, event_type: str, deadline_rule: str) -> bool:
        return event_type == self.on and (self.deadline_rules is None or deadline_rule in self.deadline_rules)


@dataclass(frozen=True, slots=True)
class Policy:
    version: int
    rules: tuple[AlertRule, ...]
    chains: Mapping[str, Chain]

    def rule_for(self, event_type: str, deadline_rule: str) -> AlertRule | None:
        """The first policy rule that matches, in file order; None: this event raises nothing."""
        return next((r for r in self.rules if r.matches(event_type, deadline_rule)), None)


def parse_policy(document: object, source: str) -> Policy:
    """Validates a parsed policy document; raises DataFileError naming each bad entry."""
    problems = Problems(source)
    if not isinstance(document, Mapping):
        problems.add(None, "must be a mapping with version, chains and rules")
        problems.raise_if_any()
        raise AssertionError  # unreachable
    for name in document:
        if name not in ("version", "chains", "rules"):
            problems.add(str(name), "unknown field; a policy has version, chains, rules")
    version = document.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        problems.add("version", f"must be a whole number from 1 up, not {version!r}")

    chains: dict[str, Chain] = {}
    raw_chains = document.get("chains")
    if not isinstance(raw_chains, Mapping) or not raw_chains:
        problems.add("chains", "must map chain names to {ack_timeout, steps, reminder_interval}")
    else:
        for chain_id, raw in raw_chains.items():
            chain = _parse_chain(str(chain_id), raw, f"chain {chain_id!r}", problems)
            if chain is not None:
                chains[chain.id] = chain

    rules: list[AlertRule] = []
    raw_rules = document.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        problems.add("rules", "must be a non-empty list")
    else:
        ids: set[str] = set()
        for i, raw in enumerate(raw_rules, start=1):
            rid = raw.get("id") if isinstance(raw, Mapping) else None
            where = f"rule {rid!r}" if isinstance(rid, str) else f"rule #{i}"
            if isinstance(rid, str) and rid in ids:
                problems.add(f"{where}.id", "used twice")
            ids.add(str(rid))
            rule = _parse_rule(raw, where, chains, isinstance(raw_chains, Mapping), problems)
            if rule is not None:
                rules.append(rule)
    problems.raise_if_any()
    assert isinstance(version, int)
    return Policy(version=version, rules=tuple(rules), chains=chains)


def _duration(value: object, where: str, problems: Problems) -> timedelta | None:
    try:
        found = _DURATION.validate_python(value) if isinstance(value, str) else None
    except ValidationError:
        found = None
    if found is None or found <= timedelta(0):
        problems.add(where, f"{value!r} must be an ISO 8601 duration longer than zero, e.g. PT10M")
        return None
    return found


def _parse_chain(chain_id: str, raw: object, where: str, problems: Problems) -> Chain | None:
    if not isinstance(raw, Mapping):
        problems.add(where, "must be {ack_timeout, steps, reminder_interval}")
        return None
    before = len(problems.found)
    for name in raw:
        if name not in ("ack_timeout", "steps", "reminder_interval"):
            problems.add(f"{where}.{name}", "unknown field")
    ack = _duration(raw.get("ack_timeout"), f"{where}.ack_timeout", problems)
    reminder = _duration(raw.get("reminder_interval"), f"{where}.reminder_interval", problems)
    steps = raw.get("steps", [])
    if not isinstance(steps, list) or any(s not in GROUPS for s in steps):
        problems.add(f"{where}.steps", f"{steps!r} must be a list of {', '.join(GROUPS)}")
    if len(problems.found) > before:
        return None
    assert ack is not None and reminder is not None
    return Chain(id=chain_id, ack_timeout=ack, steps=tuple(steps), reminder_interval=reminder)


def _parse_rule(
    raw: object, where: str, chains: Mapping[str, Chain], chains_given: bool, problems: Problems
) -> AlertRule | None:
    if not isinstance(raw, Mapping):
        problems.add(where, "must be {id, event, reason, severity, notify, chain}")
        return None
    before = len(problems.found)
    allowed = ("id", "event", "deadline_rules", "reason", "severity", "notify", "chain")
    for name in raw:
        if name not in allowed:
            problems.add(f"{where}.{name}", f"unknown field; a rule has {', '.join(allowed)}")
    rid = raw.get("id")
    if not isinstance(rid, str) or not rid:
        problems.add(f"{where}.id", "must be a name")
    on = raw.get("event")
    if on not in RAISING_EVENTS:
        problems.add(f"{where}.event", f"{on!r} must be one of {', '.join(RAISING_EVENTS)}")
    reason = raw.get("reason")
    if reason not in REASONS:
        problems.add(f"{where}.reason", f"{reason!r} must be one of {', '.join(REASONS)}")
    severity = raw.get("severity")
    if severity not in SEVERITIES:
        problems.add(f"{where}.severity", f"{severity!r} must be one of {', '.join(SEVERITIES)}")
    notify = raw.get("notify")
    if not isinstance(notify, list) or not notify or any(g not in GROUPS for g in notify):
        problems.add(f"{where}.notify", f"{notify!r} must be a non-empty list of {', '.join(GROUPS)}")
    chain_id = raw.get("chain")
    if chains_given and chain_id not in chains:
        problems.add(f"{where}.chain", f"{chain_id!r} is not one of the chains: {', '.join(sorted(chains))}")
    deadline_rules = raw.get("deadline_rules")
    if deadline_rules is not None and (
        not isinstance(deadline_rules, list)
        or not deadline_rules
        or not all(isinstance(r, str) for r in deadline_rules)
    ):
        problems.add(f"{where}.deadline_rules", "must be a non-empty list of deadline rule ids (or left out: all)")
    if len(problems.found) > before:
        return None
    assert isinstance(rid, str) and isinstance(on, str) and isinstance(notify, list) and isinstance(chain_id, str)
    return AlertRule(
        id=rid,
        on=on,
        reason=reason,  # type: ignore[arg-type]
        severity=severity,  # type: ignore[arg-type]
        notify=tuple(notify),
        chain=chains[chain_id],
        deadline_rules=frozenset(deadline_rules) if deadline_rules is not None else None,
    )
