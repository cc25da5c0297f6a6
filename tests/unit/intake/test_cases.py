"""The case lifecycle: which police actions a case takes, in what order, and what the citizen sees."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime, timedelta

import pytest

from services.intake.domain.cases import (
    Allowed,
    CaseFacts,
    CaseKind,
    CaseStatusView,
    Conflict,
    RecordedAction,
    case_status,
    decide_action,
    status_view,
)
from services.intake.entrypoints.bodies import ActionIn
from services.intake.handlers import recorded_action
from shared.events.cases import Action

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
BURGLARY = CaseFacts(kind="report", category="burglary_home", received_at=T0, in_progress=False)
BURGLARY_IN_PROGRESS = CaseFacts(kind="report", category="burglary_home", received_at=T0, in_progress=True)
SCHOOL_DEALING = CaseFacts(kind="report", category="drug_dealing_school", received_at=T0)
VIOLENCE = CaseFacts(kind="report", category="violence", received_at=T0)
DRUG_TIP = CaseFacts(kind="tip", category="drug_dealing_street", received_at=T0)
SCHOOL_TIP = CaseFacts(kind="tip", category="drug_dealing_school", received_at=T0)
TALK = CaseFacts(kind="officer_request", category="other", received_at=T0)


def at(minutes: float, action: Action, requested_in: float | None = None) -> RecordedAction:
    """An action `minutes` after the report; `requested_in` minutes after it for a requested time."""
    requested = None if requested_in is None else T0 + timedelta(minutes=requested_in)
    return RecordedAction(action=action, occurred_at=T0 + timedelta(minutes=minutes), requested_time=requested)


def conflict(case: CaseFacts, recorded: list[RecordedAction], new: RecordedAction) -> Conflict:
    decision = decide_action(case, recorded, new)
    assert isinstance(decision, Conflict), decision
    assert decision.reason
    return decision


def allowed(case: CaseFacts, recorded: list[RecordedAction], new: RecordedAction) -> str:
    decision = decide_action(case, recorded, new)
    assert isinstance(decision, Allowed), decision
    return decision.status


def test_a_burglary_runs_from_dispatch_to_follow_up_to_closed() -> None:
    history: list[RecordedAction] = []
    for step, status in [(at(5, "dispatched"), "officer_dispatched"), (at(40, "on_scene"), "officer_on_scene"),
                         (at(60 * 48, "followup_done"), "officer_on_scene"), (at(60 * 49, "closed"), "closed")]:  # fmt: skip
        assert allowed(BURGLARY, history, step) == status
        history.append(step)


def test_closed_ends_the_case() -> None:
    closed = [at(10, "closed")]
    answer = conflict(DRUG_TIP, closed, at(20, "dispatched"))
    assert answer.code == "case_closed"
    assert "2026-03-01 08:10 UTC" in answer.reason
    assert conflict(TALK, closed, at(20, "closed")).code == "case_closed"


def test_the_burglary_follow_up_is_owed_even_after_the_case_is_closed() -> None:
    assert allowed(BURGLARY, [at(30, "on_scene"), at(60, "closed")], at(60 * 24, "followup_done")) == "closed"


def test_on_scene_is_for_reports_only_and_once() -> None:
    assert conflict(DRUG_TIP, [], at(30, "on_scene")).code == "not_for_kind"
    assert conflict(TALK, [], at(30, "on_scene")).code == "not_for_kind"
    answer = conflict(VIOLENCE, [at(12, "on_scene")], at(30, "on_scene"))
    assert answer.code == "already_recorded"
    assert "08:12" in answer.reason


def test_dispatched_is_once_and_happened_before_the_arrival() -> None:
    assert conflict(VIOLENCE, [at(5, "dispatched")], at(6, "dispatched")).code == "already_recorded"
    assert conflict(VIOLENCE, [at(12, "on_scene")], at(20, "dispatched")).code == "out_of_order"
    assert conflict(VIOLENCE, [at(12, "dispatched")], at(10, "on_scene")).code == "out_of_order"


def test_a_dispatch_keyed_in_after_the_arrival_is_fine_when_it_happened_first() -> None:
    # The status follows what happened, not the order it was typed in.
    assert allowed(VIOLENCE, [at(12, "on_scene")], at(3, "dispatched")) == "officer_on_scene"


def test_the_citizen_may_ask_for_a_later_visit_to_a_burglary_that_is_over() -> None:
    assert allowed(BURGLARY, [], at(10, "citizen_requested_later", requested_in=60 * 30)) == "scheduled"
    moved_again = [at(10, "citizen_requested_later", requested_in=60 * 30)]
    assert allowed(BURGLARY, moved_again, at(60, "citizen_requested_later", requested_in=60 * 50)) == "scheduled"


def test_a_later_visit_cannot_be_asked_for_where_it_does_not_apply() -> None:
    wish = at(10, "citizen_requested_later", requested_in=600)
    assert conflict(BURGLARY_IN_PROGRESS, [], wish).code == "not_for_category"
    assert conflict(VIOLENCE, [], wish).code == "not_for_category"
    assert conflict(BURGLARY, [at(5, "on_scene")], wish).code == "out_of_order"


def test_the_requested_time_lies_after_the_report() -> None:
    answer = conflict(BURGLARY, [], at(10, "citizen_requested_later", requested_in=-30))
    assert answer.code == "requested_time_not_later"
    assert conflict(BURGLARY, [], at(10, "citizen_requested_later")).code == "requested_time_missing"


def test_school_and_ssp_contact_is_only_for_drug_dealing_at_a_school() -> None:
    assert allowed(SCHOOL_DEALING, [at(15, "on_scene")], at(60, "school_and_ssp_contacted")) == "officer_on_scene"
    assert allowed(SCHOOL_TIP, [], at(60, "school_and_ssp_contacted")) == "received"
    assert conflict(DRUG_TIP, [], at(60, "school_and_ssp_contacted")).code == "not_for_category"
    assert conflict(SCHOOL_DEALING, [at(60, "school_and_ssp_contacted")],
                    at(90, "school_and_ssp_contacted")).code == "already_recorded"  # fmt: skip


def test_the_burglary_follow_up_comes_after_the_patrols_visit() -> None:
    assert conflict(BURGLARY, [], at(60, "followup_done")).code == "out_of_order"
    assert conflict(BURGLARY, [at(60, "on_scene")], at(30, "followup_done")).code == "out_of_order"
    assert conflict(VIOLENCE, [at(10, "on_scene")], at(60, "followup_done")).code == "not_for_category"


@pytest.mark.parametrize("action", ["dispatched", "followup_done", "closed"])
def test_a_tip_takes_dispatch_follow_up_and_closing(action: Action) -> None:
    assert isinstance(decide_action(DRUG_TIP, [], at(30, action)), Allowed)


def test_bestil_en_betjent_is_replied_then_carried_out() -> None:
    assert allowed(TALK, [], at(60, "replied")) == "replied"
    assert allowed(TALK, [], at(60, "carried_out")) == "carried_out"  # doing it is also the answer
    assert conflict(TALK, [at(60, "replied")], at(30, "carried_out")).code == "out_of_order"
    assert allowed(TALK, [at(60, "replied")], at(60 * 24 * 20, "carried_out")) == "carried_out"
    assert conflict(TALK, [], at(5, "dispatched")).code == "not_for_kind"
    assert conflict(BURGLARY, [], at(5, "replied")).code == "not_for_kind"


def test_a_case_cannot_close_before_what_was_recorded_on_it() -> None:
    answer = conflict(VIOLENCE, [at(5, "dispatched"), at(20, "on_scene")], at(15, "closed"))
    assert answer.code == "out_of_order"
    assert "on_scene" in answer.reason


@pytest.mark.parametrize(
    ("kind", "history", "status"),
    [
        ("report", [], "received"),
        ("report", [at(5, "dispatched")], "officer_dispatched"),
        ("report", [at(5, "dispatched"), at(20, "on_scene")], "officer_on_scene"),
        ("report", [at(5, "citizen_requested_later", requested_in=600)], "scheduled"),
        ("report", [at(5, "citizen_requested_later", requested_in=600), at(590, "dispatched")], "officer_dispatched"),
        ("officer_request", [at(60, "replied")], "replied"),
        ("officer_request", [at(60, "replied"), at(600, "carried_out")], "carried_out"),
        ("tip", [at(5, "dispatched"), at(60, "closed")], "closed"),
    ],
)
def test_the_status_a_citizen_sees(kind: CaseKind, history: list[RecordedAction], status: str) -> None:
    case = CaseFacts(kind=kind, category="other", received_at=T0)
    assert case_status(case, history)[0] == status


def test_the_status_view_carries_labels_and_no_personal_data() -> None:
    view = status_view(BURGLARY, "MV-7K3Q-9FX", [at(5, "dispatched"), at(40, "on_scene")])
    assert view.status == "officer_on_scene"
    assert view.label_da == "Politiet er kommet frem"
    assert view.label_en == "Police have arrived"
    assert view.since == T0 + timedelta(minutes=40)
    assert {f.name for f in fields(CaseStatusView)} == {"reference", "kind", "category", "status", "label_da", "label_en",
                                                 "since"}  # fmt: skip
    assert status_view(TALK, "MV-7K3Q-9FX", []).label_da == "Modtaget"


def test_a_police_request_becomes_a_recorded_action() -> None:
    request = ActionIn.model_validate(
        {
            "action": "citizen_requested_later",
            "occurred_at": "2026-03-01T09:00:00+01:00",
            "requested_time": "2026-03-02T17:00:00+01:00",
        }
    )
    assert allowed(BURGLARY, [], recorded_action(request)) == "scheduled"
