"""Intake's use cases (handlers.py) on an in-memory unit of work: what happens when a burglary is reported."""

from __future__ import annotations

import random
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from services.intake.domain.cases import STATUS_LABELS
from services.intake.domain.reference import new_reference
from services.intake.entrypoints.bodies import ActionIn
from services.intake.handlers import (
    ActionRefused,
    CaseDetails,
    CaseNotFound,
    IdempotencyKey,
    IdempotencyKeyReused,
    NewAction,
    NewCase,
    OutOfReach,
    read_status,
    record_action,
    report_case,
)
from shared.events import cases as ev
from tests.unit.intake.fakes import FakeUnitOfWork

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def burglary() -> NewCase:
    return NewCase(
        case_id=uuid.uuid4(), kind="report", category="burglary_home", focus_area="indbrud", kommune="0265",
        received_at=NOW, details=CaseDetails(description="Terrassedøren brudt op", contact_phone="+4520304050"),
        in_progress=False,
    )  # fmt: skip


def on_scene(case_id: uuid.UUID, at: datetime) -> NewAction:
    request = ActionIn.model_validate({"action": "on_scene", "occurred_at": at.isoformat()})
    return NewAction(uuid.uuid4(), case_id, request, recorded_at=at, recorded_by="dev-police")


async def test_a_reported_burglary_is_stored_and_its_event_waits_in_the_outbox_without_the_person() -> None:
    uow = FakeUnitOfWork()
    case = burglary()
    answer = await report_case(uow, case, None, rng=random.Random(7))
    assert answer.status_code == 202 and answer.body["reference"] == new_reference(random.Random(7))
    [event] = uow.committed.outbox
    assert event.type == ev.REPORTED and event.subject == str(case.case_id) and event.kommune == "0265"
    assert "+4520304050" not in event.to_bytes().decode() and "Terrassedøren" not in event.to_bytes().decode()


async def test_a_taken_reference_is_replaced_in_the_answer_the_event_and_the_remembered_key() -> None:
    taken = new_reference(random.Random(7))
    uow = FakeUnitOfWork(taken_references={taken})
    key = IdempotencyKey("portal", "form-1", "hash-1")
    answer = await report_case(uow, burglary(), key, rng=random.Random(7))
    assert answer.body["reference"] != taken
    assert uow.committed.outbox[0].data["reference"] == answer.body["reference"]
    again = await report_case(uow, burglary(), key, rng=random.Random(8))
    assert again.replayed and again.body == answer.body and len(uow.committed.outbox) == 1


async def test_a_key_reused_for_another_request_is_refused_and_nothing_is_stored() -> None:
    uow = FakeUnitOfWork()
    await report_case(uow, burglary(), IdempotencyKey("portal", "form-1", "hash-1"))
    with pytest.raises(IdempotencyKeyReused):
        await report_case(uow, burglary(), IdempotencyKey("portal", "form-1", "hash-2"))
    assert len(uow.committed.new_cases) == 1


async def test_a_failure_before_the_commit_leaves_neither_the_case_nor_its_event() -> None:
    uow = FakeUnitOfWork()
    uow.fail_before_commit = ConnectionResetError("lost at commit")
    with pytest.raises(ConnectionResetError):
        await report_case(uow, burglary(), None)
    assert uow.committed.new_cases == [] and uow.committed.outbox == []


async def test_police_on_scene_is_recorded_once_and_published_with_the_case_category() -> None:
    uow = FakeUnitOfWork()
    case = burglary()
    await report_case(uow, case, None)
    answer = await record_action(uow, on_scene(case.case_id, NOW + timedelta(hours=2)), None)
    assert answer.status_code == 202
    recorded = uow.committed.outbox[-1]
    assert recorded.type == ev.ACTION_RECORDED and recorded.data["category"] == "burglary_home"
    assert uow.committed.actions[0][1] == "officer_on_scene"
    with pytest.raises(ActionRefused) as refused:
        await record_action(uow, on_scene(case.case_id, NOW + timedelta(hours=3)), None)
    assert refused.value.code == "already_recorded"
    with pytest.raises(CaseNotFound):
        await record_action(uow, on_scene(uuid.uuid4(), NOW), None)


async def test_an_action_outside_the_recorders_kommune_is_refused_and_records_nothing() -> None:
    uow = FakeUnitOfWork()
    case = burglary()
    await report_case(uow, case, None)
    elsewhere = replace(on_scene(case.case_id, NOW + timedelta(hours=2)), only_kommune="0253")
    with pytest.raises(OutOfReach):
        await record_action(uow, elsewhere, None)
    assert uow.committed.actions == []
    own = replace(on_scene(case.case_id, NOW + timedelta(hours=2)), only_kommune=case.kommune)
    assert (await record_action(uow, own, None)).status_code == 202


async def test_a_citizen_reads_the_status_the_police_action_moved_it_to_and_an_unknown_case_is_not_found() -> None:
    uow = FakeUnitOfWork()
    case = burglary()
    answer = await report_case(uow, case, None, rng=random.Random(7))
    received = await read_status(uow, case.case_id)
    assert (received.reference, received.status, received.since) == (answer.body["reference"], "received", NOW)
    await record_action(uow, on_scene(case.case_id, NOW + timedelta(hours=2)), None)
    seen = await read_status(uow, case.case_id)
    assert (seen.status, seen.label_da, seen.since) == (
        "officer_on_scene",
        STATUS_LABELS["officer_on_scene"][0],
        NOW + timedelta(hours=2),
    )
    with pytest.raises(CaseNotFound):
        await read_status(uow, uuid.uuid4())
