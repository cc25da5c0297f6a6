"""Builders for the cases.v1 events the deadlines domain consumes, as intake would publish them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from services.deadlines.domain.case_deadlines import CaseDeadlines
from services.deadlines.domain.deadline import DeadlineEvent
from services.deadlines.domain.rules import RuleSet
from shared.events.cases import ActionRecorded, CaseReported, OfficerRequested, TipReceived
from shared.events.envelope import CloudEvent
from shared.reference import categories

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
ROSKILDE = "0265"


CaseEvent = CaseReported | TipReceived | OfficerRequested | ActionRecorded


def envelope(data: CaseEvent, time: datetime, kommune: str = ROSKILDE) -> CloudEvent:
    return CloudEvent.of(data, source="/mvsj/intake", subject=str(data.case_id), kommune=kommune, time=time)


def apply(case: CaseDeadlines, event: CloudEvent, rules: RuleSet) -> list[DeadlineEvent]:
    """`case.apply` as the consumer calls it: the payload, parsed once from the envelope, and its kommune."""
    return case.apply(event.payload(), event.kommune, rules)


def reported(
    case_id: uuid.UUID,
    category: str,
    received_at: datetime = T0,
    *,
    in_progress: bool | None = None,
    acute: bool | None = None,
    kommune: str = ROSKILDE,
    reference: str = "MV-1234",
) -> CloudEvent:
    data = CaseReported(
        case_id=case_id,
        reference=reference,
        category=category,
        focus_area=categories()[category].focus_area,
        received_at=received_at,
        in_progress=in_progress,
        acute=acute,
    )
    return envelope(data, received_at, kommune)


def tip(case_id: uuid.UUID, category: str, received_at: datetime = T0) -> CloudEvent:
    data = TipReceived(
        case_id=case_id,
        reference="MV-TIP1",
        category=category,
        focus_area=categories()[category].focus_area,
        received_at=received_at,
        anonymous=True,
    )
    return envelope(data, received_at)


def officer_requested(case_id: uuid.UUID, received_at: datetime = T0) -> CloudEvent:
    data = OfficerRequested(
        case_id=case_id,
        reference="MV-BEB1",
        request_type="traffic_control",
        category="traffic",
        focus_area=categories()["traffic"].focus_area,
        received_at=received_at,
    )
    return envelope(data, received_at)


def action(
    case_id: uuid.UUID,
    name: str,
    occurred_at: datetime,
    *,
    category: str,
    requested_time: datetime | None = None,
    outcome: str | None = None,
    action_id: uuid.UUID | None = None,
    recorded_at: datetime | None = None,
) -> CloudEvent:
    data = ActionRecorded(
        case_id=case_id,
        reference="MV-1234",
        action_id=action_id or uuid.uuid4(),
        action=name,
        category=category,
        occurred_at=occurred_at,
        recorded_at=recorded_at or occurred_at,
        requested_time=requested_time,
        outcome=outcome if outcome is not None else ("henlagt" if name == "closed" else None),
    )
    return envelope(data, occurred_at)
