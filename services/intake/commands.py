"""Intake's commands (a validated submission to store) and the events they publish, without the person.

A validated request becomes a NewCase (or a NewAction). Its personal part (text, place, contact
details, client address) goes to case_details only; `case_event` and `action_event` build the
cases.v1 events from the impersonal part alone, so the bus never sees a name, number or text.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from services.intake.domain.cases import CaseFacts, CaseKind, RecordedAction
from shared.events import CloudEvent
from shared.events.cases import ActionRecorded, CaseReported, OfficerRequested, RequestType, TipReceived

if TYPE_CHECKING:
    # The validated body of a police action is the command's payload; only its fields are read here.
    from services.intake.entrypoints.bodies import ActionIn

SOURCE = "/mvsj/intake"


@dataclass(frozen=True, slots=True)
class CaseDetails:
    """The personal part of a case (case_details). repr=False: it never shows up in a log or traceback."""

    description: str = field(repr=False)
    address: str | None = field(default=None, repr=False)
    postcode: str | None = field(default=None, repr=False)
    lat: float | None = field(default=None, repr=False)
    lon: float | None = field(default=None, repr=False)
    contact_name: str | None = field(default=None, repr=False)
    contact_phone: str | None = field(default=None, repr=False)
    contact_email: str | None = field(default=None, repr=False)
    client_address: str | None = field(default=None, repr=False)
    # drug_dealing_school: the school as the citizen typed it. Free text, so it never reaches the bus.
    institution: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class NewCase:
    """A report, tip or Bestil en betjent request that passed validation and is about to be stored."""

    case_id: uuid.UUID
    kind: CaseKind
    category: str
    focus_area: str
    kommune: str
    received_at: datetime
    details: CaseDetails
    occurred_at: datetime | None = None
    in_progress: bool | None = None
    acute: bool | None = None
    request_type: RequestType | None = None
    anonymous: bool = False


def case_event(case: NewCase, reference: str, event_id: uuid.UUID | None = None) -> CloudEvent:
    """The cases.v1 event for an accepted case: its facts, never its details."""
    data: CaseReported | TipReceived | OfficerRequested
    common: dict[str, Any] = {
        "case_id": case.case_id,
        "reference": reference,
        "category": case.category,
        "focus_area": case.focus_area,
        "received_at": case.received_at,
    }
    match case.kind:
        case "report":
            data = CaseReported(
                occurred_at=case.occurred_at,
                in_progress=case.in_progress,
                acute=case.acute,
                channel="portal",
                **common,
            )
        case "tip":
            data = TipReceived(occurred_at=case.occurred_at, anonymous=case.anonymous, **common)
        case "officer_request":
            assert case.request_type is not None
            data = OfficerRequested(request_type=case.request_type, **common)
    return CloudEvent.of(
        data, source=SOURCE, subject=str(case.case_id), kommune=case.kommune, time=case.received_at, event_id=event_id
    )


@dataclass(frozen=True, slots=True)
class StoredCase:
    """A case as the action rules need it, with the actions recorded on it so far."""

    case_id: uuid.UUID
    reference: str
    kommune: str
    facts: CaseFacts
    actions: tuple[RecordedAction, ...]


@dataclass(frozen=True, slots=True)
class NewAction:
    """A police action that passed validation; whether the case allows it is decided in its transaction."""

    action_id: uuid.UUID
    case_id: uuid.UUID
    request: ActionIn
    recorded_at: datetime
    recorded_by: str

    @property
    def recorded(self) -> RecordedAction:
        return recorded_action(self.request)


def recorded_action(request: ActionIn) -> RecordedAction:
    """The action as the domain's rules see it."""
    return RecordedAction(action=request.action, occurred_at=request.occurred_at, requested_time=request.requested_time)


def action_event(case: StoredCase, action: NewAction) -> CloudEvent:
    """case.action_recorded, carrying the case's category so consumers need not look it up."""
    request = action.request
    data = ActionRecorded(
        case_id=case.case_id,
        reference=case.reference,
        action_id=action.action_id,
        action=request.action,
        category=case.facts.category,
        occurred_at=request.occurred_at,
        recorded_at=action.recorded_at,
        requested_time=request.requested_time,
        outcome=request.outcome,
        officer_id=request.officer_id,
    )
    return CloudEvent.of(data, source=SOURCE, subject=str(case.case_id), kommune=case.kommune, time=request.occurred_at)
