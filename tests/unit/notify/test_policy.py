"""Policy decisions: which deadline events raise what, for whom; a bad policy names its bad entries."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.notify.adapters.policy_file import DEFAULT_POLICY_FILE, load_policy, parse_policy
from shared.datafile import DataFileError
from shared.events import deadlines as d
from tests.testdata import SECONDS_POLICY_FILE


def test_default_policy_follows_the_domain() -> None:
    policy = load_policy(DEFAULT_POLICY_FILE)
    for acute in ("burglary_home_in_progress", "violence_acute", "rape_acute", "drug_dealing_school_response"):
        rule = policy.rule_for(d.STARTED, acute)
        assert rule is not None and rule.notify == ("vagtchef",) and rule.severity == "critical"
    assert policy.rule_for(d.STARTED, "burglary_home_24h") is None  # not acute: nothing at start
    warning = policy.rule_for(d.WARNING, "burglary_home_24h")
    assert warning is not None and warning.notify == ("lokalbetjente",) and warning.reason == "deadline_warning"
    breach = policy.rule_for(d.BREACHED, "burglary_home_24h")
    assert breach is not None and set(breach.notify) == {"vagtchef", "lokalbetjente"}
    assert breach.severity == "critical"
    assert policy.rule_for(d.MET, "burglary_home_24h") is None  # met resolves; it raises nothing


def test_the_seconds_policy_equals_the_real_one_but_for_its_times() -> None:
    real, fast = load_policy(DEFAULT_POLICY_FILE), load_policy(SECONDS_POLICY_FILE)
    assert [(r.id, r.on, r.reason, r.severity, r.notify, r.deadline_rules, r.chain.id, r.chain.steps)
            for r in real.rules] == [(r.id, r.on, r.reason, r.severity, r.notify, r.deadline_rules, r.chain.id,
                                      r.chain.steps) for r in fast.rules]  # fmt: skip
    assert all(c.ack_timeout <= timedelta(seconds=5) for c in fast.chains.values())


def test_a_bad_policy_names_each_bad_entry() -> None:
    doc = {
        "version": 1,
        "chains": {"c": {"ack_timeout": "ten minutes", "steps": ["vagtchef"], "reminder_interval": "PT5M"},
                   "ok": {"ack_timeout": "PT1M", "steps": ["chief"], "reminder_interval": "PT5M"}},
        "rules": [
            {"id": "w", "event": "dk.politi.deadline.warning", "reason": "deadline_warning", "severity": "loud",
             "notify": ["lokalbetjente"], "chain": "c"},
            {"id": "b", "event": "dk.politi.deadline.met", "reason": "deadline_breached", "severity": "critical",
             "notify": ["mayor"], "chain": "nope"},
        ],
    }  # fmt: skip
    with pytest.raises(DataFileError) as caught:
        parse_policy(doc, "p.yaml")
    problems = caught.value.problems
    assert any(p.startswith("p.yaml: chain 'c'.ack_timeout: 'ten minutes'") for p in problems)
    assert any(p.startswith("p.yaml: chain 'ok'.steps:") for p in problems)
    assert any(p.startswith("p.yaml: rule 'w'.severity: 'loud'") for p in problems)
    assert any(p.startswith("p.yaml: rule 'b'.event: 'dk.politi.deadline.met'") for p in problems)
    assert any(p.startswith("p.yaml: rule 'b'.notify: ['mayor']") for p in problems)
    assert any(p.startswith("p.yaml: rule 'b'.chain: 'nope'") for p in problems)
