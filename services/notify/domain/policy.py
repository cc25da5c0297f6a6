"""The alert policy (alarmpolitik) as data: which deadline events raise an alert, for whom, how urgent, escalation.

Reading and validating the policy file is an adapter's job (services/notify/adapters/policy_file.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from shared.events import deadlines as deadline_events

Reason = Literal["deadline_warning", "acute_report", "deadline_breached"]
Severity = Literal["info", "warning", "critical"]
REASONS: tuple[str, ...] = ("deadline_warning", "acute_report", "deadline_breached")
SEVERITIES: tuple[str, ...] = ("info", "warning", "critical")
# A later event of a higher rank supersedes the alert (a breach after warnings); a lower one only updates it.
RANK: Mapping[str, int] = {"deadline_warning": 1, "acute_report": 2, "deadline_breached": 3}

RAISING_EVENTS: tuple[str, ...] = (deadline_events.STARTED, deadline_events.WARNING, deadline_events.BREACHED)
RESOLVING_EVENTS: tuple[str, ...] = (deadline_events.MET, deadline_events.CANCELLED)


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
