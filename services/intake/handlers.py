"""Intake's use cases: a case (report, tip, Bestil en betjent) is submitted, police act, an officer reads it.

Each use case runs in one transaction of a `UnitOfWork` (Postgres in the service, a fake in unit
tests): the idempotency key's row, the case (or action) rows and the outbox row commit together or
not at all, so a failure at any moment leaves nothing half-written, and an accepted case always has
its event waiting in the outbox. Counting and logging happen after the commit. The status read
(`read_status`) has the same shape: one transaction, one load, the domain's view of it. The last
part is the citizen's personal content: read for a purpose and on record, erased on time.
"""

from __future__ import annotations

import logging
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

from services.intake.domain.cases import (
    CaseFacts,
    CaseKind,
    CaseStatusView,
    Conflict,
    RecordedAction,
    decide_action,
    status_view,
)
from services.intake.domain.privacy import CLIENT_ADDRESS, Purpose, Reader, RetentionPolicy, StoredDetails
from services.intake.domain.reference import new_reference
from services.intake.metrics import count_accepted, count_erased, count_read
from shared import tracing
from shared.events import CloudEvent, envelope
from shared.events.cases import ActionRecorded, CaseReported, OfficerRequested, RequestType, TipReceived
from shared.events.deadlines import DeadlineCancelled, DeadlineData, DeadlineMet
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
    # The one kommune the recorder reaches (a lokalbetjent with his own token); None: every kommune
    # (a vagtchef, a police system's key).
    only_kommune: str | None = None

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
        if action.only_kommune is not None and case.kommune != action.only_kommune:
            raise OutOfReach(action.case_id)
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


# --- A report's personal content: read for a purpose and on record; erased on time ------------------
# docs/privacy.md. A read and its access-log entry commit in one transaction, so no answer goes out
# unlogged; an erasure blanks the personal columns, keeps the case's facts, and is logged the same way.

Action = Literal["read", "erase"]
LogVia = Literal["console", "api", "retention"]
# The erasure job, as the access log names it.
RETENTION_ID = "intake-retention"
RETENTION_NAME = "Automatisk sletning (opbevaringsfristen udløb)"
RETENTION_REASON = "retention period ended"


@dataclass(frozen=True, slots=True)
class AccessEntry:
    """One row of the access log: who read (or erased) which fields of which case, when and why."""

    at: datetime
    case_id: uuid.UUID
    action: Action
    person_id: str
    person_name: str
    via: LogVia
    fields: tuple[str, ...]
    via_key: str | None = None
    purpose: Purpose | None = None
    reason: str | None = None
    id: int | None = None


@dataclass(frozen=True, slots=True)
class DetailsRead:
    details: StoredDetails
    fields: tuple[str, ...]
    entry_id: int
    at: datetime


@dataclass(frozen=True, slots=True)
class AccessLogPage:
    case_id: uuid.UUID
    contact_erased_at: datetime | None
    details_erased_at: datetime | None
    entries: list[AccessEntry]
    total: int


@dataclass(frozen=True, slots=True)
class Erasure:
    """An erasure on request: when the case's personal content went, and which fields held something."""

    case_id: uuid.UUID
    erased_at: datetime
    fields: tuple[str, ...]
    already: bool = False


@dataclass(frozen=True, slots=True)
class DueErasure:
    """A case whose contact (or whole report) is due for erasure, and which personal fields hold something."""

    case_id: uuid.UUID
    fields: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ErasureRound:
    contacts: int = 0
    reports: int = 0
    log_purged: int = 0
    skipped: bool = False  # another instance held the erasure lock


class OutOfReach(Exception):
    """The reader's role does not reach this case's kommune."""


class Erased(Exception):
    """The case's personal content was erased; only its facts are left."""

    def __init__(self, erased_at: datetime) -> None:
        super().__init__(erased_at.isoformat())
        self.erased_at = erased_at


class PrivacyRepository(Protocol):
    """Storage of personal content and its log inside one transaction (adapters/privacy.py)."""

    async def load_details(self, case_id: uuid.UUID, *, for_update: bool) -> StoredDetails | None: ...

    async def record(self, entry: AccessEntry) -> int:
        """Appends to the access log; returns the entry's id."""
        ...

    async def record_many(self, entries: list[AccessEntry]) -> None: ...

    async def access_log(self, case_id: uuid.UUID, *, limit: int, offset: int) -> tuple[list[AccessEntry], int]: ...

    async def erase_reports(self, case_ids: list[uuid.UUID], at: datetime, because: str) -> None:
        """Blanks every personal column of these cases and marks them erased (contact too, if not yet)."""
        ...

    async def erase_contacts(self, case_ids: list[uuid.UUID], at: datetime) -> None:
        """Blanks the contact details and client address of these cases and marks their contact erased."""
        ...

    async def note_deadline(self, deadline_id: uuid.UUID, case_id: uuid.UUID, concluded_at: datetime | None) -> None:
        """Records a deadline of the case (concluded at, or still running) and whether any of them still runs."""
        ...

    async def lock_erasure(self) -> bool:
        """True when this transaction holds the erasure job's lock (one instance at a time)."""
        ...

    async def contacts_due(self, settled_before: datetime, limit: int) -> list[DueErasure]: ...

    async def reports_due(self, received_before: datetime, limit: int) -> list[DueErasure]: ...

    async def purge_access_log(self, before: datetime) -> int: ...

    async def overdue_seconds(self, policy: RetentionPolicy, now: datetime) -> float:
        """How far past its due time the oldest case awaiting erasure is; 0 when none is."""
        ...


PrivacyUow = UnitOfWork[PrivacyRepository]


