"""An in-memory UnitOfWork for intake's use cases: changes are kept only when the transaction commits."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace

from services.intake.domain.cases import CaseFacts
from services.intake.domain.reference import new_reference
from services.intake.handlers import Answer, IdempotencyKey, IdempotencyKeyReused, NewAction, NewCase, StoredCase
from shared.events import CloudEvent


@dataclass
class _State:
    cases: dict[uuid.UUID, StoredCase] = field(default_factory=dict)
    new_cases: list[NewCase] = field(default_factory=list)
    actions: list[tuple[NewAction, str]] = field(default_factory=list)
    keys: dict[tuple[str, str], tuple[str, Answer | None]] = field(default_factory=dict)
    outbox: list[CloudEvent] = field(default_factory=list)


class FakeCaseRepository:
    def __init__(self, state: _State, taken: set[str]) -> None:
        self.state = state
        self._taken = taken

    async def claim_key(self, key: IdempotencyKey, answer: Answer | None = None) -> Answer | None:
        earlier = self.state.keys.get((key.client, key.key))
        if earlier is None:
            self.state.keys[(key.client, key.key)] = (key.request_hash, answer)
            return None
        request_hash, first = earlier
        if request_hash != key.request_hash:
            raise IdempotencyKeyReused(key.key)
        assert first is not None
        return Answer(first.status_code, first.body, replayed=True)

    async def remember(self, key: IdempotencyKey, answer: Answer) -> None:
        # An UPDATE in SQL: the answer of a key claimed before, never a key of its own.
        claimed = self.state.keys.get((key.client, key.key))
        if claimed is not None:
            self.state.keys[(key.client, key.key)] = (claimed[0], answer)

    async def insert_case(self, case: NewCase, reference: str) -> str:
        taken = {c.reference for c in self.state.cases.values()} | self._taken
        while reference in taken:
            reference = new_reference()
        self.state.new_cases.append(case)
        self.state.cases[case.case_id] = StoredCase(case.case_id, reference, case.kommune, _facts(case), ())
        return reference

    async def load_case(self, case_id: uuid.UUID, *, for_update: bool) -> StoredCase | None:
        return self.state.cases.get(case_id)

    async def insert_action(self, action: NewAction, status: str) -> None:
        self.state.actions.append((action, status))
        case = self.state.cases[action.case_id]
        self.state.cases[action.case_id] = replace(case, actions=(*case.actions, action.recorded))

    async def emit(self, event: CloudEvent) -> None:
        self.state.outbox.append(event)


def _facts(case: NewCase) -> CaseFacts:
    return CaseFacts(kind=case.kind, category=case.category, received_at=case.received_at, in_progress=case.in_progress)


class FakeUnitOfWork:
    """`committed` is what a reader sees; a transaction works on a copy and replaces it only on success."""

    def __init__(self, *, taken_references: set[str] | None = None) -> None:
        self.committed = _State()
        self._taken = taken_references or set()
        self.fail_before_commit: BaseException | None = None

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[FakeCaseRepository]:
        work = _State(
            dict(self.committed.cases), list(self.committed.new_cases), list(self.committed.actions),
            dict(self.committed.keys), list(self.committed.outbox),
        )  # fmt: skip
        yield FakeCaseRepository(work, self._taken)
        if self.fail_before_commit is not None:
            raise self.fail_before_commit
        self.committed = work
