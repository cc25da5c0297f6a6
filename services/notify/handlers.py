"""Notify's use cases, one function per event or command: what happens when X. Each runs in the caller's transaction.

Read this file to learn the service: a deadline event raises, updates, supersedes or resolves an
alert; an ack stops its escalation; the timer escalates or reminds; a delivery's outcome is
recorded, retried later, or handed to the recipient's next channel. Every step writes its audit
row and its `alerts.v1` event (outbox) in the same transaction as the state change.

Each use case takes a unit of work (shared/unit_of_work.py) and opens its transaction, which hands it
the `NotifyRepository` below (Postgres, or the in-memory fake of tests/unit/notify/fakes.py); it
returns what it did, and the caller counts once the transaction committed. A consumer's unit of work
is its inbox transaction, so the inbox row and the effect commit together.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from services.notify.domain import alert as domain
from services.notify.domain.alert import Alert, DeadlineFact, Decision
from services.notify.domain.delivery import (
    AfterAttempt,
    Backoff,
    Cancelled,
    Delivered,
    Delivery,
    Failed,
    Outcome,
    Retry,
    after_attempt,
    deliveries_for,
)
from services.notify.domain.policy import RESOLVING_EVENTS, Policy
from services.notify.domain.roster import Roster
from shared import tracing
from shared.db import is_transient
from shared.events import CloudEvent, EventData, EventMeta
from shared.events import alerts as alert_events
from shared.events import cases as case_events
from shared.events import deadlines as deadline_events
from shared.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)


# One audit row: kind, detail, actor (None: the service itself).
AuditEntry = tuple[str, dict[str, Any], str | None]


class Row(Protocol):
    """A stored row read by column name: the shared part of an alert (an asyncpg Record, or a dict)."""

    def __getitem__(self, key: str, /) -> Any: ...


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A claimed alert row that does not map to an Alert (e.g. a damaged chain snapshot): to be parked."""

    id: uuid.UUID
    error: Exception


class NotifyRepository(Protocol):
    """Storage as the use cases see it, bound to the unit of work's one transaction.

    Alerts and deliveries are domain objects, mapped from their rows by the repository.
    """

    async def remember_case(self, case_id: uuid.UUID, reference: str, category: str, kommune: str) -> bool:
        """Keeps a case's reference (first one wins); True if this one was the first."""
        ...

    async def reference_of(self, case_id: uuid.UUID) -> str | None: ...

    async def lock_new_alert(self, alert_id: uuid.UUID) -> None:
        """Serialises the creation of one alert (two consumers during a rebalance)."""
        ...

    async def lock_alert(self, alert_id: uuid.UUID) -> Alert | None:
        """The alert, locked until the transaction ends."""
        ...

    async def lock_alert_of_case(self, alert_id: uuid.UUID, case_id: uuid.UUID) -> tuple[Alert | None, str | None]:
        """The alert, locked as by `lock_alert`, and the case's reference as known now (None if not yet)."""
        ...

    async def save_alert(self, alert: Alert) -> None: ...

    async def cancel_stoppable(self, alert_id: uuid.UUID, why: str) -> int:
        """Pending escalations and reminders not in flight are not sent at all."""
        ...

    async def add_deliveries(self, deliveries: Sequence[Delivery]) -> Sequence[Delivery]:
        """Writes the deliveries (`domain.delivery.deliveries_for`); one already there (same id) is not written
        twice. Returns the new ones."""
        ...

    async def audit(
        self, alert_id: uuid.UUID, at: datetime, kind: str, detail: dict[str, Any], actor: str | None = None
    ) -> None: ...

    async def audit_many(self, alert_id: uuid.UUID, at: datetime, entries: Sequence[AuditEntry]) -> None:
        """The rows in the order given, in one round trip."""
        ...

    async def emit(self, events: Sequence[EventData], *, kommune: str) -> list[CloudEvent]:
        """The events' envelopes (deterministic ids), written to the outbox; returns them."""
        ...

    async def claim_due_alerts(self, now: datetime, limit: int) -> Sequence[Alert | Unreadable]:
        """Alerts whose timer is due and that nobody else holds; locked until commit."""
        ...

    async def park_timers(self, parked: Sequence[tuple[uuid.UUID, str]]) -> None: ...

    async def share_alert(self, alert_id: uuid.UUID) -> Row | None:
        """The alert's case_id, kommune and state, held (shared) until commit: an ack or resolve waits."""
        ...

    async def lock_delivery(self, delivery_id: uuid.UUID, owner: str) -> Delivery | None:
        """The delivery, locked, if `owner` still holds its lease; else None."""
        ...

    async def mark_delivered(self, delivery_id: uuid.UUID, at: datetime, owner: str) -> bool:
        """Delivered, if `owner` still holds its lease (as `lock_delivery` finds it); else False, nothing changed."""
        ...

    async def mark_retry(self, delivery_id: uuid.UUID, at: datetime, error: str) -> None: ...

    async def mark_failed(self, delivery_id: uuid.UUID, error: str) -> None: ...

    async def disable_endpoint(self, target: str, reason: str) -> None: ...

    async def use_ack_link(self, delivery_id: uuid.UUID, alert_id: uuid.UUID) -> bool:
        """True the first time; a link works once."""
        ...

    def savepoint(self) -> AbstractAsyncContextManager[None]:
        """A nested transaction: an error inside undoes only what was written inside, then propagates."""
        ...


