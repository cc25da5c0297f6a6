"""The deadlines service's use cases: what happens when a case event arrives and when a deadline falls due.

Each use case takes a `DeadlinesRepository` (the Postgres one inside the caller's transaction, or a
fake in unit tests), drives the pure domain and returns the envelopes it wrote to the outbox.
Counting and logging after the commit stay with the caller (the entrypoint), since a rolled-back
attempt must count nothing.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from services.deadlines.domain.case_deadlines import CaseDeadlines
from services.deadlines.domain.deadline import Deadline, DeadlineEvent
from services.deadlines.domain.rules import RuleSet
from shared.consumer import Rejected
from shared.events import CloudEvent

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A claimed deadline row the adapter could not turn into a Deadline (e.g. a rule snapshot it cannot read)."""

    id: uuid.UUID
    error: Exception


class DeadlinesRepository(Protocol):
    """Storage as the use cases see it; every call runs in one transaction the caller owns."""

    async def lock_case(self, case_id: uuid.UUID, kommune: str) -> None: ...

    async def load_case(self, case_id: uuid.UUID) -> CaseDeadlines: ...

    async def save_case(self, case: CaseDeadlines) -> None: ...

    async def claim_due(self, now: datetime, limit: int) -> Sequence[Deadline | Unreadable]: ...

    async def save_deadlines(self, deadlines: Sequence[Deadline]) -> None: ...

    async def park(self, parked: Sequence[tuple[uuid.UUID, str]]) -> None: ...

    async def record_and_emit(
        self, events: Sequence[DeadlineEvent], kommune_of: dict[uuid.UUID, str]
    ) -> list[CloudEvent]: ...


async def handle_case_event(
    repo: DeadlinesRepository, event: CloudEvent, case_id: uuid.UUID, rules: RuleSet
) -> list[CloudEvent]:
    """A case event (reported, tip, officer requested, action recorded) starts, meets, moves or cancels deadlines."""
    if str(case_id) != event.subject:
        raise Rejected(f"subject {event.subject} is not the case id {case_id} in data")
    await repo.lock_case(case_id, event.kommune)
    case = await repo.load_case(case_id)
    emitted = case.apply(event, rules)
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
    repo: DeadlinesRepository,
    now: datetime,
    limit: int,
    *,
    before_commit: Callable[[list[Deadline]], None] | None = None,
) -> FireResult:
    """Deadlines fall due: each due warning or breach fires once (claimed rows are locked until commit).

    A deadline that cannot be read or fired is parked (taken off the timer with the reason) so one
    bad row never stops every other deadline from firing; the domain step does no I/O, so only that
    row is wrong.
    """
    claimed = await repo.claim_due(now, limit)
    result = FireResult(claimed=len(claimed))
    if not claimed:
        return result
    events: list[DeadlineEvent] = []
    parked: list[tuple[uuid.UUID, str]] = []
    for item in claimed:
        try:
            if isinstance(item, Unreadable):
                raise item.error
            deadline, emitted = item.fire(now)
        except Exception as exc:
            log.exception("scheduler: cannot fire deadline %s; parking it", item.id)
            parked.append((item.id, f"{type(exc).__name__}: {exc}"[:500]))
            continue
        result.fired.append(deadline)
        events.extend(emitted)
    if parked:
        await repo.park(parked)
    await repo.save_deadlines(result.fired)
    result.envelopes = await repo.record_and_emit(events, {d.id: d.kommune for d in result.fired})
    result.parked = len(parked)
    if before_commit is not None:
        before_commit(result.fired)
    return result
