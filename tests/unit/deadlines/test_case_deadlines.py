"""CaseDeadlines with the district's rules: every rule's life, duplicates and events out of order."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import pytest

from services.deadlines.adapters.repository import case_from_records, case_to_records
from services.deadlines.adapters.rules_file import DEFAULT_RULES_FILE, load_rules
from services.deadlines.domain.case_deadlines import CaseDeadlines
from services.deadlines.domain.deadline import DeadlineEvent, DeadlineState, deadline_id
from services.deadlines.domain.rules import Rule, RuleSet
from shared.events.deadlines import (
    DeadlineCancelled,
    DeadlineMet,
    DeadlineStarted,
    DeadlineWarning,
)
from shared.events.envelope import CloudEvent, UnknownEventType
from tests.support.cases import T0, action, apply, officer_requested, reported, tip

pytestmark = pytest.mark.unit

RULES = load_rules(DEFAULT_RULES_FILE)
H = timedelta(hours=1)


@dataclass(frozen=True)
class Example:
    """An event that starts the rule, and the category the case's actions carry."""

    start: Callable[[uuid.UUID, datetime], CloudEvent]
    category: str


EXAMPLES: dict[str, Example] = {
    "burglary_home_24h": Example(lambda c, t: reported(c, "burglary_home", t, in_progress=False), "burglary_home"),
    "burglary_home_in_progress": Example(
        lambda c, t: reported(c, "burglary_home", t, in_progress=True), "burglary_home"
    ),
    "violence_acute": Example(lambda c, t: reported(c, "violence", t, acute=True), "violence"),
    "rape_acute": Example(lambda c, t: reported(c, "rape", t, acute=True), "rape"),
    "drug_dealing_school_response": Example(lambda c, t: reported(c, "drug_dealing_school", t), "drug_dealing_school"),
    "drug_dealing_school_ssp": Example(lambda c, t: reported(c, "drug_dealing_school", t), "drug_dealing_school"),
    "tryghedsopfoelgning_burglary": Example(
        lambda c, t: reported(c, "burglary_home", t, in_progress=False), "burglary_home"
    ),
    "bestil_en_betjent_reply": Example(officer_requested, "traffic"),
    "bestil_en_betjent_carried_out": Example(officer_requested, "traffic"),
    "drug_tip_triage": Example(lambda c, t: tip(c, "drug_dealing_street", t), "drug_dealing_street"),
}


def test_every_rule_in_the_default_file_has_an_example_below() -> None:
    assert set(EXAMPLES) == set(RULES.ids)


def _of(rule: Rule, events: list[DeadlineEvent]) -> list[DeadlineEvent]:
    return [e for e in events if e.rule_id == rule.id]


def _kinds(events: list[DeadlineEvent]) -> list[str]:
    return [type(e).__name__.removeprefix("Deadline") for e in events]


def _opened(rule_id: str) -> tuple[CaseDeadlines, Rule, Example, list[DeadlineEvent]]:
    case_id = uuid.uuid4()
    case = CaseDeadlines(case_id)
    example = EXAMPLES[rule_id]
    emitted = apply(case, example.start(case_id, T0), RULES)
    return case, RULES.get(rule_id), example, emitted


per_rule = pytest.mark.parametrize("rule_id", RULES.ids)


# -- every rule of the default file ---------------------------------------------------------------


@per_rule
def test_rule_starts_its_deadline_from_the_report_time(rule_id: str) -> None:
    case, rule, _, emitted = _opened(rule_id)
    deadline = case.deadlines[rule_id]
    assert deadline.id == deadline_id(case.case_id, rule_id)
    assert (deadline.started_at, deadline.due_at) == (T0, T0 + rule.window)
    assert deadline.kommune == "0265"
    started = _of(rule, emitted)
    assert len(started) == 1 and isinstance(started[0], DeadlineStarted)
    assert started[0].window_seconds == rule.window.total_seconds()
    assert started[0].rules_version == RULES.version