Uow = UnitOfWork[NotifyRepository]


@dataclass
class Context:
    """What the use cases need besides storage: the data files in force, and (for the entrypoints that build
    the unit of work) where events go."""

    policy: Callable[[], Policy]
    roster: Callable[[], Roster]
    alerts_topic: str


@dataclass
class Applied:
    """What a use case did, for the caller's metrics after commit."""

    alert: Alert | None
    events: list[CloudEvent]
    deliveries: int = 0
    shown: list[Delivery] = field(default_factory=list)  # console deliveries, delivered as written


class NotFound(Exception):
    pass


class LinkUsed(Exception):
    """The ack link was used before: a link works once."""


async def handle_case_event(uow: Uow, meta: EventMeta, payload: EventData) -> None:
    """cases.v1: remember the case's reference and category, which deadline events do not carry."""
    if isinstance(payload, case_events.CaseReported | case_events.TipReceived | case_events.OfficerRequested):
        async with uow.transaction() as repo:
            await repo.remember_case(payload.case_id, payload.reference, payload.category, meta.kommune)


def _fact(meta: EventMeta, payload: deadline_events.DeadlineData, reference: str | None) -> DeadlineFact:
    return DeadlineFact(
        event_type=payload.event_type,
        deadline_id=payload.deadline_id,
        case_id=payload.case_id,
        deadline_rule=payload.rule_id,
        title=payload.title,
        category=payload.category,
        kommune=meta.kommune,
        due_at=payload.due_at,
        happened_at=meta.time,
        fraction=getattr(payload, "fraction", None),
        reference=reference,
        reschedules=payload.reschedules,
    )


async def handle_deadline_event(uow: Uow, meta: EventMeta, payload: EventData, ctx: Context, now: datetime) -> Applied:
    """deadlines.v1: the policy decides whether it raises (or supersedes) an alert; met/cancelled resolve it,
    and a breach withdrawn resolves the breach alert telling everyone why."""
    if not isinstance(payload, deadline_events.DeadlineData):
        return Applied(None, [])
    async with uow.transaction() as repo:
        return await _on_deadline(repo, meta, payload, ctx, now)


