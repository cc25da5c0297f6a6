"""The alert state machine: one alert per deadline (dedup key case + rule), from raised to resolved.

Every decision takes the time as an argument and returns the new alert, the notices to send
(who is told what) and the events to publish. The states: open -> (escalated) -> acknowledged
-> resolved. Resolved is final: a late event never reopens it, and an acknowledgement that
races a resolve finds it resolved and is refused, so the outcome is the same in either order.
A breach supersedes a warning alert: it becomes critical and open again (an ack of a warning is
not an ack of a broken promise). A breach withdrawn (the stop action happened by the due time and
reached deadlines after the breach) resolves the breach alert with reason `breach_withdrawn`, and
everyone who was told of the breach is told why it is taken back.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

from services.notify.domain.policy import RANK, AlertRule, Chain, Reason, Severity
from services.notify.domain.roster import Recipient, Roster
from shared.events import alerts as ev
from shared.events.envelope import EventData

AlertState = Literal["open", "acknowledged", "escalated", "resolved"]
ACTIVE: frozenset[str] = frozenset({"open", "escalated"})
_NAMESPACE = uuid.UUID("3f1c2a52-8d7e-4b8e-9a51-6f0c9b1d2e40")


def alert_id_for(case_id: uuid.UUID, deadline_rule: str) -> uuid.UUID:
    """The dedup key (case + deadline rule) as the alert's id: the same deadline always finds its one alert."""
    return uuid.uuid5(_NAMESPACE, f"alert/{case_id}/{deadline_rule}")


def notice_id_for(alert_id: uuid.UUID, stage: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, f"notice/{alert_id}/{stage}")


def delivery_id_for(notice_id: uuid.UUID, recipient_id: str, channel_no: int) -> uuid.UUID:
    """One notice to one recipient on one channel: written twice (a retried transaction), it is one delivery."""
    return uuid.uuid5(notice_id, f"{recipient_id}/{channel_no}")


class AlreadyResolved(Exception):
    """The alert was resolved first: there is nothing left to acknowledge."""


class MovedOn(Exception):
    """An ack (link) for an earlier reason of the alert, e.g. a warning's link after the breach superseded it."""


@dataclass(frozen=True, slots=True)
class DeadlineFact:
    """What a deadline event says, for the alert (no citizen data: reference, category, kommune, due time)."""

    event_type: str
    deadline_id: uuid.UUID
    case_id: uuid.UUID
    deadline_rule: str
    title: str
    category: str
    kommune: str
    due_at: datetime
    happened_at: datetime  # the deadline event's time: delivery latency is measured from here
    fraction: float | None = None
    reference: str | None = None  # from cases.v1, when notify has seen the case
    reschedules: int = 0  # the deadline's window: a breach in a later window (after a reschedule) is a new breach


@dataclass(frozen=True, slots=True)
class Notice:
    """One message about an alert (a stage) to some recipients; each recipient gets each stage once."""

    id: uuid.UUID
    alert_id: uuid.UUID
    stage: str
    recipients: tuple[str, ...]  # roster ids
    # Escalations and reminders stop at an ack; what reports an ack or a resolve never does.
    stoppable: bool = True


@dataclass(frozen=True, slots=True)
class Alert:
    id: uuid.UUID
    case_id: uuid.UUID
    deadline_id: uuid.UUID
    deadline_rule: str
    title: str
    category: str
    kommune: str
    due_at: datetime
    policy_rule: str
    reason: Reason
    severity: Severity
    state: AlertState
    chain: Chain
    level: int
    reminders: int
    raised_at: datetime
    updated_at: datetime
    happened_at: datetime
    notified: tuple[str, ...] = ()
    last_step: tuple[str, ...] = ()  # recipients of the last stage reached: reminders go to them
    next_timer_at: datetime | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    acknowledged_by_name: str | None = None  # as people read it: the provider's or the roster's name
    resolved_at: datetime | None = None
    resolved_reason: str | None = None
    fraction: float | None = None
    # The deadline window (its reschedule count) the alert's current reason is about.
    generation: int = 0
    # A breach withdrawn: the action that showed the deadline met in time, and when it happened.
    resolved_action: str | None = None
    resolved_action_at: datetime | None = None
    # The trace that raised the alert (a W3C traceparent), set by the repository as it first writes the row;
    # the escalation timer's spans link to it.
    trace_context: str | None = None


