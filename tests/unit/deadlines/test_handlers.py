"""The deadlines use cases (handlers.py) on an in-memory repository: case events in, due deadlines fired."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta

import pytest

from services.deadlines.adapters.rules_file import DEFAULT_RULES_FILE, load_rules
from services.deadlines.handlers import fire_due_deadlines, handle_case_event
from shared.consumer import Rejected
from shared.events import CloudEvent
from shared.events import deadlines as ev
from tests.support.cases import T0, action, reported
from tests.unit.deadlines.fakes import FakeDeadlinesRepository

pytestmark = pytest.mark.unit

H = timedelta(hours=1)
RULES = load_rules(DEFAULT_RULES_FILE)


async def handled(repo: FakeDeadlinesRepository, event: CloudEvent) -> list[CloudEvent]:
    """The use case as the consumer calls it: the payload, parsed once, and the envelope's facts."""
    return await handle_case_event(repo, event.meta, event.payload(), RULES)


async def burglary_reported(repo: FakeDeadlinesRepository) -> uuid.UUID:
    case_id = uuid.uuid4()
    event = reported(case_id, "burglary_home", in_progress=False)
    await handled(repo, event)
    return case_id


async def test_a_burglary_report_starts_the_24_hour_guarantee() -> None:
    repo = FakeDeadlinesRepository()
    case_id = await burglary_reported(repo)
    assert repo.locked == [case_id]
    started = {e.data["rule_id"]: e for e in repo.outbox if e.type == ev.STARTED}
    assert "burglary_home_24h" in started
    assert started["burglary_home_24h"].subject == str(case_id) and started["burglary_home_24h"].kommune == "0265"


async def test_a_deadline_is_warned_at_50_percent_of_its_window() -> None:
    repo = FakeDeadlinesRepository()
    await burglary_reported(repo)
    assert (await fire_due_deadlines(repo, T0 + 11 * H, 100)).claimed == 0
    result = await fire_due_deadlines(repo, T0 + 12 * H, 100)
    assert result.claimed == 1
    assert [(e.type, e.data["fraction"]) for e in result.envelopes] == [(ev.WARNING, 0.5)]
    assert (await fire_due_deadlines(repo, T0 + 12 * H, 100)).claimed == 0  # fired once


async def test_a_deadline_falling_due_is_breached_once_with_the_skipped_warnings_folded() -> None:
    repo = FakeDeadlinesRepository()
    await burglary_reported(repo)
    result = await fire_due_deadlines(repo, T0 + 25 * H, 100)
    assert [e.type for e in result.envelopes] == [ev.BREACHED]
    assert (await fire_due_deadlines(repo, T0 + 26 * H, 100)).envelopes == []


async def test_every_event_of_a_deadline_carries_the_reference_of_the_report() -> None:
    # notify names the case in an alert from the deadline event alone, even before it has seen cases.v1.
    repo = FakeDeadlinesRepository()
    case_id = uuid.uuid4()
    await handled(repo, reported(case_id, "burglary_home", in_progress=False, reference="MV-7K3Q-9FX"))
    await fire_due_deadlines(repo, T0 + 12 * H, 100)
    await fire_due_deadlines(repo, T0 + 25 * H, 100)
    # The action's own reference differs: the deadline keeps the report's.
    on_scene = action(case_id, "on_scene", T0 + 26 * H, category="burglary_home")
    assert on_scene.data["reference"] != "MV-7K3Q-9FX"
    await handled(repo, on_scene)
    guarantee = [e for e in repo.outbox if e.data["rule_id"] == "burglary_home_24h"]
    assert [e.type for e in guarantee] == [ev.STARTED, ev.WARNING, ev.BREACHED, ev.MET]
    assert [e.data["reference"] for e in guarantee] == ["MV-7K3Q-9FX"] * 4
    assert {e.data["reference"] for e in repo.outbox} == {"MV-7K3Q-9FX"}  # the follow-up target's too


async def test_on_scene_in_time_meets_the_deadline_and_the_timer_has_nothing_left() -> None:
    repo = FakeDeadlinesRepository()
    case_id = await burglary_reported(repo)
    arrived = action(case_id, "on_scene", T0 + 3 * H, category="burglary_home")
    envelopes = await handled(repo, arrived)
    assert [(e.type, e.data["rule_id"], e.data["late"]) for e in envelopes] == [(ev.MET, "burglary_home_24h", False)]
    assert (await fire_due_deadlines(repo, T0 + 30 * H, 100)).claimed == 0