@per_rule
def test_rule_warns_at_each_fraction_and_breaches_when_nothing_happens(rule_id: str) -> None:
    case, rule, _, _ = _opened(rule_id)
    fired: list[DeadlineEvent] = []
    for fraction in rule.warn_at:
        fired += _of(rule, case.fire(T0 + rule.window * fraction))
    fired += _of(rule, case.fire(T0 + rule.window))
    fired += _of(rule, case.fire(T0 + rule.window * 2))
    assert _kinds(fired) == ["Warning"] * len(rule.warn_at) + ["Breached"]
    assert [e.fraction for e in fired if isinstance(e, DeadlineWarning)] == list(rule.warn_at)
    assert case.deadlines[rule_id].state is DeadlineState.BREACHED


@per_rule
def test_rule_is_met_in_time_by_each_of_its_stop_actions(rule_id: str) -> None:
    rule = RULES.get(rule_id)
    for stop in rule.stop_on:
        case, _, example, _ = _opened(rule_id)
        emitted = apply(case, action(case.case_id, stop, T0 + rule.window / 2, category=example.category), RULES)
        met = _of(rule, emitted)
        assert _kinds(met) == ["Met"], stop
        assert isinstance(met[0], DeadlineMet)
        assert (met[0].action, met[0].late) == (stop, False)
        assert met[0].response_seconds == (rule.window / 2).total_seconds()


@per_rule
def test_rule_is_met_late_after_its_breach(rule_id: str) -> None:
    case, rule, example, _ = _opened(rule_id)
    assert _kinds(_of(rule, case.fire(T0 + rule.window))) == ["Breached"]
    late_at = T0 + rule.window + H
    met = _of(rule, apply(case, action(case.case_id, rule.stop_on[0], late_at, category=example.category), RULES))
    assert isinstance(met[0], DeadlineMet) and len(met) == 1
    assert (met[0].late, met[0].met_at) == (True, late_at)


@per_rule
def test_closing_the_case_cancels_the_rule_unless_it_says_otherwise(rule_id: str) -> None:
    case, rule, example, _ = _opened(rule_id)
    closed = action(case.case_id, "closed", T0 + rule.window / 4, category=example.category, outcome="henlagt")
    effect = _of(rule, apply(case, closed, RULES))
    if "closed" in rule.stop_on:
        assert _kinds(effect) == ["Met"]
    elif "closed" in rule.cancel_on:
        assert _kinds(effect) == ["Cancelled"]
        assert isinstance(effect[0], DeadlineCancelled) and effect[0].outcome == "henlagt"
    else:
        # The follow-up is owed to the citizen even when the investigation is closed.
        assert effect == []
        assert case.deadlines[rule_id].state is DeadlineState.PENDING


@per_rule
def test_citizen_asking_for_later_moves_only_rules_that_allow_it(rule_id: str) -> None:
    case, rule, example, _ = _opened(rule_id)
    asked = action(
        case.case_id,
        "citizen_requested_later",
        T0 + rule.window / 4,
        category=example.category,
        requested_time=T0 + rule.window * 2,
    )
    effect = _of(rule, apply(case, asked, RULES))
    if rule.reschedule_on == "citizen_requested_later":
        assert _kinds(effect) == ["Rescheduled"]
        assert case.deadlines[rule_id].due_at == T0 + rule.window * 2
    else:
        assert effect == []
        assert case.deadlines[rule_id].due_at == T0 + rule.window


@per_rule
def test_duplicate_start_and_duplicate_action_change_nothing(rule_id: str) -> None:
    case, rule, example, _ = _opened(rule_id)
    assert apply(case, example.start(case.case_id, T0), RULES) == []
    # A redelivered report with a new envelope id (intake retried the publish) is still the same report.
    assert apply(case, example.start(case.case_id, T0 + H), RULES) == []
    once = action(case.case_id, rule.stop_on[0], T0 + rule.window / 2, category=example.category)
    assert _kinds(_of(rule, apply(case, once, RULES))) == ["Met"]
    before = case.deadlines, case.actions
    again = CloudEvent.of(
        once.payload(), source=once.source, subject=once.subject, kommune=once.kommune, time=once.time
    )
    assert again.id != once.id
    assert apply(case, once, RULES) == []
    assert apply(case, again, RULES) == []
    assert (case.deadlines, case.actions) == before