def ack_scope(reason: str, generation: int) -> str:
    """What an ack (link) is for: the alert's reason in one window. Also names its stages, so each window's
    breach, escalations and ack are new messages rather than repeats of the earlier window's."""
    return reason if generation == 0 else f"{reason}-g{generation}"


@dataclass(frozen=True, slots=True)
class Decision:
    alert: Alert | None
    notices: list[Notice] = field(default_factory=list)
    events: list[EventData] = field(default_factory=list)
    audit: list[tuple[str, dict[str, object]]] = field(default_factory=list)
    changed: bool = True
    # Escalations and reminders of the alert not yet sent are dropped (an ack, a resolve, a supersede).
    stop_pending: bool = False


def _recipients(roster: Roster, groups: tuple[str, ...], kommune: str, at: datetime) -> tuple[Recipient, ...]:
    found: dict[str, Recipient] = {}
    for group in groups:
        for recipient in roster.recipients(group, kommune, at):
            found.setdefault(recipient.id, recipient)
    return tuple(found.values())


def _told(alert: Alert, recipients: tuple[Recipient, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys([*alert.notified, *(r.id for r in recipients)]))


def on_deadline(existing: Alert | None, fact: DeadlineFact, rule: AlertRule, roster: Roster, now: datetime) -> Decision:
    """A deadline event that the policy says raises an alert: raise it, update it, supersede it, or ignore it."""
    if existing is not None and existing.state == "resolved":
        return Decision(existing, audit=[("ignored", {"event": fact.event_type, "why": "alert already resolved"})],
                        changed=False)  # fmt: skip
    recipients = _recipients(roster, rule.notify, fact.kommune, now)
    ids = [r.id for r in recipients]
    if existing is None:
        alert_id = alert_id_for(fact.case_id, fact.deadline_rule)
        alert = Alert(
            id=alert_id, case_id=fact.case_id, deadline_id=fact.deadline_id, deadline_rule=fact.deadline_rule,
            title=fact.title, category=fact.category, kommune=fact.kommune, due_at=fact.due_at,
            policy_rule=rule.id, reason=rule.reason, severity=rule.severity, state="open", chain=rule.chain,
            level=0, reminders=0, raised_at=now, updated_at=now, happened_at=fact.happened_at,
            notified=tuple(ids), last_step=tuple(ids), next_timer_at=now + rule.chain.ack_timeout,
            fraction=fact.fraction, generation=fact.reschedules,
        )  # fmt: skip
        raised = ev.AlertRaised(
            alert_id=alert_id, case_id=fact.case_id, deadline_id=fact.deadline_id, rule_id=fact.deadline_rule,
            reason=rule.reason, severity=rule.severity, title=fact.title, recipients=ids, raised_at=now,
            due_at=fact.due_at, category=fact.category, reference=fact.reference,
        )  # fmt: skip
        return Decision(
            alert,
            notices=[Notice(notice_id_for(alert_id, "raised"), alert_id, "raised", tuple(ids))],
            events=[raised],
            audit=[("raised", {"reason": rule.reason, "severity": rule.severity, "recipients": ids})],
        )
    if fact.reschedules < existing.generation:
        earlier: dict[str, object] = {"event": fact.event_type, "why": "from an earlier window (before a reschedule)"}
        return Decision(existing, audit=[("ignored", earlier)], changed=False)
    new_window = fact.reschedules > existing.generation
    if not new_window and RANK[rule.reason] <= RANK[existing.reason]:
        # A later warning (or a warning after an acute alert): the same alert, newer numbers; the
        # officers already know, and escalation covers silence, so nobody is messaged again.
        if RANK[rule.reason] < RANK[existing.reason]:
            why: dict[str, object] = {"event": fact.event_type, "why": "alert already more severe"}
            return Decision(existing, audit=[("ignored", why)], changed=False)
        alert = replace(existing, updated_at=now, fraction=fact.fraction or existing.fraction, due_at=fact.due_at)
        updated = ev.AlertUpdated(
            alert_id=alert.id, case_id=alert.case_id, reason=alert.reason, severity=alert.severity,
            updated_at=now, due_at=alert.due_at,
        )  # fmt: skip
        return Decision(alert, events=[updated], audit=[("updated", {"fraction": fact.fraction})])
    # Supersede: a breach replaces warnings (or an acute alert); it is open again and starts its own chain.
    # So does any event of a later window (after a reschedule): a second breach is a new breach, and
    # an ack of the first one is not an ack of it.
    stage = ack_scope(rule.reason.removeprefix("deadline_"), fact.reschedules)
    alert = replace(
        existing, policy_rule=rule.id, reason=rule.reason, severity=rule.severity, state="open", chain=rule.chain,
        level=0, reminders=0, updated_at=now, happened_at=fact.happened_at, due_at=fact.due_at,
        notified=_told(existing, recipients), last_step=tuple(ids), next_timer_at=now + rule.chain.ack_timeout,
        generation=fact.reschedules,
        acknowledged_at=None if new_window else existing.acknowledged_at,
        acknowledged_by=None if new_window else existing.acknowledged_by,
        acknowledged_by_name=None if new_window else existing.acknowledged_by_name,
    )  # fmt: skip
    updated = ev.AlertUpdated(
        alert_id=alert.id, case_id=alert.case_id, reason=rule.reason, severity=rule.severity,
        superseded=existing.reason, recipients=ids, updated_at=now, due_at=alert.due_at,
    )  # fmt: skip
    return Decision(
        alert,
        notices=[Notice(notice_id_for(alert.id, stage), alert.id, stage, tuple(ids))],
        events=[updated],
        audit=[
            ("superseded", {"from": existing.reason, "to": rule.reason, "recipients": ids, "window": fact.reschedules})
        ],
        stop_pending=True,
    )


def acknowledge(
    alert: Alert,
    by: str,
    now: datetime,
    via: Literal["api", "link", "console"],
    *,
    by_name: str | None = None,
    for_reason: str | None = None,
) -> Decision:
    """Stops escalation and reminders at once and tells the others who were notified; twice is once.

    `by`: the person's stable id (their roster id when they are on the roster); `by_name`: their
    name as the identity provider or the roster gives it, never typed text.

    `for_reason`: what the officer was told (an ack link's reason); an ack of a warning is not an
    ack of the breach that superseded it (raises MovedOn).
    """
    if alert.state == "resolved":
        raise AlreadyResolved(alert.id)
    if for_reason is not None and for_reason != ack_scope(alert.reason, alert.generation):
        raise MovedOn(alert.id)
    if alert.state == "acknowledged":
        return Decision(alert, changed=False)
    others = tuple(r for r in alert.notified if r != by)
    name = by_name or by
    acked = replace(alert, state="acknowledged", acknowledged_at=now, acknowledged_by=by, acknowledged_by_name=name,
                    next_timer_at=None, updated_at=now)  # fmt: skip
    event = ev.AlertAcknowledged(alert_id=alert.id, case_id=alert.case_id, by=by, by_name=name, acknowledged_at=now,
                                 via=via)  # fmt: skip
    stage = f"acknowledged-{ack_scope(alert.reason, alert.generation)}"
    return Decision(
        acked,
        notices=[_notice_to_ids(alert.id, stage, others)],
        events=[event],
        audit=[("acknowledged", {"by": by, "name": name, "via": via})],
        stop_pending=True,
    )


def resolve(alert: Alert, why: str, now: datetime) -> Decision:
    """Met or cancelled: closes the alert and tells everyone who was notified. Final."""
    if alert.state == "resolved":
        return Decision(alert, audit=[("ignored", {"why": "already resolved", "resolve": why})], changed=False)
    done = replace(alert, state="resolved", resolved_at=now, resolved_reason=why, next_timer_at=None, updated_at=now)
    return _resolved(alert, done, {"reason": why}, now)


def _resolved(alert: Alert, done: Alert, audit: dict[str, object], now: datetime) -> Decision:
    assert done.resolved_reason is not None
    event = ev.AlertResolved(alert_id=alert.id, case_id=alert.case_id, resolved_at=now, reason=done.resolved_reason)
    return Decision(
        done,
        notices=[_notice_to_ids(alert.id, "resolved", alert.notified)],
        events=[event],
        audit=[("resolved", audit)],
        stop_pending=True,
    )


BREACH_WITHDRAWN = "breach_withdrawn"


def withdraw_breach(alert: Alert, action: str, action_at: datetime, window: int, now: datetime) -> Decision:
    """The breach this alert told of was none: `action` happened at `action_at`, by the due time.

    Resolves the alert (reason `breach_withdrawn`) and tells everyone who was notified, with the
    action and its time. Only an alert whose current reason is that breach (the same deadline window)
    is withdrawn: a warning or an acute alert never said the promise was broken, so the `deadline.met`
    that follows the withdrawal resolves it as met, like any deadline met in time.
    """
    if alert.state == "resolved":
        return Decision(alert, audit=[("ignored", {"why": "already resolved", "resolve": BREACH_WITHDRAWN})],
                        changed=False)  # fmt: skip
    if alert.reason != "deadline_breached" or alert.generation != window:
        why: dict[str, object] = {
            "event": "deadline.breach_withdrawn",
            "why": f"the alert is a {alert.reason}, not this breach",
        }
        return Decision(alert, audit=[("ignored", why)], changed=False)
    done = replace(
        alert, state="resolved", resolved_at=now, resolved_reason=BREACH_WITHDRAWN, next_timer_at=None,
        updated_at=now, resolved_action=action, resolved_action_at=action_at,
    )  # fmt: skip
    detail: dict[str, object] = {"reason": BREACH_WITHDRAWN, "action": action, "action_at": action_at.isoformat()}
    return _resolved(alert, done, detail, now)


def reschedule(alert: Alert, due_at: datetime, now: datetime) -> Decision:
    """The citizen asked for a later time: the alert's due time (the console's countdown) moves with it.

    An unacknowledged alert's escalation timer starts again from now: its ack timeout counts from
    the new situation, not from a moment that belonged to the old due time.
    """
    if alert.state == "resolved" or alert.due_at == due_at:
        return Decision(alert, changed=False)
    timer = now + alert.chain.ack_timeout if alert.state in ACTIVE else alert.next_timer_at
    moved = replace(alert, due_at=due_at, updated_at=now, next_timer_at=timer)
    event = ev.AlertUpdated(alert_id=alert.id, case_id=alert.case_id, reason=alert.reason, severity=alert.severity,
                            updated_at=now, due_at=due_at)  # fmt: skip
    return Decision(moved, events=[event], audit=[("rescheduled", {"from": alert.due_at.isoformat(),
                                                                   "to": due_at.isoformat()})])  # fmt: skip


def _notice_to_ids(alert_id: uuid.UUID, stage: str, ids: tuple[str, ...], *, stoppable: bool = False) -> Notice:
    return Notice(notice_id_for(alert_id, stage), alert_id, stage, ids, stoppable=stoppable)


def on_timer(alert: Alert, roster: Roster, now: datetime) -> Decision:
    """The ack timeout ran out: the chain's next step is told (`alert.escalated`); past the end, a reminder."""
    if alert.state not in ACTIVE or alert.next_timer_at is None or alert.next_timer_at > now:
        return Decision(alert, changed=False)
    chain = alert.chain
    if alert.level < len(chain.steps):
        level = alert.level + 1
        group = chain.steps[level - 1]
        recipients = _recipients(roster, (group,), alert.kommune, now)
        ids = tuple(r.id for r in recipients)
        last = level == len(chain.steps)
        escalated = replace(
            alert, state="escalated", level=level, updated_at=now, notified=_told(alert, recipients), last_step=ids,
            next_timer_at=now + (chain.reminder_interval if last else chain.ack_timeout),
        )  # fmt: skip
        stage = f"{ack_scope(alert.reason, alert.generation)}-escalated-{level}"
        event = ev.AlertEscalated(alert_id=alert.id, case_id=alert.case_id, to=group, level=level, escalated_at=now,
                                  recipients=list(ids))  # fmt: skip
        return Decision(
            escalated,
            notices=[Notice(notice_id_for(alert.id, stage), alert.id, stage, ids)],
            events=[event],
            audit=[("escalated", {"level": level, "to": group, "recipients": list(ids)})],
        )
    count = alert.reminders + 1
    reminded = replace(alert, reminders=count, updated_at=now, next_timer_at=now + chain.reminder_interval)
    stage = f"{ack_scope(alert.reason, alert.generation)}-reminder-{count}"
    return Decision(
        reminded,
        notices=[_notice_to_ids(alert.id, stage, alert.last_step, stoppable=True)],
        audit=[("reminder", {"number": count, "recipients": list(alert.last_step)})],
    )
