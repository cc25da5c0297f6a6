"""The use cases: what each event on cases.v1, deadlines.v1 and alerts.v1 adds to the read model.

One function per event type turns it into facts (pure); `apply` writes a batch of them through the
`ReadModel` its unit of work opens (shared/unit_of_work.py). The live consumer applies one event at
a time, in its inbox transaction; the rebuild thousands at once: both through the same functions,
so both give the same rows. `council_report` reads the tallies of a period in one snapshot, and
`guarantee_compliance` the public figures of every quarter.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from services.reporting.domain import public
from services.reporting.domain.facts import (
    ActionFact,
    AlertAckFact,
    AlertFact,
    AlertStageFact,
    CaseFact,
    DeadlineFact,
    Fact,
    FactBatch,
    RuleFact,
)
from services.reporting.domain.kpis import DeadlineTally, PeriodFacts
from services.reporting.domain.periods import Period
from services.reporting.domain.public import GuaranteeCompliance
from services.reporting.domain.report import CouncilReport, RuleTerms, Scope, build_report
from shared.events import EventData, EventMeta
from shared.events import alerts as al
from shared.events import cases as cs
from shared.events import deadlines as dl
from shared.reference import categories
from shared.unit_of_work import UnitOfWork


class ReadModel(Protocol):
    """The read model as the use cases see it, bound to the unit of work's one transaction (or snapshot)."""

    async def save(self, batch: FactBatch) -> None:
        """Merges the batch's facts with the stored ones, as the facts' own `merge` does (idempotent)."""
        ...

    async def period_facts(
        self, start: datetime, end: datetime, kommune: str | None, window: Sequence[tuple[str, datetime]] = ()
    ) -> PeriodFacts:
        """Tallies for [start, end) in one kommune or the whole district (None); `window` adds the monthly trend."""
        ...

    async def deadline_months(self, start: datetime, end: datetime) -> tuple[DeadlineTally, ...]:
        """Deadline tallies of the whole district per local month they started in (`month`: YYYY-MM), over
        [start, end) (whole local months): the public figures of every quarter in one read."""
        ...

    async def freshness(self) -> dict[str, datetime]: ...

    async def rules_seen(self) -> list[dict[str, Any]]: ...


def case_reported(meta: EventMeta, data: cs.CaseReported) -> list[Fact]:
    return [_case(meta, data, "report")]


def tip_received(meta: EventMeta, data: cs.TipReceived) -> list[Fact]:
    return [_case(meta, data, "tip")]


def officer_requested(meta: EventMeta, data: cs.OfficerRequested) -> list[Fact]:
    return [_case(meta, data, "request")]


def _case(meta: EventMeta, data: cs.CaseReported | cs.TipReceived | cs.OfficerRequested, kind: str) -> CaseFact:
    return CaseFact(
        case_id=data.case_id,
        kommune=meta.kommune,
        kind=kind,
        category=data.category,
        focus_area=data.focus_area,
        received_at=data.received_at,
    )


def action_recorded(meta: EventMeta, data: cs.ActionRecorded) -> list[Fact]:
    category = categories().get(data.category)
    facts: list[Fact] = [
        ActionFact(
            action_id=data.action_id,
            case_id=data.case_id,
            kommune=meta.kommune,
            action=data.action,
            category=data.category,
            focus_area=category.focus_area if category else "lokal_tilstedevaerelse",
            occurred_at=data.occurred_at,
        )
    ]
    if data.action == "on_scene":
        # Rigspolitiet's response time ends at the first patrol on scene.
        facts.append(CaseFact(case_id=data.case_id, kommune=meta.kommune, first_on_scene_at=data.occurred_at))
    return facts


def _deadline(meta: EventMeta, data: dl.DeadlineData, as_of: Any, **outcome: Any) -> DeadlineFact:
    return DeadlineFact(
        deadline_id=data.deadline_id,
        case_id=data.case_id,
        rule_id=data.rule_id,
        title=data.title,
        basis=data.basis,
        window_set_by=data.window_set_by,
        kommune=meta.kommune,
        category=data.category,
        focus_area=data.focus_area,
        started_at=data.started_at,
        due_at=data.due_at,
        due_as_of=as_of,
        **outcome,
    )