@per_rule
def test_stop_action_that_arrives_before_the_report_meets_the_deadline_when_it_starts(rule_id: str) -> None:
    rule = RULES.get(rule_id)
    example = EXAMPLES[rule_id]
    case_id = uuid.uuid4()
    case = CaseDeadlines(case_id)
    assert apply(case, action(case_id, rule.stop_on[0], T0 + rule.window / 2, category=example.category), RULES) == []
    assert case.deadlines == {} and len(case.actions) == 1
    emitted = _of(rule, apply(case, example.start(case_id, T0), RULES))
    assert _kinds(emitted) == ["Started", "Met"]
    assert isinstance(emitted[1], DeadlineMet) and emitted[1].late is False
    assert case.deadlines[rule_id].next_fire_at is None


# -- one case, several deadlines ------------------------------------------------------------------


def test_a_burglary_starts_the_guarantee_and_the_follow_up_and_each_stops_on_its_own_action() -> None:
    case_id = uuid.uuid4()
    case = CaseDeadlines(case_id)
    emitted = apply(case, reported(case_id, "burglary_home", T0, in_progress=False), RULES)
    assert sorted(e.rule_id for e in emitted) == ["burglary_home_24h", "tryghedsopfoelgning_burglary"]
    on_scene = apply(case, action(case_id, "on_scene", T0 + 5 * H, category="burglary_home"), RULES)
    assert [(e.rule_id, type(e)) for e in on_scene] == [("burglary_home_24h", DeadlineMet)]
    assert case.next_fire_at == T0 + 7 * 24 * H  # the follow-up's first warning
    followup = apply(case, action(case_id, "followup_done", T0 + 72 * H, category="burglary_home"), RULES)
    assert [(e.rule_id, type(e)) for e in followup] == [("tryghedsopfoelgning_burglary", DeadlineMet)]
    assert case.next_fire_at is None


def test_actions_before_the_report_are_replayed_in_the_order_they_happened() -> None:
    # Arrived at 3 h, closed at 5 h; both reach us before the report, the closing first.
    case_id = uuid.uuid4()
    case = CaseDeadlines(case_id)
    apply(case, action(case_id, "closed", T0 + 5 * H, category="burglary_home", outcome="opklaret"), RULES)
    apply(case, action(case_id, "on_scene", T0 + 3 * H, category="burglary_home"), RULES)
    emitted = apply(case, reported(case_id, "burglary_home", T0, in_progress=False), RULES)
    by_rule = {rule_id: _kinds([e for e in emitted if e.rule_id == rule_id]) for rule_id in case.deadlines}
    assert by_rule == {
        "burglary_home_24h": ["Started", "Met"],
        "tryghedsopfoelgning_burglary": ["Started"],
    }


def test_a_request_for_later_seen_before_the_report_moves_the_deadline_when_it_starts() -> None:
    case_id = uuid.uuid4()
    case = CaseDeadlines(case_id)
    apply(
        case,
        action(case_id, "citizen_requested_later", T0 + H, category="burglary_home", requested_time=T0 + 50 * H),
        RULES,
    )
    emitted = apply(case, reported(case_id, "burglary_home", T0, in_progress=False), RULES)
    guarantee = [e for e in emitted if e.rule_id == "burglary_home_24h"]
    assert _kinds(guarantee) == ["Started", "Rescheduled"]
    assert case.deadlines["burglary_home_24h"].due_at == T0 + 50 * H
    assert [type(e) for e in case.fire(T0 + 30 * H) if e.rule_id == "burglary_home_24h"] == [DeadlineWarning]