async def _on_deadline(
    repo: NotifyRepository, meta: EventMeta, payload: deadline_events.DeadlineData, ctx: Context, now: datetime
) -> Applied:
    """What one deadline event does to its alert, in the use case's transaction."""
    alert_id = domain.alert_id_for(payload.case_id, payload.rule_id)
    if payload.event_type in RESOLVING_EVENTS:
        existing = await repo.lock_alert(alert_id)
        if existing is None:
            return Applied(None, [])  # nothing was raised for this deadline: nothing to resolve
        why = "met" if payload.event_type == deadline_events.MET else "cancelled"
        return await _apply(repo, domain.resolve(existing, why, now), ctx, now, actor="deadlines", since=meta.time)
    if isinstance(payload, deadline_events.DeadlineBreachWithdrawn):
        existing = await repo.lock_alert(alert_id)
        if existing is None:
            return Applied(None, [])  # no breach alert was raised: nobody to tell
        decision = domain.withdraw_breach(existing, payload.action, payload.action_at, payload.reschedules, now)
        return await _apply(repo, decision, ctx, now, actor="deadlines", since=meta.time)
    if isinstance(payload, deadline_events.DeadlineRescheduled):
        existing = await repo.lock_alert(alert_id)
        if existing is None:
            return Applied(None, [])
        decision = domain.reschedule(existing, payload.due_at, now)
        return await _apply(repo, decision, ctx, now, actor="deadlines", since=meta.time)
    rule = ctx.policy().rule_for(payload.event_type, payload.rule_id)
    if rule is None:
        return Applied(None, [])
    await repo.lock_new_alert(alert_id)
    # The reference comes with the lock (one round trip): only a new alert needs it, and it never changes.
    existing, known = await repo.lock_alert_of_case(alert_id, payload.case_id)
    reference = None if existing else known
    if payload.reference:  # may come before cases.v1; messages read the reference from case_refs
        first = await repo.remember_case(payload.case_id, payload.reference, payload.category, meta.kommune)
        if existing is None and known is None:
            # Ours, or one written since the lock's read (first wins), as reading case_refs now would find.
            reference = payload.reference if first else await repo.reference_of(payload.case_id)
    decision = domain.on_deadline(existing, _fact(meta, payload, reference), rule, ctx.roster(), now)
    return await _apply(repo, decision, ctx, now, actor="deadlines", since=meta.time)


@tracing.use_case
async def acknowledge(
    uow: Uow,
    alert_id: uuid.UUID,
    by: str,
    via: Literal["api", "link", "console"],
    ctx: Context,
    now: datetime,
    *,
    by_name: str | None = None,
    for_reason: str | None = None,
    key: str | None = None,
    link: uuid.UUID | None = None,
) -> Applied:
    """An officer takes responsibility: escalation and reminders stop at once; the others are told who.

    `by`: the person's stable id, `by_name` their name (the identity provider's for a signed-in
    officer, the roster's otherwise; by default the roster's name of `by`, else `by` itself).
    `key`: the API key's name when a police system acknowledges for `by`; the audit's actor, so
    the trail shows which key spoke for which officer. `link`: the delivery an ack link was sent
    in (`for_reason` is the reason it names); a link works once.
    Raises NotFound, LinkUsed, domain.AlreadyResolved when a resolve came first (the alert stays
    resolved), or domain.MovedOn when `for_reason` is no longer the alert's reason. Any of them
    rolls the transaction back, so a refused ack leaves its link unused.
    """
    async with uow.transaction() as repo:
        if link is not None and not await repo.use_ack_link(link, alert_id):
            raise LinkUsed(link)
        existing = await repo.lock_alert(alert_id)
        if existing is None:
            raise NotFound(alert_id)
        if by_name is None:
            officer = ctx.roster().find(by)
            by_name = officer.name if officer is not None else None
        decision = domain.acknowledge(existing, by, now, via, by_name=by_name, for_reason=for_reason)
        return await _apply(repo, decision, ctx, now, actor=f"key:{key}" if key else by)


@dataclass
class TimerRound:
    """What one round of the escalation timer did: the alerts it fired, and how many it had to park."""

    fired: list[Applied]
    parked: int = 0


