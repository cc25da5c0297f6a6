"""Intake's use cases: what happens when a case (report, tip, Bestil en betjent) is submitted and when police act.

Each use case runs in one transaction of a `UnitOfWork` (Postgres in the service, a fake in unit
tests): the idempotency key's row, the case (or action) rows and the outbox row commit together or
not at all, so a failure at any moment leaves nothing half-written, and an accepted case always has
its event waiting in the outbox. Counting and logging happen after the commit. The status read
(`read_status`) has the same shape: one transaction, one load, the domain's view of it.
"""

from __future__ import annotations

import logging
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from services.intake.domain.cases import (
    CaseFacts,
    CaseKind,
    CaseStatusView,
    Conflict,
    RecordedAction,
    decide_action,
    status_view,
)
from services.intake.domain.reference import new_reference
from services.intake.metrics import count_accepted
from shared import tracing
from shared.events import CloudEvent, envelope
from shared.events.cases import ActionRecorded, CaseReported, OfficerRequested, RequestType, TipReceived
from shared.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    # The validated body of a police action is the command's payload; only its fields are read here.
    from services.intake.entrypoints.bodies import ActionIn

log = logging.getLogger(__name__)


# --- Commands, and the events they publish without the person ----------------------------------
# A validated request becomes a NewCase (or a NewAction). Its personal part (text, place, contact
# details, client address) goes to case_details only; `case_event` and `action_event` build the
# cases.v1 events from the impersonal part alone, so the bus never sees a name, number or text.

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
    return envelope(data, source=SOURCE, kommune=case.kommune, event_id=event_id)


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
    return envelope(data, source=SOURCE, kommune=case.kommune)


# --- Answers, refusals and storage -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    """An Idempotency-Key as one API client sent it, with the hash of the request it came with."""

    client: str
    key: str
    request_hash: str


@dataclass(frozen=True, slots=True)
class Answer:
    """What the caller is told: the first answer to a request, and whether this is a replay of it."""

    status_code: int
    body: dict[str, Any]
    replayed: bool = False


class CaseNotFound(LookupError):
    pass


class ActionRefused(Exception):
    """The case does not take this action now (the domain's Conflict)."""

    def __init__(self, conflict: Conflict) -> None:
        super().__init__(conflict.reason)
        self.code = conflict.code
        self.reason = conflict.reason


class IdempotencyKeyReused(Exception):
    """The key was used before, with a different request."""


def status_url(case_id: uuid.UUID) -> str:
    return f"/v1/cases/{case_id}"


def accepted_body(case_id: uuid.UUID, reference: str, **extra: Any) -> dict[str, Any]:
    """The 202 answer, also stored for Idempotency-Key replays; nothing personal in it."""
    return {"case_id": str(case_id), "reference": reference, "status_url": status_url(case_id)} | extra


class CaseRepository(Protocol):
    """Storage inside one transaction, as the use cases see it (adapters/repository.py)."""

    async def claim_key(self, key: IdempotencyKey, answer: Answer | None = None) -> Answer | None:
        """Claims the key (None), or returns the answer its first use committed (raises IdempotencyKeyReused)."""
        ...

    async def remember(self, key: IdempotencyKey, answer: Answer) -> None:
        """Replaces the answer of a key claimed before; a key never claimed keeps nothing."""
        ...

    async def insert_case(self, case: NewCase, reference: str) -> str:
        """Stores the case under `reference`, or a fresh one while that is taken; returns the one it got."""
        ...

    async def load_case(self, case_id: uuid.UUID, *, for_update: bool) -> StoredCase | None: ...

    async def insert_action(self, action: NewAction, status: str) -> None: ...

    async def emit(self, event: CloudEvent) -> None:
        """Writes the event to the outbox, in this transaction."""
        ...


Uow = UnitOfWork[CaseRepository]


@tracing.use_case
async def report_case(
    uow: Uow, case: NewCase, key: IdempotencyKey | None, *, rng: random.Random | None = None
) -> Answer:
    """A citizen reports a burglary (or any report, tip or Bestil en betjent request): store it, publish its event."""
    reference = new_reference(rng)
    answer = Answer(202, accepted_body(case.case_id, reference))
    async with uow.transaction() as repo:
        # The key is claimed with its answer already in it: one round trip fewer per report.
        earlier = await repo.claim_key(key, answer) if key is not None else None
        if earlier is not None:
            return earlier
        taken = reference
        reference = await repo.insert_case(case, reference)
        if reference != taken:
            answer = Answer(202, accepted_body(case.case_id, reference))
            if key is not None:
                await repo.remember(key, answer)
        event = case_event(case, reference)
        await repo.emit(event)
    count_accepted(event)
    tracing.annotate(case_id=case.case_id, reference=reference)  # what an operator finds the trace by
    log.info(
        "case accepted",
        extra={"case_id": case.case_id, "reference": reference, "kind": case.kind,
               "category": case.category, "kommune": case.kommune},
    )  # fmt: skip
    return answer


@tracing.use_case
async def record_action(uow: Uow, action: NewAction, key: IdempotencyKey | None) -> Answer:
    """Police record an action on a case (dispatched, on scene, closed, ...): decide, store, publish."""
    async with uow.transaction() as repo:
        earlier = await repo.claim_key(key) if key is not None else None
        if earlier is not None:
            return earlier
        # FOR UPDATE: two officers recording on one case at once are decided one after the other.
        case = await repo.load_case(action.case_id, for_update=True)
        if case is None:
            raise CaseNotFound(action.case_id)
        decision = decide_action(case.facts, case.actions, action.recorded)
        if isinstance(decision, Conflict):
            raise ActionRefused(decision)
        await repo.insert_action(action, decision.status)
        event = action_event(case, action)
        await repo.emit(event)
        answer = Answer(202, accepted_body(case.case_id, case.reference, action_id=str(action.action_id)))
        if key is not None:
            await repo.remember(key, answer)
    count_accepted(event)
    tracing.annotate(case_id=case.case_id, reference=case.reference, action=action.request.action)
    log.info(
        "action recorded",
        extra={"case_id": case.case_id, "action": action.request.action, "action_id": action.action_id,
               "status": decision.status, "kommune": case.kommune},
    )  # fmt: skip
    return answer


async def read_status(uow: Uow, case_id: uuid.UUID) -> CaseStatusView:
    """A citizen (or the police) reads a case's status: its state and reference, nothing personal."""
    async with uow.transaction() as repo:
        case = await repo.load_case(case_id, for_update=False)
    if case is None:
        raise CaseNotFound(case_id)
    return status_view(case.facts, case.reference, case.actions)
