"""The rules file: the district's defaults as docs/contract.md states them, matching, and refusing bad files."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.deadlines.adapters.rules_file import DEFAULT_RULES_FILE, DEMO_RULES_FILE, load_rules, parse_rules
from services.deadlines.domain.rules import Rule, RuleSet
from shared.datafile import DataFileError
from shared.events.envelope import CloudEvent
from tests.support.cases import T0, action, officer_requested, reported, tip
from tests.testdata import SECONDS_RULES_FILE

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules(DEFAULT_RULES_FILE)


# -- the default file -----------------------------------------------------------------------------


def test_default_file_is_versioned_and_holds_every_guarantee_and_local_target(rules: RuleSet) -> None:
    assert rules.version >= 1
    assert {r.id: r.basis for r in rules} == {
        "burglary_home_24h": "guarantee",
        "burglary_home_in_progress": "guarantee",
        "violence_acute": "guarantee",
        "rape_acute": "guarantee",
        "drug_dealing_school_response": "guarantee",
        "drug_dealing_school_ssp": "guarantee",
        "tryghedsopfoelgning_burglary": "local_target",
        "bestil_en_betjent_reply": "local_target",
        "bestil_en_betjent_carried_out": "local_target",
        "drug_tip_triage": "local_target",
    }


def test_burglary_guarantee_is_24_hours_by_law_and_moves_when_the_citizen_asks(rules: RuleSet) -> None:
    rule = rules.get("burglary_home_24h")
    assert rule.window == timedelta(hours=24)
    assert rule.window_set_by == "law"
    assert rule.start == "received_at"
    assert rule.stop_on == ("on_scene",)
    assert rule.reschedule_on == "citizen_requested_later"


@pytest.mark.parametrize(
    "rule_id", ["burglary_home_in_progress", "violence_acute", "rape_acute", "drug_dealing_school_response"]
)
def test_at_once_guarantees_say_the_law_has_no_number_and_the_window_is_the_districts(
    rules: RuleSet, rule_id: str
) -> None:
    rule = rules.get(rule_id)
    assert rule.law_says == "med det samme"
    assert rule.window_set_by == "district"
    assert rule.window == timedelta(minutes=15)
    assert rule.stop_on == ("on_scene",)


def test_local_targets_are_never_labelled_as_law(rules: RuleSet) -> None:
    for rule in rules:
        if rule.basis == "local_target":
            assert rule.window_set_by == "district"
            assert rule.law_says is None


def test_bestil_en_betjent_follows_national_practice(rules: RuleSet) -> None:
    reply = rules.get("bestil_en_betjent_reply")
    done = rules.get("bestil_en_betjent_carried_out")
    assert (reply.window, done.window) == (timedelta(days=14), timedelta(days=30))
    assert set(reply.stop_on) == {"replied", "carried_out"}
    assert done.stop_on == ("carried_out",)


def test_school_contact_and_follow_up_and_tip_triage(rules: RuleSet) -> None:
    ssp = rules.get("drug_dealing_school_ssp")
    assert ssp.stop_on == ("school_and_ssp_contacted",)
    assert ssp.cancel_on == ("closed",)
    followup = rules.get("tryghedsopfoelgning_burglary")
    assert followup.stop_on == ("followup_done",)
    assert followup.cancel_on == ()
    triage = rules.get("drug_tip_triage")
    assert "closed" in triage.stop_on
    assert triage.cancel_on == ()


def test_every_rule_has_a_danish_title_and_a_description(rules: RuleSet) -> None:
    for rule in rules:
        assert rule.title and rule.description, rule.id


def test_seconds_file_has_the_same_rules_with_windows_of_seconds(rules: RuleSet) -> None:
    fast = load_rules(SECONDS_RULES_FILE)
    assert fast.ids == rules.ids

    def terms(rule: Rule) -> dict[str, Any]:
        snapshot = rule.to_snapshot()
        for name in ("window", "warn_at", "description"):
            snapshot.pop(name)
        return snapshot

    for real, test in zip(rules, fast, strict=True):
        assert terms(test) == terms(real), real.id
        assert timedelta(seconds=1) < test.window <= timedelta(seconds=10), real.id
        assert test.warn_at == (0.5,)
    # Their order is the real one's: Bestil en betjent is answered before it is carried out.
    assert fast.get("bestil_en_betjent_reply").window < fast.get("bestil_en_betjent_carried_out").window


def test_rule_survives_a_snapshot_round_trip(rules: RuleSet) -> None:
    for rule in rules:
        assert Rule.from_snapshot(rule.to_snapshot()) == rule


# -- matching -------------------------------------------------------------------------------------

CASE = uuid.UUID("00000000-0000-4000-8000-000000000001")


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        pytest.param(
            reported(CASE, "burglary_home", in_progress=False),
            {"burglary_home_24h", "tryghedsopfoelgning_burglary"},
            id="burglary-over",
        ),
        pytest.param(
            reported(CASE, "burglary_home", in_progress=True),
            {"burglary_home_in_progress", "tryghedsopfoelgning_burglary"},
            id="burglary-in-progress",
        ),
        pytest.param(reported(CASE, "violence", acute=True), {"violence_acute"}, id="violence-acute"),
        pytest.param(reported(CASE, "violence", acute=False), set(), id="violence-not-acute"),
        pytest.param(reported(CASE, "rape", acute=True), {"rape_acute"}, id="rape-acute"),
        pytest.param(reported(CASE, "rape", acute=False), set(), id="rape-not-acute"),
        pytest.param(
            reported(CASE, "drug_dealing_school"),
            {"drug_dealing_school_response", "drug_dealing_school_ssp"},
            id="drug-dealing-school",
        ),
        pytest.param(reported(CASE, "drug_dealing_street"), set(), id="drug-dealing-street-report"),
        pytest.param(reported(CASE, "traffic"), set(), id="traffic"),
        pytest.param(reported(CASE, "domestic_violence"), set(), id="domestic-violence"),
        pytest.param(
            officer_requested(CASE),
            {"bestil_en_betjent_reply", "bestil_en_betjent_carried_out"},
            id="bestil-en-betjent",
        ),
        pytest.param(tip(CASE, "drug_dealing_street"), {"drug_tip_triage"}, id="tip-street"),
        pytest.param(tip(CASE, "drug_dealing_school"), {"drug_tip_triage"}, id="tip-school"),
        pytest.param(tip(CASE, "burglary_home"), set(), id="tip-burglary"),
        pytest.param(action(CASE, "on_scene", T0, category="burglary_home"), set(), id="action"),
    ],
)
def test_match_finds_the_rules_an_event_starts(rules: RuleSet, event: CloudEvent, expected: set[str]) -> None:
    assert {r.id for r in rules.match(event.type, event.payload())} == expected


def test_unknown_flag_is_not_taken_as_false(rules: RuleSet) -> None:
    # A burglary report that does not say whether the burglar is still there starts no 24 h guarantee
    # by accident: intake must state the flag (categories.yaml).
    event = reported(CASE, "burglary_home", in_progress=None)
    assert {r.id for r in rules.match(event.type, event.payload())} == {"tryghedsopfoelgning_burglary"}


# -- bad files ------------------------------------------------------------------------------------


def _valid_rule(**overrides: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": "burglary_24h",
        "title": "Indbrud: på stedet inden for 24 timer",
        "basis": "guarantee",
        "window_set_by": "law",
        "law_says": "inden for 24 timer",
        "when": {"event": "dk.politi.case.reported", "category": "burglary_home", "in_progress": False},
        "start": "received_at",
        "stop_on": ["on_scene"],
        "reschedule_on": "citizen_requested_later",
        "window": "PT24H",
        "warn_at": [0.5, 0.75, 0.9],
    }
    rule.update(overrides)
    return rule


def _document(*rules: dict[str, Any]) -> dict[str, Any]:
    return {"version": 3, "rules": list(rules) or [_valid_rule()]}


def _problems(document: object) -> list[str]:
    with pytest.raises(DataFileError) as caught:
        parse_rules(document, "rules.yaml")
    assert str(caught.value) == "\n".join(caught.value.problems)
    return caught.value.problems


def test_the_valid_document_used_below_is_valid() -> None:
    parsed = parse_rules(_document(), "rules.yaml")
    assert parsed.version == 3 and parsed.ids == ("burglary_24h",)


def test_window_error_reads_as_in_the_handbook() -> None:
    assert _problems(_document(_valid_rule(window="PT24"))) == [
        "rules.yaml: rule 'burglary_24h': window: 'PT24' is not an ISO 8601 duration like PT24H, PT15M or P14D"
    ]


def _without(name: str) -> Callable[[dict[str, Any]], None]:
    return lambda rule: rule.pop(name)


def _setting(name: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda rule: rule.__setitem__(name, value)


def _when(**values: Any) -> Callable[[dict[str, Any]], None]:
    return lambda rule: rule["when"].update(values)


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        (_setting("window", "P1M"), "window", "years, months or weeks"),
        (_setting("window", "PT0S"), "window", "longer than zero"),
        (_setting("window", 24), "window", "not an ISO 8601 duration"),
        (_setting("warn_at", [0.9, 0.5]), "warn_at", "rising order"),
        (_setting("warn_at", [0.5, 0.5]), "warn_at", "rising order"),
        (_setting("warn_at", [0.5, 1.0]), "warn_at", "not between 0 and 1"),
        (_setting("warn_at", [0, 0.5]), "warn_at", "not between 0 and 1"),
        (_setting("warn_at", [True]), "warn_at", "list of fractions"),
        (_setting("warn_at", 0.5), "warn_at", "list of fractions"),
        (_setting("stop_on", []), "stop_on", "non-empty list"),
        (_setting("stop_on", ["arrived"]), "stop_on", "unknown action 'arrived'"),
        (_setting("stop_on", ["on_scene", "on_scene"]), "stop_on", "twice"),
        (_setting("cancel_on", ["on_scene"]), "cancel_on", "also in stop_on"),
        (_setting("cancel_on", ["gone"]), "cancel_on", "unknown action 'gone'"),
        (_setting("reschedule_on", "dispatched"), "reschedule_on", "carries no requested time"),
        (_setting("basis", "law"), "basis", "'law' must be one of guarantee, local_target"),
        (_setting("window_set_by", "police"), "window_set_by", "law or district"),
        (_without("law_says"), "law_says", "must quote what the law says"),
        (_setting("title", "  "), "title", "non-empty"),
        (_setting("id", "Burglary 24h"), "id", "lower-case letters"),
        (_setting("start", "reported_at"), "start", "CaseReported has no field 'reported_at'"),
        (_setting("start", "occurred_at"), "start", "not a time every such event carries"),
        (_setting("start", "category"), "start", "not a time every such event carries"),
        (_setting("stop-on", ["on_scene"]), "stop-on", "unknown field"),
        (_without("warn_at"), "warn_at", "missing"),
        (_without("when"), "when", "missing"),
        (_setting("when", "reported"), "when", "must be a mapping"),
        (_when(event="dk.politi.case.opened"), "when.event", "'dk.politi.case.opened' is not a case event type"),
        (_when(event="dk.politi.deadline.met"), "when.event", "is not a case event type"),
        (_when(category="burglary"), "when.category", "unknown category 'burglary'"),
        (_when(category=[]), "when.category", "empty list"),
        (_when(in_progress="no"), "when.in_progress", "'no' is not a valid value for CaseReported.in_progress"),
        (_when(acute=True), "when.acute", "category 'burglary_home' has no flag acute"),
        (_when(colour="red"), "when.colour", "CaseReported has no field 'colour'"),
        (_when(focus_area="indbrudd"), "when.focus_area", "unknown focus area"),
    ],
)
def test_each_problem_names_file_rule_and_field(
    change: Callable[[dict[str, Any]], None], field: str, says: str
) -> None:
    rule = _valid_rule()
    change(rule)
    problems = _problems(_document(rule))
    rule_label = f"rule {rule['id']!r}"
    assert any(p.startswith(f"rules.yaml: {rule_label}: {field}: ") and says in p for p in problems), problems


def test_a_rule_without_a_usable_id_is_named_by_its_place() -> None:
    second = _valid_rule(window="soon")
    del second["id"]
    problems = _problems(_document(_valid_rule(), second))
    assert "rules.yaml: rule #2: id: missing" in problems
    assert any(p.startswith("rules.yaml: rule #2: window: 'soon'") for p in problems)


def test_duplicate_ids_are_refused() -> None:
    problems = _problems(_document(_valid_rule(), _valid_rule(window="PT1H")))
    assert problems == ["rules.yaml: rule 'burglary_24h' (#2): id: already used by rule #1"]


def test_problems_of_rules_sharing_an_id_say_which_one() -> None:
    problems = _problems(_document(_valid_rule(), _valid_rule(window="PT24")))
    assert problems[0].startswith("rules.yaml: rule 'burglary_24h' (#2): window: 'PT24'")


def test_local_target_must_not_claim_the_law() -> None:
    problems = _problems(_document(_valid_rule(id="followup", basis="local_target", window_set_by="law", law_says="x")))
    assert (
        "rules.yaml: rule 'followup': window_set_by: 'law': a local target's window is always set by the district"
        in problems
    )
    assert any(p.startswith("rules.yaml: rule 'followup': law_says: ") for p in problems)


def test_a_flag_needs_a_category_that_has_it() -> None:
    rule = _valid_rule()
    del rule["when"]["category"]
    problems = _problems(_document(rule))
    assert any(p.startswith("rules.yaml: rule 'burglary_24h': when.in_progress: the flag") for p in problems)


def test_every_problem_is_reported_at_once() -> None:
    problems = _problems(_document(_valid_rule(window="PT24", warn_at=[2], stop_on=[])))
    assert [p.split(": ")[2] for p in problems] == ["stop_on", "window", "warn_at"]


@pytest.mark.parametrize(
    ("document", "says"),
    [
        ({"version": 1, "rules": []}, "rules.yaml: rules: must be a non-empty list"),
        ({"rules": [_valid_rule()]}, "rules.yaml: version: must be a whole number from 1 up, not None"),
        ({"version": "1", "rules": [_valid_rule()]}, "rules.yaml: version: must be a whole number"),
        ({"version": 1, "rules": [_valid_rule()], "defaults": {}}, "rules.yaml: defaults: unknown field"),
        ({"version": 1, "rules": ["burglary"]}, "rules.yaml: rule #1: must be a mapping of fields"),
        ([_valid_rule()], "rules.yaml: must be a mapping"),
    ],
)
def test_file_level_problems(document: object, says: str) -> None:
    assert any(p.startswith(says) for p in _problems(copy.deepcopy(document))), says


def test_load_names_the_file_for_yaml_and_read_errors(tmp_path: Path) -> None:
    broken = tmp_path / "rules.yaml"
    broken.write_text("version: 1\nrules: [\n", encoding="utf-8")
    with pytest.raises(DataFileError, match=f"^{broken}: not valid YAML"):
        load_rules(broken)
    with pytest.raises(DataFileError, match="cannot read the rules file"):
        load_rules(tmp_path / "missing.yaml")


def test_load_reads_a_file_and_reports_its_path(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(_document(_valid_rule(window="PT24"))), encoding="utf-8")
    with pytest.raises(DataFileError) as caught:
        load_rules(path)
    assert caught.value.problems == [
        f"{path}: rule 'burglary_24h': window: 'PT24' is not an ISO 8601 duration like PT24H, PT15M or P14D"
    ]
    path.write_text(yaml.safe_dump(_document()), encoding="utf-8")
    assert load_rules(path).source == str(path)


def test_demo_file_has_the_same_rules_and_warnings_with_windows_of_minutes(rules: RuleSet) -> None:
    demo = load_rules(DEMO_RULES_FILE)
    assert demo.ids == rules.ids
    for real, quick in zip(rules, demo, strict=True):
        assert {**quick.to_snapshot(), "window": None} == {**real.to_snapshot(), "window": None}, real.id
        assert timedelta(seconds=30) <= quick.window <= timedelta(minutes=10), real.id
    # The real windows' order survives the scaling: a longer promise stays longer.
    for a in rules:
        for b in rules:
            if a.window < b.window:
                assert demo.get(a.id).window <= demo.get(b.id).window, (a.id, b.id)