async def fire_due_alerts(uow: Uow, ctx: Context, now: datetime, limit: int) -> TimerRound:
    """Escalates or reminds every due alert no other instance holds; each fires once (row lock + commit).

    Each alert fires in its own savepoint: one that cannot be read, decided, turned into events
    or written is parked (taken off the timer with its reason), and every other alert still fires.
    """
    done: list[Applied] = []
    parked: list[tuple[uuid.UUID, str]] = []
    async with uow.transaction() as repo:
        for alert in await repo.claim_due_alerts(now, limit):
            try:
                if isinstance(alert, Unreadable):
                    raise alert.error
                # Later than what raised the alert and on its own account: a trace of its own, linked to
                # the one that raised it; the deliveries and events written here continue it.
                with tracing.span(
                    "alert timer",
                    parent=tracing.new_trace(),
                    links=tracing.link_to(alert.trace_context),
                    attributes={"mvsj.alert_id": str(alert.id), "mvsj.case_id": str(alert.case_id)},
                ) as span:
                    async with repo.savepoint():  # undoes only this alert's writes if it fails
                        decision = domain.on_timer(alert, ctx.roster(), now)
                        done.append(await _apply(repo, decision, ctx, now, actor="timer"))
                    if decision.changed:
                        escalated = any(isinstance(e, alert_events.AlertEscalated) for e in decision.events)
                        span.update_name("alert escalation" if escalated else "alert reminder")
            except Exception as exc:
                if is_transient(exc):
                    raise  # the database is away: no alert is at fault, the next round tries again
                log.error("escalation timer: cannot fire alert %s; parking it", alert.id, exc_info=exc)
                parked.append((alert.id, f"{type(exc).__name__}: {exc}"[:500]))
        if parked:
            await repo.park_timers(parked)
            for alert_id, why in parked:
                await repo.audit(alert_id, now, "timer_parked", {"error": why}, actor="timer")
    return TimerRound(done, len(parked))


async def _apply(
    repo: NotifyRepository,
    decision: Decision,
    ctx: Context,
    now: datetime,
    *,
    actor: str,
    since: datetime | None = None,
) -> Applied:
    """Saves the decision: audit rows, the alert, its deliveries and events, in the use case's transaction.

    `since` is when the cause happened (a deadline event's time); delivery latency is measured
    from it. Escalations, reminders and acks happen now.
    """
    alert = decision.alert
    if alert is None:
        return Applied(None, [])
    audit: list[AuditEntry] = [(kind, detail, actor) for kind, detail in decision.audit]
    if not decision.changed:
        if audit:
            await repo.audit_many(alert.id, now, audit)
        return Applied(alert, [])
    await repo.save_alert(alert)
    if decision.stop_pending:
        await repo.cancel_stoppable(alert.id, f"not sent: alert {decision.audit[-1][0]}")
    roster = ctx.roster()
    added: list[Delivery] = []
    for notice in decision.notices:
        recipients = [r for r in (roster.find(i) for i in notice.recipients) if r is not None]
        added += await repo.add_deliveries(deliveries_for(notice, recipients, now=now, happened_at=since or now))
    shown = [d for d in added if d.state == "delivered"]
    shown_audit, shown_events = _shown(alert.id, alert.case_id, shown, now)
    # The decision's audit rows and the console's in one round trip (in that order, as they happened).
    await repo.audit_many(alert.id, now, [*audit, *shown_audit])
    events = await repo.emit([*decision.events, *shown_events], kommune=alert.kommune)
    return Applied(alert, events, len(added), shown)


def _shown(
    alert_id: uuid.UUID, case_id: uuid.UUID, shown: list[Delivery], now: datetime
) -> tuple[list[AuditEntry], list[EventData]]:
    """Audit rows and `alert.delivered` events for console deliveries, which are delivered as written."""
    audit: list[AuditEntry] = [
        ("delivered", {"delivery_id": str(d.id), "stage": d.stage, "channel": "console",
                       "recipient": d.recipient_id, "attempt": 1, "detail": "shown on the console"}, None)
        for d in shown
    ]  # fmt: skip
    return audit, [
        alert_events.AlertDelivered(
            alert_id=alert_id,
            case_id=case_id,
            channel="console",
            recipient=d.recipient_id,
            delivered_at=now,
            delivery_id=d.id,
            stage=d.stage,
            attempts=1,
        )
        for d in shown
    ]


