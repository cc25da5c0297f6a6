"""Facts the read model keeps per case, police action, deadline and alert, and how two reports of one merge.

Every merge is commutative, associative and idempotent (first times take the earliest, flags OR,
the due time follows the latest word on it), so a redelivered or reordered event changes nothing,
a batch may fold many events into one row before writing, and a rebuild gives the same rows.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TypeVar

T = TypeVar("T")


def _first(a: T | None, b: T | None) -> T | None:
    return a if a is not None else b


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


@dataclass(frozen=True, slots=True)
class CaseFact:
    """A report, tip or Bestil-en-betjent request (sag), and when a patrol first came on scene."""

    case_id: uuid.UUID
    kommune: str
    kind: str | None = None  # report | tip | request; None while only actions are known
    category: str | None = None
    focus_area: str | None = None
    received_at: datetime | None = None
    first_on_scene_at: datetime | None = None

    def merge(self, other: CaseFact) -> CaseFact:
        return CaseFact(
            case_id=self.case_id,
            kommune=self.kommune,
            kind=_first(self.kind, other.kind),
            category=_first(self.category, other.category),
            focus_area=_first(self.focus_area, other.focus_area),
            received_at=_first(self.received_at, other.received_at),
            first_on_scene_at=_earliest(self.first_on_scene_at, other.first_on_scene_at),
        )


@dataclass(frozen=True, slots=True)
class ActionFact:
    """One police action on a case (handling), counted in council reports."""

    action_id: uuid.UUID
    case_id: uuid.UUID
    kommune: str
    action: str
    category: str
    focus_area: str
    occurred_at: datetime

    def merge(self, other: ActionFact) -> ActionFact:
        return self  # an action is recorded once; a repeat is the same fact


@dataclass(frozen=True, slots=True)
class DeadlineFact:
    """A deadline (frist) of one rule on one case: its terms and how it ended."""

    deadline_id: uuid.UUID
    case_id: uuid.UUID
    rule_id: str
    title: str
    basis: str
    window_set_by: str
    kommune: str
    category: str
    focus_area: str
    started_at: datetime
    due_at: datetime
    due_as_of: datetime  # when the event that stated `due_at` happened: the latest word wins
    window_seconds: float | None = None
    met_at: datetime | None = None
    met_late: bool | None = None
    met_action: str | None = None
    response_seconds: float | None = None
    breached_at: datetime | None = None
    cancelled_at: datetime | None = None
    outcome: str | None = None
    rescheduled: bool = False
    # A breach withdrawn (the stop action came in time, its news late): no breach stands, ever, so a
    # breach arriving after the withdrawal (a rebuild, a reordering) is dropped as well.
    breach_withdrawn: bool = False

    def merge(self, other: DeadlineFact) -> DeadlineFact:
        newer = other if other.due_as_of > self.due_as_of else self
        met = self if self.met_at is not None else other
        cancelled = self if self.cancelled_at is not None else other
        withdrawn = self.breach_withdrawn or other.breach_withdrawn
        return replace(
            self,
            due_at=newer.due_at,
            due_as_of=newer.due_as_of,
            window_seconds=_first(self.window_seconds, other.window_seconds),
            met_at=met.met_at,
            met_late=met.met_late,
            met_action=met.met_action,
            response_seconds=met.response_seconds,
            breached_at=None if withdrawn else _earliest(self.breached_at, other.breached_at),
            cancelled_at=cancelled.cancelled_at,
            outcome=cancelled.outcome,
            rescheduled=self.rescheduled or other.rescheduled,
            breach_withdrawn=withdrawn,
        )


@dataclass(frozen=True, slots=True)
class AlertFact:
    """An alert to officers: when it was raised, first delivered, escalated, resolved; its latest severity.

    notify updates an alert in place (`alert.updated`: a breach supersedes a warning), so severity
    and reason are the latest word: the pair stated by the event with the newest time
    (`severity_as_of`); a tie goes to the greater pair, so the order of arrival never matters.
    Acknowledgements are kept per stage (`AlertStageFact`, `AlertAckFact`).
    """

    alert_id: uuid.UUID
    case_id: uuid.UUID
    kommune: str
    deadline_id: uuid.UUID | None = None
    rule_id: str | None = None
    reason: str | None = None
    severity: str | None = None
    severity_as_of: datetime | None = None
    raised_at: datetime | None = None
    first_delivered_at: datetime | None = None
    escalation_level: int = 0
    resolved_at: datetime | None = None

    def _word(self) -> tuple[datetime, str, str] | None:
        if self.severity_as_of is None or self.severity is None:
            return None
        return (self.severity_as_of, self.severity, self.reason or "")

    def merge(self, other: AlertFact) -> AlertFact:
        mine, theirs = self._word(), other._word()
        latest = other if mine is None or (theirs is not None and theirs > mine) else self
        return AlertFact(
            alert_id=self.alert_id,
            case_id=self.case_id,
            kommune=self.kommune,
            deadline_id=_first(self.deadline_id, other.deadline_id),
            rule_id=_first(self.rule_id, other.rule_id),
            reason=latest.reason,
            severity=latest.severity,
            severity_as_of=latest.severity_as_of,
            raised_at=_earliest(self.raised_at, other.raised_at),
            first_delivered_at=_earliest(self.first_delivered_at, other.first_delivered_at),
            escalation_level=max(self.escalation_level, other.escalation_level),
            resolved_at=_earliest(self.resolved_at, other.resolved_at),
        )


@dataclass(frozen=True, slots=True)
class AlertStageFact:
    """A stage of an alert began: its raising, or a supersede (a breach replacing a warning), after which
    the alert is open again and an earlier acknowledgement no longer counts (notify's README)."""

    alert_id: uuid.UUID
    started_at: datetime

    def merge(self, other: AlertStageFact) -> AlertStageFact:
        return self  # one stage start is one fact


@dataclass(frozen=True, slots=True)
class AlertAckFact:
    """An acknowledgement of an alert; the time to acknowledge a stage is to its first one within the stage."""

    alert_id: uuid.UUID
    acknowledged_at: datetime

    def merge(self, other: AlertAckFact) -> AlertAckFact:
        return self


@dataclass(frozen=True, slots=True)
class RuleFact:
    """A rule's terms as the newest deadline started under it states them."""

    rule_id: str
    title: str
    basis: str
    window_set_by: str
    window_seconds: float
    seen_at: datetime

    def merge(self, other: RuleFact) -> RuleFact:
        return other if other.seen_at > self.seen_at else self


Fact = CaseFact | ActionFact | DeadlineFact | AlertFact | AlertStageFact | AlertAckFact | RuleFact
FactKey = tuple[str, uuid.UUID | str | tuple[uuid.UUID, datetime]]


def _key(fact: Fact) -> FactKey:
    if isinstance(fact, CaseFact):
        return ("case", fact.case_id)
    if isinstance(fact, ActionFact):
        return ("action", fact.action_id)
    if isinstance(fact, DeadlineFact):
        return ("deadline", fact.deadline_id)
    if isinstance(fact, RuleFact):
        return ("rule", fact.rule_id)
    if isinstance(fact, AlertStageFact):
        return ("alert_stage", (fact.alert_id, fact.started_at))
    if isinstance(fact, AlertAckFact):
        return ("alert_ack", (fact.alert_id, fact.acknowledged_at))
    return ("alert", fact.alert_id)


@dataclass
class FactBatch:
    """Facts of many events folded by identity, plus the last event time seen per topic (freshness)."""

    facts: dict[FactKey, Any] = field(default_factory=dict)
    last_event_at: dict[str, datetime] = field(default_factory=dict)
    events: int = 0

    def add(self, topic: str, event_time: datetime, facts: list[Fact]) -> None:
        self.events += 1
        seen = self.last_event_at.get(topic)
        self.last_event_at[topic] = event_time if seen is None else max(seen, event_time)
        for fact in facts:
            key = _key(fact)
            known = self.facts.get(key)
            self.facts[key] = fact if known is None else known.merge(fact)

    def of_type(self, kind: type[T]) -> list[T]:
        return [f for f in self.facts.values() if isinstance(f, kind)]

    def __len__(self) -> int:
        return self.events
