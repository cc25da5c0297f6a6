"""An in-memory PrivacyRepository (services/intake/handlers.py) for the use cases and routes of personal content.

It keeps what the Postgres adapter keeps (adapters/privacy.py): each case's facts and personal fields,
the erasure marks, the deadlines learnt from deadlines.v1, and the access log; a transaction's changes
are kept only when it ends without an error. `locked_elsewhere` plays another instance holding the
erasure job's lock.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from services.intake.domain.privacy import CLIENT_ADDRESS, Contact, RetentionPolicy, StoredDetails
from services.intake.handlers import AccessEntry, DueErasure

_CONTACT_FIELDS = ("contact.name", "contact.phone", "contact.email")


@dataclass
class FakeCase:
    details: StoredDetails
    client_address: str | None = None
    deadlines: dict[uuid.UUID, datetime | None] = field(default_factory=dict)
    erased_because: str | None = None

    @property
    def deadlines_open(self) -> bool:
        return any(v is None for v in self.deadlines.values())

    @property
    def settled_at(self) -> datetime | None:
        if not self.deadlines or self.deadlines_open:
            return None
        return max(v for v in self.deadlines.values() if v is not None)

    def contact_fields(self) -> tuple[str, ...]:
        present = (*(f for f in self.details.fields_present() if f in _CONTACT_FIELDS),)
        return present + ((CLIENT_ADDRESS,) if self.client_address else ())


@dataclass
class _State:
    cases: dict[uuid.UUID, FakeCase] = field(default_factory=dict)
    log: list[AccessEntry] = field(default_factory=list)


class FakePrivacyRepository:
    def __init__(self, state: _State, ids: itertools.count[int], locked_elsewhere: bool) -> None:
        self.state = state
        self._ids = ids
        self._locked_elsewhere = locked_elsewhere

    async def load_details(self, case_id: uuid.UUID, *, for_update: bool) -> StoredDetails | None:
        case = self.state.cases.get(case_id)
        if case is None:
            return None
        return replace(case.details, client_address_stored=case.client_address is not None)

    async def record(self, entry: AccessEntry) -> int:
        entry_id = next(self._ids)
        self.state.log.append(replace(entry, id=entry_id))
        return entry_id

    async def record_many(self, entries: list[AccessEntry]) -> None:
        for entry in entries:
            await self.record(entry)

    async def access_log(self, case_id: uuid.UUID, *, limit: int, offset: int) -> tuple[list[AccessEntry], int]:
        mine = [e for e in self.state.log if e.case_id == case_id]
        return mine[offset : offset + limit], len(mine)

    async def erase_reports(self, case_ids: list[uuid.UUID], at: datetime, because: str) -> None:
        for case_id in case_ids:
            case = self.state.cases[case_id]
            d = case.details
            case.details = replace(
                d, description=None, address=None, postcode=None, lat=None, lon=None, institution=None,
                contact=Contact(), details_erased_at=at, contact_erased_at=d.contact_erased_at or at,
            )  # fmt: skip
            case.client_address = None
            case.erased_because = because
            case.deadlines.clear()

    async def erase_contacts(self, case_ids: list[uuid.UUID], at: datetime) -> None:
        for case_id in case_ids:
            case = self.state.cases[case_id]
            case.details = replace(case.details, contact=Contact(), contact_erased_at=at)
            case.client_address = None

    async def note_deadline(self, deadline_id: uuid.UUID, case_id: uuid.UUID, concluded_at: datetime | None) -> None:
        case = self.state.cases.get(case_id)
        if case is None or case.details.details_erased_at is not None:
            return
        case.deadlines[deadline_id] = case.deadlines.get(deadline_id) or concluded_at

    async def lock_erasure(self) -> bool:
        return not self._locked_elsewhere

    def _contact_due_since(self, case: FakeCase) -> datetime | None:
        d = case.details
        if d.contact_erased_at or d.details_erased_at or case.deadlines_open:
            return None
        return case.settled_at or d.received_at

    async def contacts_due(self, settled_before: datetime, limit: int) -> list[DueErasure]:
        due = [
            (since, c)
            for c in self.state.cases.values()
            if (since := self._contact_due_since(c)) is not None and since < settled_before
        ]
        due.sort(key=lambda pair: pair[0])
        return [DueErasure(c.details.case_id, c.contact_fields()) for _, c in due[:limit]]

    async def reports_due(self, received_before: datetime, limit: int) -> list[DueErasure]:
        due = sorted(
            (c for c in self.state.cases.values()
             if c.details.details_erased_at is None and c.details.received_at < received_before),
            key=lambda c: c.details.received_at,
        )  # fmt: skip
        return [
            DueErasure(
                c.details.case_id,
                tuple(f for f in c.details.fields_present() if f not in _CONTACT_FIELDS) + c.contact_fields(),
            )
            for c in due[:limit]
        ]

    async def purge_access_log(self, before: datetime) -> int:
        kept = [e for e in self.state.log if e.at >= before]
        purged = len(self.state.log) - len(kept)
        self.state.log[:] = kept
        return purged

    async def overdue_seconds(self, policy: RetentionPolicy, now: datetime) -> float:
        worst = timedelta(0)
        for case in self.state.cases.values():
            if case.details.details_erased_at is None:
                worst = max(worst, policy.report_due_if_received_before(now) - case.details.received_at)
            since = self._contact_due_since(case)
            if since is not None:
                worst = max(worst, policy.contact_due_if_settled_before(now) - since)
        return worst.total_seconds()


class FakePrivacyUnitOfWork:
    """`committed` is what a reader sees; a transaction works on a copy and replaces it only on success."""

    def __init__(self) -> None:
        self.committed = _State()
        self._ids = itertools.count(1)
        self.locked_elsewhere = False

    def add(self, details: StoredDetails, client_address: str | None = "203.0.113.7") -> None:
        self.committed.cases[details.case_id] = FakeCase(details, client_address=client_address)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[FakePrivacyRepository]:
        work = copy.deepcopy(self.committed)
        yield FakePrivacyRepository(work, self._ids, self.locked_elsewhere)
        self.committed = work