async def record_outcome(
    uow: Uow,
    delivery: Delivery,
    outcome: Outcome,
    *,
    owner: str,
    ctx: Context,
    backoff: Backoff,
    random: Callable[[], float],
    now: datetime,
) -> tuple[str, list[CloudEvent]]:
    """One attempt's result: delivered; retry later (backoff, Retry-After); or failed, then the next channel.

    `domain.delivery.after_attempt` decides; only this row changes. Returns what became of it
    (delivered, retry, failed, cancelled; lost when this worker's lease ran out and another took the
    delivery over, whose result counts) and the events written.
    """
    # The alert first (shared), then the delivery: the order an ack takes them in. An ack waits
    # for this result, or this waits for the ack and sees it, so no next-channel row is written
    # after an ack has committed.
    async with uow.transaction() as repo:
        alert = await repo.share_alert(delivery.alert_id)
        if alert is None:
            return "lost", []
        decision = after_attempt(delivery, outcome, alert["state"], ctx.roster(), backoff, random, now)
        if isinstance(decision, Delivered):
            # The lease check and the update in one statement (the row is locked by the update itself).
            held = await repo.mark_delivered(delivery.id, now, owner)
        else:
            held = await repo.lock_delivery(delivery.id, owner) is not None
        if not held:
            return "lost", []
        return await _save_attempt(repo, delivery, outcome, decision, alert, now)


async def _save_attempt(
    repo: NotifyRepository, delivery: Delivery, outcome: Outcome, decision: AfterAttempt, alert: Row, now: datetime
) -> tuple[str, list[CloudEvent]]:
    """Writes what `after_attempt` decided (the delivery itself already marked if delivered): audit, events."""
    base = {"delivery_id": str(delivery.id), "stage": delivery.stage, "channel": delivery.channel,
            "recipient": delivery.recipient_id, "attempt": delivery.attempts}  # fmt: skip
    if isinstance(decision, Delivered):
        await repo.audit(delivery.alert_id, now, "delivered", base | {"detail": outcome.detail})
        event: EventData = alert_events.AlertDelivered(
            alert_id=delivery.alert_id, case_id=alert["case_id"], channel=delivery.channel,
            recipient=delivery.recipient_id, delivered_at=now, delivery_id=delivery.id, stage=delivery.stage,
            attempts=delivery.attempts,
        )  # fmt: skip
        return "delivered", await repo.emit([event], kommune=alert["kommune"])
    if isinstance(decision, Cancelled):
        await repo.mark_failed(delivery.id, decision.why)
        await repo.audit(delivery.alert_id, now, "delivery_stopped", base | {"error": outcome.detail})
        return "cancelled", []
    if isinstance(decision, Retry):
        await repo.mark_retry(delivery.id, decision.at, outcome.detail)
        await repo.audit(delivery.alert_id, now, "delivery_attempt_failed",
                         base | {"error": outcome.detail, "retry_in_seconds": round(decision.delay, 3)})  # fmt: skip
        return "retry", []
    assert isinstance(decision, Failed)
    if decision.disable_endpoint:
        await repo.disable_endpoint(delivery.target, outcome.detail)
    await repo.mark_failed(delivery.id, outcome.detail)
    added = await repo.add_deliveries([decision.next]) if decision.next else []
    failed_audit: AuditEntry = (
        "delivery_failed", base | {"error": outcome.detail, "next_channel": decision.next_channel}, None
    )  # fmt: skip
    failed = alert_events.AlertDeliveryFailed(
        alert_id=delivery.alert_id, case_id=alert["case_id"], channel=delivery.channel,
        recipient=delivery.recipient_id, error=outcome.detail[:300], attempt=delivery.attempts, failed_at=now,
        delivery_id=delivery.id, stage=delivery.stage, next_channel=decision.next_channel,
    )  # fmt: skip
    shown_audit, shown = _shown(delivery.alert_id, alert["case_id"], [d for d in added if d.state == "delivered"], now)
    await repo.audit_many(delivery.alert_id, now, [failed_audit, *shown_audit])
    return "failed", await repo.emit([failed, *shown], kommune=alert["kommune"])
