"""The DeadlinesRepository contract (services/deadlines/handlers.py): what every backend must do alike."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from services.deadlines.adapters.rules_file import DEFAULT_RULES_FILE, load_rules
from services.deadlines.domain.case_deadlines import CaseDeadlines
from services.deadlines.domain.deadline import Deadline
from services.deadlines.handlers import DeadlinesRepository
from shared.unit_of_work import UnitOfWork
from tests.support.cases import T0, action, apply, reported

RULES = load_rules(DEFAULT_RULES_FILE)
H = timedelta(hours=1)

Uow = UnitOfWork[DeadlinesRepository]


class Boom(Exception):
    pass


def burglary(case_id: uuid.UUID | None = None, at: Any = T0) -> tuple[CaseDeadlines, list[Any]]:
    """A reported home burglary's case, its deadlines started (not yet saved), and the events that started them."""
    case_id = case_id or uuid.uuid4()
    case = CaseDeadlines(case_id)
    emitted = apply(case, reported(case_id, "burglary_home", at, in_progress=False), RULES)
    return case, emitted


def kommune_of(case: CaseDeadlines) -> dict[uuid.UUID, str]:
    return {d.id: d.kommune for d in case.deadlines.values()}


class DeadlinesRepositoryContract:
    """Subclasses give `uow` (a fixture) and `emitted` (the event ids in the outbox, in the order written)."""

    @pytest.fixture
    def uow(self) -> Uow:
        raise NotImplementedError

    async def emitted(self, uow: Uow) -> list[uuid.UUID]:
        raise NotImplementedError

    async def saved(self, uow: Uow, case: CaseDeadlines) -> None:
        async with uow.transaction() as repo:
            await repo.lock_case(case.case_id, "0265")
            await repo.save_case(case)

    async def load(self, uow: Uow, case_id: uuid.UUID) -> CaseDeadlines:
        async with uow.transaction() as repo:
            return await repo.load_case(case_id)

    async def test_a_saved_case_loads_with_its_deadlines_and_actions(self, uow: Uow) -> None:
        case, _ = burglary()
        apply(case, action(case.case_id, "dispatched", T0 + H, category="burglary_home"), RULES)
        await self.saved(uow, case)
        loaded = await self.load(uow, case.case_id)
        assert loaded.deadlines == case.deadlines and loaded.deadlines
        assert loaded.actions == case.actions and [a.action for a in loaded.actions] == ["dispatched"]
        other, _ = burglary()
        await self.saved(uow, other)
        assert (await self.load(uow, case.case_id)).deadlines == case.deadlines  # not the other case's

    async def test_a_case_never_seen_loads_empty(self, uow: Uow) -> None:
        loaded = await self.load(uow, uuid.uuid4())
        assert loaded.deadlines == {} and loaded.actions == []

    async def test_saving_again_updates_deadlines_and_keeps_each_action_once(self, uow: Uow) -> None:
        case, _ = burglary()
        arrived = action(case.case_id, "on_scene", T0 + 2 * H, category="burglary_home")
        apply(case, arrived, RULES)
        await self.saved(uow, case)
        again = await self.load(uow, case.case_id)
        apply(again, arrived, RULES)  # a redelivery changes nothing
        apply(again, action(case.case_id, "closed", T0 + 3 * H, category="burglary_home"), RULES)
        await self.saved(uow, again)
        loaded = await self.load(uow, case.case_id)
        assert loaded.deadlines == again.deadlines
        assert [a.action for a in loaded.actions] == ["on_scene", "closed"]
        assert {d.state.value for d in loaded.deadlines.values()} != {"pending"}

    async def test_a_transaction_that_raises_leaves_nothing(self, uow: Uow) -> None:
        case, emitted = burglary()
        with pytest.raises(Boom):
            async with uow.transaction() as repo:
                await repo.lock_case(case.case_id, "0265")
                await repo.save_case(case)
                await repo.record_and_emit(emitted, kommune_of(case))
                raise Boom
        assert (await self.load(uow, case.case_id)).deadlines == {}
        assert await self.emitted(uow) == []

    async def test_a_savepoint_that_raises_undoes_only_what_was_written_inside(self, uow: Uow) -> None:
        kept, kept_events = burglary()
        undone, undone_events = burglary()
        apply(undone, action(undone.case_id, "dispatched", T0 + H, category="burglary_home"), RULES)
        async with uow.transaction() as repo:
            await repo.lock_case(kept.case_id, "0265")
            await repo.save_case(kept)
            envelopes = await repo.record_and_emit(kept_events, kommune_of(kept))
            with pytest.raises(Boom):
                async with repo.savepoint():
                    await repo.lock_case(undone.case_id, "0265")
                    await repo.save_case(undone)
                    await repo.record_and_emit(undone_events, kommune_of(undone))
                    raise Boom
        assert (await self.load(uow, kept.case_id)).deadlines == kept.deadlines
        loaded = await self.load(uow, undone.case_id)
        assert loaded.deadlines == {} and loaded.actions == []
        assert await self.emitted(uow) == [e.id for e in envelopes]

    async def test_claim_due_takes_what_is_due_soonest_first_up_to_the_limit(self, uow: Uow) -> None:
        early, _ = burglary(at=T0)
        late, _ = burglary(at=T0 + H)
        for case in (late, early):
            await self.saved(uow, case)
        async with uow.transaction() as repo:
            assert await repo.claim_due(T0 + 11 * H, 10) == []
        async with uow.transaction() as repo:
            claimed = await repo.claim_due(T0 + 13 * H, 1)
        [first] = claimed
        assert isinstance(first, Deadline) and first.case_id == early.case_id
        assert first == next(d for d in early.deadlines.values() if d.id == first.id)
        async with uow.transaction() as repo:
            both = await repo.claim_due(T0 + 13 * H, 10)
        times = [d.next_fire_at for d in both if isinstance(d, Deadline) and d.next_fire_at is not None]
        assert len(both) == len(times) >= 2 and times == sorted(times)
        assert all(t <= T0 + 13 * H for t in times)

    async def test_a_fired_deadline_saved_is_claimed_at_its_next_time_and_a_parked_one_never(self, uow: Uow) -> None:
        case, _ = burglary()
        await self.saved(uow, case)
        async with uow.transaction() as repo:
            claimed = [d for d in await repo.claim_due(T0 + 12 * H, 10) if isinstance(d, Deadline)]
            fired = [d.fire(T0 + 12 * H)[0] for d in claimed]
            await repo.save_deadlines(fired)
        async with uow.transaction() as repo:
            assert await repo.claim_due(T0 + 12 * H, 10) == []  # warned: next due at the breach
            again = await repo.claim_due(T0 + 25 * H, 10)
        assert {d.id for d in again if isinstance(d, Deadline)} == {d.id for d in fired}
        async with uow.transaction() as repo:
            await repo.park([(d.id, "KeyError: window") for d in fired])
        async with uow.transaction() as repo:
            assert await repo.claim_due(T0 + 25 * H, 10) == []
        loaded = await self.load(uow, case.case_id)
        assert all(loaded.deadlines[d.rule.id] == d for d in fired)  # parking keeps the deadline as it was

    async def test_events_go_to_the_outbox_once_with_deterministic_ids(self, uow: Uow) -> None:
        case, emitted = burglary()
        async with uow.transaction() as repo:
            assert await repo.record_and_emit([], {}) == []
            await repo.lock_case(case.case_id, "0265")
            await repo.save_case(case)
            first = await repo.record_and_emit(emitted, kommune_of(case))
        async with uow.transaction() as repo:
            second = await repo.record_and_emit(emitted, kommune_of(case))  # the same facts computed again
        assert [e.id for e in first] == [e.id for e in second] and len(first) == len(emitted) > 0
        assert await self.emitted(uow) == [e.id for e in first]
        assert {e.subject for e in first} == {str(case.case_id)} and {e.kommune for e in first} == {"0265"}