def test_a_late_stop_before_the_report_is_late_and_records_the_breach() -> None:
    case_id = uuid.uuid4()
    case = CaseDeadlines(case_id)
    apply(case, action(case_id, "on_scene", T0 + 30 * H, category="burglary_home"), RULES)
    emitted = apply(case, reported(case_id, "burglary_home", T0, in_progress=False), RULES)
    guarantee = [e for e in emitted if e.rule_id == "burglary_home_24h"]
    assert _kinds(guarantee) == ["Started", "Breached", "Met"]


def test_a_case_reloaded_from_its_records_carries_on_where_it_was() -> None:
    case_id = uuid.uuid4()
    case = CaseDeadlines(case_id)
    apply(case, action(case_id, "on_scene", T0 + 2 * H, category="burglary_home"), RULES)
    deadline_rows, action_rows = case_to_records(case)
    assert deadline_rows == [] and len(action_rows) == 1 and action_rows[0]["case_id"] == case_id
    reloaded = case_from_records(case_id, deadline_rows, action_rows)
    emitted = apply(reloaded, reported(case_id, "burglary_home", T0, in_progress=False), RULES)
    assert ("burglary_home_24h", DeadlineMet) in [(e.rule_id, type(e)) for e in emitted]
    again = case_from_records(case_id, *case_to_records(reloaded))
    assert again.deadlines == reloaded.deadlines and again.actions == reloaded.actions
    assert again.fire(T0 + 8 * 24 * H) == reloaded.fire(T0 + 8 * 24 * H)


def test_an_event_for_another_case_is_refused() -> None:
    case = CaseDeadlines(uuid.uuid4())
    with pytest.raises(ValueError, match="is for case"):
        apply(case, reported(uuid.uuid4(), "burglary_home", in_progress=False), RULES)


def test_an_unknown_case_event_type_is_left_to_the_caller() -> None:
    case_id = uuid.uuid4()
    event = CloudEvent(
        source="/mvsj/intake",
        type="dk.politi.case.reopened",
        subject=str(case_id),
        time=T0,
        kommune="0265",
        data={"case_id": str(case_id)},
    )
    with pytest.raises(UnknownEventType):
        apply(CaseDeadlines(case_id), event, RULES)


def test_a_deadline_takes_the_kommune_of_the_event_that_started_it() -> None:
    case_id = uuid.uuid4()
    case = CaseDeadlines(case_id)
    apply(case, reported(case_id, "violence", T0, acute=True, kommune="0316"), RULES)
    assert case.deadlines["violence_acute"].kommune == "0316"


def test_a_changed_rules_file_applies_to_new_deadlines_and_leaves_running_ones_alone() -> None:
    old_case, new_case = uuid.uuid4(), uuid.uuid4()
    case = CaseDeadlines(old_case)
    apply(case, reported(old_case, "violence", T0, acute=True), RULES)
    tighter = replace(RULES.get("violence_acute"), window=timedelta(minutes=10))
    newer = RuleSet(
        version=RULES.version + 1,
        rules=tuple(tighter if r.id == tighter.id else r for r in RULES),
    )
    reloaded = case_from_records(old_case, *case_to_records(case))
    assert apply(reloaded, reported(old_case, "violence", T0, acute=True), newer) == []
    running = reloaded.deadlines["violence_acute"]
    assert (running.due_at, running.rules_version) == (T0 + timedelta(minutes=15), RULES.version)
    assert _kinds(reloaded.fire(T0 + timedelta(minutes=10))) == ["Warning"]  # not breached at 10 min
    fresh = CaseDeadlines(new_case)
    apply(fresh, reported(new_case, "violence", T0, acute=True), newer)
    started = fresh.deadlines["violence_acute"]
    assert (started.due_at, started.rules_version) == (T0 + timedelta(minutes=10), RULES.version + 1)
