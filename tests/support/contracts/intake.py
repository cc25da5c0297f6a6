"""The CaseRepository contract (services/intake/handlers.py): what every backend must do alike."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.intake.domain.cases import CaseFacts, RecordedAction
from services.intake.domain.reference import is_valid_reference
from services.intake.entrypoints.bodies import ActionIn
from services.intake.handlers import (
    Answer,
    CaseDetails,
    IdempotencyKey,
    IdempotencyKeyReused,
    NewAction,
    NewCase,
    StoredCase,
    Uow,
    accepted_body,
    action_event,
    case_event,
)

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
CPH = timezone(timedelta(hours=1))  # clients send local times; storage may answer in UTC, the instant is the same


class Boom(Exception):
    pass


def burglary() -> NewCase:
    return NewCase(
        case_id=uuid.uuid4(), kind="report", category="burglary_home", focus_area="indbrud", kommune="0265",
        received_at=T0, occurred_at=T0 - timedelta(hours=1), in_progress=False,
        details=CaseDetails(description="Terrassedøren brudt op", contact_phone="+4520304050"),
    )  # fmt: skip


def anonymous_tip() -> NewCase:
    return NewCase(
        case_id=uuid.uuid4(), kind="tip", category="drug_dealing_street", focus_area="narkotika_gadeplan",
        kommune="0316", received_at=T0, anonymous=True, details=CaseDetails(description="Salg bag hallen"),
    )  # fmt: skip


def police(case_id: uuid.UUID, action: str, at: datetime, **extra: object) -> NewAction:
    request = ActionIn.model_validate({"action": action, "occurred_at": at.isoformat()} | extra)
    return NewAction(uuid.uuid4(), case_id, request, recorded_at=T0 + timedelta(hours=3), recorded_by="dev-police")


def answer_for(case: NewCase, reference: str) -> Answer:
    return Answer(202, accepted_body(case.case_id, reference))


def stored_as(case: NewCase, reference: str, *actions: RecordedAction) -> StoredCase:
    facts = CaseFacts(
        kind=case.kind, category=case.category, received_at=case.received_at, in_progress=case.in_progress
    )
    return StoredCase(case.case_id, reference, case.kommune, facts, actions)


class CaseRepositoryContract:
    """Subclasses give `uow` (a fixture) and `emitted` (the event ids in the outbox, in the order written)."""

    @pytest.fixture
    def uow(self) -> Uow:
        raise NotImplementedError

    async def emitted(self, uow: Uow) -> list[uuid.UUID]:
        raise NotImplementedError

    async def stored(self, uow: Uow, case: NewCase, reference: str) -> str:
        async with uow.transaction() as repo:
            return await repo.insert_case(case, reference)

    async def load(self, uow: Uow, case_id: uuid.UUID, *, for_update: bool = False) -> StoredCase | None:
        async with uow.transaction() as repo:
            return await repo.load_case(case_id, for_update=for_update)

    async def claim(self, uow: Uow, key: IdempotencyKey, answer: Answer | None = None) -> Answer | None:
        async with uow.transaction() as repo:
            return await repo.claim_key(key, answer)

    async def test_a_stored_case_loads_with_its_facts_and_no_actions(self, uow: Uow) -> None:
        report, tip = burglary(), anonymous_tip()
        assert await self.stored(uow, report, "MV-6MXV-T4P") == "MV-6MXV-T4P"
        assert await self.stored(uow, tip, "MV-2345-67N") == "MV-2345-67N"
        assert await self.load(uow, report.case_id) == stored_as(report, "MV-6MXV-T4P")
        assert await self.load(uow, report.case_id, for_update=True) == stored_as(report, "MV-6MXV-T4P")
        assert await self.load(uow, tip.case_id) == stored_as(tip, "MV-2345-67N")
        assert await self.load(uow, uuid.uuid4()) is None

    async def test_a_taken_reference_is_drawn_again_and_the_case_stored_under_the_new_one(self, uow: Uow) -> None:
        first, second = burglary(), burglary()
        await self.stored(uow, first, "MV-6MXV-T4P")
        got = await self.stored(uow, second, "MV-6MXV-T4P")
        assert got != "MV-6MXV-T4P" and is_valid_reference(got)
        assert await self.load(uow, second.case_id) == stored_as(second, got)
        assert await self.load(uow, first.case_id) == stored_as(first, "MV-6MXV-T4P")
        # Taken inside the same transaction counts too.
        third, fourth = burglary(), burglary()
        async with uow.transaction() as repo:
            assert await repo.insert_case(third, "MV-2345-67N") == "MV-2345-67N"
            assert await repo.insert_case(fourth, "MV-2345-67N") != "MV-2345-67N"

    async def test_actions_load_in_the_order_they_were_recorded_with_their_times(self, uow: Uow) -> None:
        case = burglary()
        await self.stored(uow, case, "MV-6MXV-T4P")
        later = T0.astimezone(CPH) + timedelta(hours=2)
        asked = T0 + timedelta(days=1)
        # Recorded on scene first, the dispatch that led to it after: the order of recording, not of occurrence.
        async with uow.transaction() as repo:
            await repo.insert_action(police(case.case_id, "on_scene", later), "officer_on_scene")
        async with uow.transaction() as repo:
            await repo.insert_action(police(case.case_id, "dispatched", later - timedelta(hours=1)), "officer_on_scene")
            await repo.insert_action(
                police(case.case_id, "citizen_requested_later", later, requested_time=asked.isoformat()),
                "officer_on_scene",
            )
        loaded = await self.load(uow, case.case_id, for_update=True)
        assert loaded == stored_as(
            case,
            "MV-6MXV-T4P",
            RecordedAction("on_scene", later),
            RecordedAction("dispatched", later - timedelta(hours=1)),
            RecordedAction("citizen_requested_later", later, asked),
        )

    async def test_a_key_is_claimed_once_and_then_replays_its_first_answer(self, uow: Uow) -> None:
        case = burglary()
        key = IdempotencyKey("portal", "form-1", "hash-1")
        first = answer_for(case, "MV-6MXV-T4P")
        assert await self.claim(uow, key, first) is None
        again = await self.claim(uow, key, answer_for(burglary(), "MV-2345-67N"))
        assert again == Answer(202, first.body, replayed=True)
        with pytest.raises(IdempotencyKeyReused):
            await self.claim(uow, IdempotencyKey("portal", "form-1", "hash-2"))
        # Keys are per client: another client's form-1 is a key of its own.
        assert await self.claim(uow, IdempotencyKey("police-system", "form-1", "hash-2")) is None

    async def test_the_answer_remembered_after_the_claim_is_the_one_replayed(self, uow: Uow) -> None:
        case = burglary()
        claimed_bare = IdempotencyKey("police", "action-1", "hash-1")
        async with uow.transaction() as repo:
            assert await repo.claim_key(claimed_bare) is None
            await repo.remember(claimed_bare, answer_for(case, "MV-6MXV-T4P"))
        replayed = await self.claim(uow, claimed_bare)
        assert replayed == Answer(202, answer_for(case, "MV-6MXV-T4P").body, replayed=True)
        # A reference drawn again after the claim: the key's answer follows it (report_case).
        claimed_with = IdempotencyKey("portal", "form-2", "hash-2")
        async with uow.transaction() as repo:
            assert await repo.claim_key(claimed_with, answer_for(case, "MV-6MXV-T4P")) is None
            await repo.remember(claimed_with, answer_for(case, "MV-2345-67N"))
        replayed = await self.claim(uow, claimed_with)
        assert replayed is not None and replayed.body["reference"] == "MV-2345-67N"

    async def test_remember_keeps_nothing_for_a_key_never_claimed(self, uow: Uow) -> None:
        key = IdempotencyKey("portal", "form-1", "hash-1")
        async with uow.transaction() as repo:
            await repo.remember(key, answer_for(burglary(), "MV-6MXV-T4P"))
        assert await self.claim(uow, key) is None  # a first use, not a replay

    async def test_a_transaction_that_raises_leaves_nothing(self, uow: Uow) -> None:
        kept = burglary()
        await self.stored(uow, kept, "MV-6MXV-T4P")
        undone = burglary()
        key = IdempotencyKey("portal", "form-1", "hash-1")
        with pytest.raises(Boom):
            async with uow.transaction() as repo:
                await repo.claim_key(key, answer_for(undone, "MV-2345-67N"))
                await repo.insert_case(undone, "MV-2345-67N")
                await repo.emit(case_event(undone, "MV-2345-67N"))
                action = police(kept.case_id, "dispatched", T0 + timedelta(minutes=5))
                await repo.insert_action(action, "officer_dispatched")
                await repo.emit(action_event(stored_as(kept, "MV-6MXV-T4P"), action))
                raise Boom
        assert await self.load(uow, undone.case_id) is None
        assert await self.load(uow, kept.case_id) == stored_as(kept, "MV-6MXV-T4P")  # no action on it
        assert await self.claim(uow, key) is None  # the key is free again: a retry is a first request
        assert await self.emitted(uow) == []
        assert await self.stored(uow, burglary(), "MV-2345-67N") == "MV-2345-67N"  # so is the reference

    async def test_events_wait_in_the_outbox_in_the_order_written(self, uow: Uow) -> None:
        case = burglary()
        reported = case_event(case, "MV-6MXV-T4P")
        dispatched = police(case.case_id, "dispatched", T0 + timedelta(minutes=5))
        on_scene = police(case.case_id, "on_scene", T0 + timedelta(minutes=20))
        stored = stored_as(case, "MV-6MXV-T4P")
        async with uow.transaction() as repo:
            await repo.insert_case(case, "MV-6MXV-T4P")
            await repo.emit(reported)
            await repo.emit(first := action_event(stored, dispatched))
        async with uow.transaction() as repo:
            await repo.emit(second := action_event(stored, on_scene))
        assert await self.emitted(uow) == [reported.id, first.id, second.id]
