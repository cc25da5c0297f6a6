"""The deadlines service's use cases: what happens when a case event arrives and when a deadline falls due.

Each use case takes a unit of work (shared/unit_of_work.py): it opens the transaction, which hands
it the `DeadlinesRepository` below (Postgres; in unit tests the in-memory fake), drives the pure
domain, and returns the envelopes it wrote to the outbox. The consumer's unit of work is its inbox
transaction, the timer's the round that read the breach gate. Counting and logging after the
commit stay with the caller (the entrypoint), since a rolled-back attempt must count nothing.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from services.deadlines.domain.case_deadlines import CaseDeadlines
from services.deadlines.domain.deadline import Deadline, DeadlineEvent
from services.deadlines.domain.rules import RuleSet
from shared.consumer import Rejected
from shared.db import is_transient
from shared.events import CloudEvent, EventData, EventMeta
from shared.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A claimed deadline row the adapter could not turn into a Deadline (e.g. a rule snapshot it cannot read)."""

    id: uuid.UUID
    error: Exception


class DeadlinesRepository(Protocol):
    """Storage as the use cases see it, bound to the unit of work's one transaction."""

    async def lock_case(self, case_id: uuid.UUID, kommune: str) -> None: ...

    async def load_case(self, case_id: uuid.UUID) -> CaseDeadlines: ...

    async def save_case(self, case: CaseDeadlines) -> None: ...

    async def claim_due(self, now: datetime, limit: int) -> Sequence[Deadline | Unreadable]: ...

    async def save_deadlines(self, deadlines: Sequence[Deadline]) -> None: ...

    async def park(self, parked: Sequence[tuple[uuid.UUID, str]]) -> None: ...

    async def record_and_emit(
        self, events: Sequence[DeadlineEvent], kommune_of: dict[uuid.UUID, str]
    ) -> list[CloudEvent]: ...

    def savepoint(self) -> AbstractAsyncContextManager[None]:
        """A nested transaction: an error inside undoes only what was written inside, then propagates."""
        ...


async def handle_case_event(
    uow: UnitOfWork[DeadlinesRepository], meta: EventMeta, payload: EventData, rules: RuleSet
) -> list[CloudEvent]:
    """A case event (reported, tip, officer requested, action recorded) starts, meets, moves or cancels deadlines."""
    case_id = getattr(payload, "case_id", None)
    if not isinstance(case_id, uuid.UUID) or str(case_id) != meta.subject:
        raise Rejected(f"subject {meta.subject} is not the case id {case_id} in data")
    async with uow.transaction() as repo:
        await repo.lock_case(case_id, meta.kommune)
        case = await repo.load_case(case_id)
        emitted = case.apply(payload, meta.kommune, rules)
        await repo.save_case(case)
        return await repo.record_and_emit(emitted, {d.id: d.kommune for d in case.deadlines.values()})


@dataclass(slots=True)
class FireResult:
    """One timer round: how many rows were claimed, the deadlines fired, the events written, how many parked."""

    claimed: int = 0
    fired: list[Deadline] = field(default_factory=list)
    envelopes: list[CloudEvent] = field(default_factory=list)
    parked: int = 0


async def fire_due_deadlines(
    uow: UnitOfWork[DeadlinesRepository],
    now: datetime,
    limit: int,
    *,
    before_commit: Callable[[list[Deadline]], None] | None = None,
) -> FireResult:
    """Deadlines fall due: each due warning or breach fires once (claimed rows are locked until commit).

    A deadline that cannot be read, fired, turned into envelopes or written is parked (taken off
    the timer with the reason) so one bad row never stops every other deadline from firing.
    """
    async with uow.transaction() as repo:
        claimed = await repo.claim_due(now, limit)
        result = FireResult(claimed=len(claimed))
        if not claimed:
            return result
        fired, parked = _fire(claimed, now)
        fired, envelopes = await _write_isolated(repo, fired, parked)
        if parked:
            await repo.park(parked)
        result.fired = [deadline for deadline, _ in fired]
        result.envelopes = envelopes
        result.parked = len(parked)
        if before_commit is not None:
            before_commit(result.fired)
        return result


Fired = list[tuple[Deadline, list[DeadlineEvent]]]


def _fire(claimed: Sequence[Deadline | Unreadable], now: datetime) -> tuple[Fired, list[tuple[uuid.UUID, str]]]:
    """Each claimed deadline fired by the domain; one that cannot be read or fired is to be parked."""
    parked: list[tuple[uuid.UUID, str]] = []
    fired: Fired = []
    for item in claimed:
        try:
            if isinstance(item, Unreadable):
                raise item.error
            deadline, emitted = item.fire(now)
        except Exception as exc:
            parked.append(_parking(item.id, exc))
            continue
        fired.append((deadline, list(emitted)))
    return fired, parked


async def _write_isolated(
    repo: DeadlinesRepository, fired: Fired, parked: list[tuple[uuid.UUID, str]]
) -> tuple[Fired, list[CloudEvent]]:
    """Writes the batch; returns what was written and its envelopes, adding the rows that spoil it to `parked`.

    The whole batch is written at once, in a savepoint. Should one row spoil it (an envelope that
    cannot be built, a write Postgres refuses), only that savepoint rolls back and the rows are
    written again one by one, each in its own savepoint: the bad one is parked, the others fire.
    """
    try:
        async with repo.savepoint():
            return fired, await _write(repo, fired)
    except Exception as exc:
        if is_transient(exc):
            raise  # the database is away: no row is at fault, the timer retries the round
    envelopes: list[CloudEvent] = []
    kept: Fired = []
    for deadline, emitted in fired:
        try:
            async with repo.savepoint():
                envelopes += await _write(repo, [(deadline, emitted)])
        except Exception as row_exc:
            if is_transient(row_exc):
                raise
            parked.append(_parking(deadline.id, row_exc))
            continue
        kept.append((deadline, emitted))
    return kept, envelopes


async def _write(repo: DeadlinesRepository, fired: Sequence[tuple[Deadline, list[DeadlineEvent]]]) -> list[CloudEvent]:
    await repo.save_deadlines([deadline for deadline, _ in fired])
    return await repo.record_and_emit(
        [e for _, emitted in fired for e in emitted], {deadline.id: deadline.kommune for deadline, _ in fired}
    )


def _parking(deadline_id: uuid.UUID, exc: BaseException) -> tuple[uuid.UUID, str]:
    log.error("scheduler: cannot fire deadline %s; parking it", deadline_id, exc_info=exc)
    return deadline_id, f"{type(exc).__name__}: {exc}"[:500]