async def test_on_scene_in_time_arriving_after_the_breach_withdraws_it_once() -> None:
    # Issue 14: the patrol was there at 23 h and recorded it at once, but intake's outbox held the
    # action until after the breach had fired.
    repo = FakeDeadlinesRepository()
    case_id = await burglary_reported(repo)
    await fire_due_deadlines(repo, T0 + 25 * H, 100)
    arrived = action(case_id, "on_scene", T0 + 23 * H, category="burglary_home")
    envelopes = await handled(repo, arrived)
    assert [(e.type, e.data["rule_id"]) for e in envelopes] == [
        (ev.BREACH_WITHDRAWN, "burglary_home_24h"), (ev.MET, "burglary_home_24h"),
    ]  # fmt: skip
    withdrawn, met = envelopes
    assert (withdrawn.data["action"], withdrawn.data["action_at"], withdrawn.data["reason"]) == (
        "on_scene", "2026-03-03T07:00:00Z", "action_in_time",
    )  # fmt: skip
    assert withdrawn.data["breached_at"] == withdrawn.data["due_at"] == "2026-03-03T08:00:00Z"
    assert withdrawn.kommune == "0265" and withdrawn.subject == str(case_id)
    assert met.data["late"] is False
    # Redelivered (the same action id): nothing changes, nothing is written again.
    assert await handled(repo, arrived) == []
    again = action(case_id, "on_scene", T0 + 22 * H, category="burglary_home")
    assert [e.type for e in await handled(repo, again)] == []
    assert [e.type for e in repo.outbox].count(ev.BREACH_WITHDRAWN) == 1


async def test_on_scene_in_time_recorded_more_than_a_week_after_the_due_time_leaves_the_breach() -> None:
    repo = FakeDeadlinesRepository()
    case_id = await burglary_reported(repo)
    await fire_due_deadlines(repo, T0 + 25 * H, 100)
    typed_in_late = action(case_id, "on_scene", T0 + 23 * H, category="burglary_home", recorded_at=T0 + 9 * 24 * H)
    envelopes = await handled(repo, typed_in_late)
    assert [(e.type, e.data["late"]) for e in envelopes if e.data["rule_id"] == "burglary_home_24h"] == [(ev.MET, True)]


async def test_an_unreadable_deadline_is_parked_and_the_others_still_fire() -> None:
    repo = FakeDeadlinesRepository()
    await burglary_reported(repo)
    await burglary_reported(repo)
    bad = next(d.id for d in repo.deadlines.values() if d.rule.id == "burglary_home_24h")
    repo.unreadable.add(bad)
    result = await fire_due_deadlines(repo, T0 + 25 * H, 100)
    assert result.claimed == 2 and result.parked == 1 and len(result.fired) == 1
    assert "KeyError" in repo.parked[bad]
    assert [e.type for e in result.envelopes] == [ev.BREACHED]


async def test_a_deadline_whose_envelope_cannot_be_built_is_parked_and_the_others_still_fire() -> None:
    """Hardening 20: the failure comes after the domain step, while the batch is being written."""
    repo = FakeDeadlinesRepository()
    await burglary_reported(repo)
    await burglary_reported(repo)
    bad = next(d for d in repo.deadlines.values() if d.rule.id == "burglary_home_24h")
    repo.deadlines[bad.id] = dataclasses.replace(bad, kommune="9999")  # no kommune of the district
    result = await fire_due_deadlines(repo, T0 + 25 * H, 100)
    assert result.claimed == 2 and result.parked == 1 and [d.id for d in result.fired] != [bad.id]
    assert "9999" in repo.parked[bad.id]
    assert [e.type for e in result.envelopes] == [ev.BREACHED]
    assert [e.type for e in repo.outbox if e.type == ev.BREACHED] == [ev.BREACHED]  # nothing of the bad row
    assert repo.deadlines[bad.id].state.value == "pending"  # its savepoint rolled back


async def test_an_event_whose_subject_is_not_its_case_is_rejected() -> None:
    repo = FakeDeadlinesRepository()
    event = reported(uuid.uuid4(), "burglary_home", in_progress=False)
    with pytest.raises(Rejected):
        await handle_case_event(
            repo, dataclasses.replace(event.meta, subject=str(uuid.uuid4())), event.payload(), RULES
        )
    assert repo.outbox == []