@tracing.use_case
async def read_details(
    uow: PrivacyUow, case_id: uuid.UUID, reader: Reader, purpose: Purpose, at: datetime
) -> DetailsRead:
    """An officer reads what the citizen reported, for a stated purpose: answered only once it is on record."""
    async with uow.transaction() as repo:
        details = await repo.load_details(case_id, for_update=False)
        if details is None:
            raise CaseNotFound(case_id)
        if not reader.reaches(details.kommune):
            raise OutOfReach(case_id)
        if details.details_erased_at is not None:
            raise Erased(details.details_erased_at)
        fields = details.fields_present()
        entry_id = await repo.record(
            AccessEntry(at=at, case_id=case_id, action="read", person_id=reader.id, person_name=reader.name,
                        via=reader.via, via_key=reader.via_key, purpose=purpose, fields=fields)
        )  # fmt: skip
    count_read(purpose, reader.via)
    tracing.annotate(case_id=case_id, access_id=entry_id, purpose=purpose)
    log.info(
        "report details read",
        extra={"case_id": case_id, "kommune": details.kommune, "reader": reader.id, "purpose": purpose,
               "via": reader.via, "access_id": entry_id},
    )  # fmt: skip
    return DetailsRead(details=details, fields=fields, entry_id=entry_id, at=at)


@tracing.use_case
async def read_access_log(uow: PrivacyUow, case_id: uuid.UUID, *, limit: int, offset: int) -> AccessLogPage:
    """The data-protection role reads who looked at a case's personal content and when it was erased."""
    async with uow.transaction() as repo:
        details = await repo.load_details(case_id, for_update=False)
        if details is None:
            raise CaseNotFound(case_id)
        entries, total = await repo.access_log(case_id, limit=limit, offset=offset)
    return AccessLogPage(case_id, details.contact_erased_at, details.details_erased_at, entries, total)


@tracing.use_case
async def erase_on_request(uow: PrivacyUow, case_id: uuid.UUID, by: Reader, reason: str, at: datetime) -> Erasure:
    """The data-protection role erases a case's personal content now (a citizen's request, an error), with a reason.

    A repeat answers the first erasure's time and records nothing new.
    """
    async with uow.transaction() as repo:
        details = await repo.load_details(case_id, for_update=True)
        if details is None:
            raise CaseNotFound(case_id)
        if details.details_erased_at is not None:
            return Erasure(case_id, details.details_erased_at, (), already=True)
        fields = details.fields_present() + ((CLIENT_ADDRESS,) if details.client_address_stored else ())
        await repo.erase_reports([case_id], at, "request")
        await repo.record(
            AccessEntry(at=at, case_id=case_id, action="erase", person_id=by.id, person_name=by.name, via=by.via,
                        via_key=by.via_key, reason=reason, fields=fields)
        )  # fmt: skip
    count_erased("report", "request")
    log.info("report erased on request", extra={"case_id": case_id, "kommune": details.kommune, "by": by.id})
    return Erasure(case_id, at, fields)


@tracing.use_case
async def note_deadline(uow: PrivacyUow, deadline: DeadlineData) -> None:
    """deadlines.v1 tells how a case's deadlines stand: its contact details are kept for a time after the last ends."""
    concluded_at: datetime | None = None
    if isinstance(deadline, DeadlineMet):
        concluded_at = deadline.met_at
    elif isinstance(deadline, DeadlineCancelled):
        concluded_at = deadline.cancelled_at
    # Started, warned, breached (it may still be met late), rescheduled, breach withdrawn (a met
    # follows): the deadline runs.
    async with uow.transaction() as repo:
        await repo.note_deadline(deadline.deadline_id, deadline.case_id, concluded_at)


def _retention_entry(due: DueErasure, at: datetime) -> AccessEntry:
    return AccessEntry(at=at, case_id=due.case_id, action="erase", person_id=RETENTION_ID, person_name=RETENTION_NAME,
                       via="retention", reason=RETENTION_REASON, fields=due.fields)  # fmt: skip


@tracing.use_case
async def erase_due(uow: PrivacyUow, policy: RetentionPolicy, now: datetime, *, batch_size: int) -> ErasureRound:
    """The erasure job's round: whole reports, then the contact details of the rest, past their retention;
    then old log entries.

    Whole reports first: a report past its retention takes its contact with it in one erasure (one log
    entry naming every field), so a backlog where both are due is not erased, and logged, twice.
    Batches of `batch_size`, each in its own transaction holding the job's lock, so two instances
    never erase side by side, and a long backlog is worked through without a long transaction.
    """
    counts = {"contacts": 0, "reports": 0}
    for part, due_before in (
        ("reports", policy.report_due_if_received_before(now)),
        ("contacts", policy.contact_due_if_settled_before(now)),
    ):
        while True:
            async with uow.transaction() as repo:
                if not await repo.lock_erasure():
                    return ErasureRound(counts["contacts"], counts["reports"], skipped=True)
                if part == "contacts":
                    due = await repo.contacts_due(due_before, batch_size)
                    await repo.erase_contacts([d.case_id for d in due], now)
                else:
                    due = await repo.reports_due(due_before, batch_size)
                    await repo.erase_reports([d.case_id for d in due], now, "retention")
                await repo.record_many([_retention_entry(d, now) for d in due if d.fields])
            counts[part] += len(due)
            count_erased("contact" if part == "contacts" else "report", "retention", len(due))
            if len(due) < batch_size:
                break
    async with uow.transaction() as repo:
        if not await repo.lock_erasure():
            return ErasureRound(counts["contacts"], counts["reports"], skipped=True)
        purged = await repo.purge_access_log(policy.log_kept_after(now))
    return ErasureRound(counts["contacts"], counts["reports"], purged)
