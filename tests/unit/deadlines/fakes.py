"""An in-memory DeadlinesRepository and its unit of work, so the use cases in handlers.py run without Postgres.

tests/support/contracts/deadlines.py runs one suite against this fake and the Postgres repository.
"""

from __future__ import annotations

import contextlib
import copy
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime

from services.deadlines.adapters.repository import to_cloud_events
from services.deadlines.domain.case_deadlines import CaseDeadlines
from services.deadlines.domain.deadline import Deadline, DeadlineEvent, PoliceAction
from services.deadlines.handlers import Unreadable
from shared.events import CloudEvent


class FakeDeadlinesRepository:
    """Deadlines, actions, timeline and outbox as plain collections; `unreadable` ids claim as Unreadable.

    It is its own unit of work: `transaction()` yields itself and, as a rollback does, undoes what
    the block wrote when it raises.
    """

    def __init__(self) -> None:
        self.deadlines: dict[uuid.UUID, Deadline] = {}
        self.actions: dict[uuid.UUID, list[PoliceAction]] = {}
        self.outbox: list[CloudEvent] = []
        self.parked: dict[uuid.UUID, str] = {}
        self.unreadable: set[uuid.UUID] = set()
        self.locked: list[uuid.UUID] = []
        self.savepoints = 0

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[FakeDeadlinesRepository]:
        saved = copy.deepcopy(self.__dict__)
        try:
            yield self
        except BaseException:
            self.__dict__.update(saved)
            raise

    async def lock_case(self, case_id: uuid.UUID, kommune: str) -> None:
        self.locked.append(case_id)

    async def load_case(self, case_id: uuid.UUID) -> CaseDeadlines:
        mine = [d for d in self.deadlines.values() if d.case_id == case_id]
        return CaseDeadlines(case_id, deadlines=mine, actions=self.actions.get(case_id, []))

    async def save_case(self, case: CaseDeadlines) -> None:
        await self.save_deadlines(list(case.deadlines.values()))
        # Like INSERT ... ON CONFLICT DO NOTHING: an action stored once stays as it was first stored.
        stored = self.actions.setdefault(case.case_id, [])
        known = {a.action_id for a in stored}
        stored.extend(a for a in case.actions if a.action_id not in known)

    async def claim_due(self, now: datetime, limit: int) -> Sequence[Deadline | Unreadable]:
        due = sorted(
            (d for d in self.deadlines.values() if d.id not in self.parked and d.next_fire_at is not None),
            key=lambda d: d.next_fire_at or now,
        )
        claimed: list[Deadline | Unreadable] = []
        for d in due:
            if d.next_fire_at is not None and d.next_fire_at <= now and len(claimed) < limit:
                claimed.append(Unreadable(d.id, KeyError("window")) if d.id in self.unreadable else d)
        return claimed

    async def save_deadlines(self, deadlines: Sequence[Deadline]) -> None:
        for d in deadlines:
            self.deadlines[d.id] = d

    async def park(self, parked: Sequence[tuple[uuid.UUID, str]]) -> None:
        self.parked.update(parked)

    async def record_and_emit(
        self, events: Sequence[DeadlineEvent], kommune_of: dict[uuid.UUID, str]
    ) -> list[CloudEvent]:
        envelopes = to_cloud_events(events, kommune_of)
        known = {e.id for e in self.outbox}
        # Like the outbox's ON CONFLICT (event_id) DO NOTHING: a recomputed fact is not written twice.
        self.outbox.extend(e for e in envelopes if e.id not in known)
        return envelopes

    @contextlib.asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """Like a SAVEPOINT: an error inside restores what was written inside, then propagates."""
        self.savepoints += 1
        saved = copy.deepcopy(self.__dict__)
        try:
            yield
        except BaseException:
            self.__dict__.update(saved)
            raise