def deadline_started(meta: EventMeta, data: dl.DeadlineStarted) -> list[Fact]:
    return [
        _deadline(meta, data, data.started_at, window_seconds=data.window_seconds),
        RuleFact(
            rule_id=data.rule_id,
            title=data.title,
            basis=data.basis,
            window_set_by=data.window_set_by,
            window_seconds=data.window_seconds,
            seen_at=data.started_at,
        ),
    ]


def deadline_warning(meta: EventMeta, data: dl.DeadlineWarning) -> list[Fact]:
    return [_deadline(meta, data, data.warned_at)]


def deadline_met(meta: EventMeta, data: dl.DeadlineMet) -> list[Fact]:
    return [
        _deadline(
            meta,
            data,
            data.met_at,
            met_at=data.met_at,
            met_late=data.late,
            met_action=data.action,
            response_seconds=data.response_seconds,
        )
    ]


def deadline_breached(meta: EventMeta, data: dl.DeadlineBreached) -> list[Fact]:
    return [_deadline(meta, data, data.breached_at, breached_at=data.breached_at)]


def deadline_cancelled(meta: EventMeta, data: dl.DeadlineCancelled) -> list[Fact]:
    return [
        _deadline(
            meta,
            data,
            data.cancelled_at,
            cancelled_at=data.cancelled_at,
            outcome=data.outcome,
            breached_at=data.breached_at,
        )
    ]


def deadline_breach_withdrawn(meta: EventMeta, data: dl.DeadlineBreachWithdrawn) -> list[Fact]:
    """The breach was none (the action came in time, its news late): the deadline is not counted breached;
    the deadline.met that follows (late=false) counts it met within the window."""
    return [_deadline(meta, data, data.action_at, breach_withdrawn=True)]


def deadline_rescheduled(meta: EventMeta, data: dl.DeadlineRescheduled) -> list[Fact]:
    return [_deadline(meta, data, data.rescheduled_at, rescheduled=True)]


def _alert(meta: EventMeta, data: al.AlertData, **facts: Any) -> AlertFact:
    return AlertFact(alert_id=data.alert_id, case_id=data.case_id, kommune=meta.kommune, **facts)


def alert_raised(meta: EventMeta, data: al.AlertRaised) -> list[Fact]:
    return [
        _alert(
            meta,
            data,
            deadline_id=data.deadline_id,
            rule_id=data.rule_id,
            reason=data.reason,
            severity=data.severity,
            severity_as_of=data.raised_at,
            raised_at=data.raised_at,
        ),
        AlertStageFact(alert_id=data.alert_id, started_at=data.raised_at),
    ]


def alert_updated(meta: EventMeta, data: al.AlertUpdated) -> list[Fact]:
    """A later warning or a reschedule changes the latest severity only; a supersede (a breach replacing a
    warning) also starts a new stage: the alert is open again and its time to acknowledge starts anew."""
    facts: list[Fact] = [_alert(meta, data, reason=data.reason, severity=data.severity, severity_as_of=data.updated_at)]
    if data.superseded is not None:
        facts.append(AlertStageFact(alert_id=data.alert_id, started_at=data.updated_at))
    return facts


def alert_delivered(meta: EventMeta, data: al.AlertDelivered) -> list[Fact]:
    return [_alert(meta, data, first_delivered_at=data.delivered_at)]


def alert_acknowledged(meta: EventMeta, data: al.AlertAcknowledged) -> list[Fact]:
    return [_alert(meta, data), AlertAckFact(alert_id=data.alert_id, acknowledged_at=data.acknowledged_at)]


def alert_escalated(meta: EventMeta, data: al.AlertEscalated) -> list[Fact]:
    return [_alert(meta, data, escalation_level=data.level)]


def alert_resolved(meta: EventMeta, data: al.AlertResolved) -> list[Fact]:
    return [_alert(meta, data, resolved_at=data.resolved_at)]


FactsOf = Callable[[EventMeta, Any], list[Fact]]

