"""Intake's commands (a validated submission to store) and the events they publish, without the person.

A validated request becomes a NewCase (or a NewAction). Its personal part (text, place, contact
details, client address) goes to case_details only; `case_event` and `action_event` build the
cases.v1 events from the impersonal part alone, so the bus never sees a name, number or text.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.intake.domain.cases import CaseFacts, CaseKind, RecordedAction
from services.intake.domain.requests import ActionIn, OfficerRequestIn, ReportIn, TipIn
from shared.events import CloudEvent
from shared.events.cases import ActionRecorded, CaseReported, OfficerRequested, RequestType, TipReceived
from shared.reference import categories

SOURCE = "/mvsj/intake"

CaseSubmission = ReportIn | TipIn | OfficerRequestIn


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
    institution: str | None = None
    request_type: RequestType | None = None
    anonymous: bool = False

    @classmethod
    def of(
        cls, submission: CaseSubmission, *, case_id: uuid.UUID, received_at: datetime, client_address: str | None
    ) -> NewCase:
        anonymous = isinstance(submission, TipIn) and submission.anonymous
        contact = None if anonymous else submission.contact
        details = CaseDetails(
            description=submission.description,
            address=submission.address,
            postcode=submission.postcode,
            lat=submission.position.lat if submission.position else None,
            lon=submission.position.lon if submission.position else None,
            contact_name=contact.name if contact else None,
            contact_phone=contact.phone if contact else None,
            contact_email=contact.email if contact else None,
            # An anonymous tipster leaves no trace, not even where the request came from.
            client_address=None if anonymous else client_address,
        )
        common: dict[str, Any] = {
            "case_id": case_id,
            "category": submission.category,
            "focus_area": categories()[submission.category].focus_area,
            "kommune": submission.kommunekode(),
            "received_at": received_at,
            "details": details,
        }
        match submission:
            case ReportIn():
                return cls(
                    kind="report",
                    occurred_at=submission.occurred_at,
                    in_progress=submission.in_progress,
                    acute=submission.acute,
                    institution=submission.institution,
                    **common,
                )
            case TipIn():
                return cls(kind="tip", occurred_at=submission.occurred_at, anonymous=anonymous, **common)
            case OfficerRequestIn():
                return cls(kind="officer_request", request_type=submission.request_type, **common)


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
                institution=case.institution,
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