# Event type -> its use case. alerts.v1 grows new types (notify's work): those not listed here
# are skipped by the consumer, and a delivery failure adds nothing councils read.
HANDLERS: dict[type[EventData], FactsOf] = {
    cs.CaseReported: case_reported,
    cs.TipReceived: tip_received,
    cs.OfficerRequested: officer_requested,
    cs.ActionRecorded: action_recorded,
    dl.DeadlineStarted: deadline_started,
    dl.DeadlineWarning: deadline_warning,
    dl.DeadlineMet: deadline_met,
    dl.DeadlineBreached: deadline_breached,
    dl.DeadlineCancelled: deadline_cancelled,
    dl.DeadlineRescheduled: deadline_rescheduled,
    dl.DeadlineBreachWithdrawn: deadline_breach_withdrawn,
    al.AlertRaised: alert_raised,
    al.AlertUpdated: alert_updated,
    al.AlertDelivered: alert_delivered,
    al.AlertAcknowledged: alert_acknowledged,
    al.AlertEscalated: alert_escalated,
    al.AlertResolved: alert_resolved,
}
HANDLED_TYPES = frozenset(model.event_type for model in HANDLERS)


def add_event(batch: FactBatch, meta: EventMeta, payload: EventData) -> bool:
    """Folds one event's facts into `batch`; False for a type reporting does not read."""
    facts_of = HANDLERS.get(type(payload))
    if facts_of is None:
        return False
    batch.add(payload.topic, meta.time, facts_of(meta, payload))
    return True


async def apply(uow: UnitOfWork[ReadModel], batch: FactBatch) -> None:
    """Writes a batch's facts, merged with what the read model holds (idempotent)."""
    async with uow.transaction() as read_model:
        await read_model.save(batch)


async def handle(uow: UnitOfWork[ReadModel], meta: EventMeta, payload: EventData) -> None:
    """The live consumer's use case: one event, in the transaction that also records it in the inbox."""
    batch = FactBatch()
    if add_event(batch, meta, payload):
        await apply(uow, batch)


async def council_report(
    uow: UnitOfWork[ReadModel], *, scope: Scope, period: Period, focus_area: str | None, threshold: int, now: datetime
) -> CouncilReport:
    """The query use case: reads the tallies of the period, the previous one and a year earlier, in one
    snapshot, and computes the report."""
    window = [(str(m), m.start) for m in period.trailing_months(12)]
    # A year's previous period is the year earlier: read once.
    earlier = (
        [period.previous()]
        if period.previous() == period.year_earlier()
        else [period.previous(), period.year_earlier()]
    )
    async with uow.transaction() as read_model:
        # Every query goes out at once; a snapshot's connections take them as they come free.
        current, freshness, rules, *before = await asyncio.gather(
            read_model.period_facts(period.start, period.end, scope.kommune, window),
            read_model.freshness(),
            read_model.rules_seen(),
            *(read_model.period_facts(p.start, p.end, scope.kommune) for p in earlier),
        )
    previous, year_earlier = before[0], before[-1]
    return build_report(
        scope=scope,
        period=period,
        focus_area=focus_area,
        threshold=threshold,
        generated_at=now,
        current=current,
        previous=previous,
        year_earlier=year_earlier,
        freshness=freshness,
        rules=[RuleTerms(**r) for r in rules],
    )


async def guarantee_compliance(uow: UnitOfWork[ReadModel], *, threshold: int, now: datetime) -> GuaranteeCompliance:
    """The public figures: each guarantee per kommune and quarter, from the quarter they came into force to the
    one under way, read in one snapshot."""
    running = Period.containing(now, "quarter")
    async with uow.transaction() as read_model:
        tallies, rules, freshness = await asyncio.gather(
            read_model.deadline_months(public.IN_FORCE.start, running.end),
            read_model.rules_seen(),
            read_model.freshness(),
        )
    return public.guarantee_compliance(
        tallies,
        [RuleTerms(**r) for r in rules],
        now=now,
        threshold=threshold,
        data_as_of=max(freshness.values(), default=None),
    )
