"""Which purpose the console's "Vis anmeldelse" is logged with: a follow-up alert's `followup`, any other's
`acute_response`."""

from __future__ import annotations

from importlib import resources

import pytest
import yaml

from services.notify.domain.report_access import ACUTE_RESPONSE, FOLLOWUP, purpose_da, report_purpose


@pytest.mark.parametrize(
    ("rule", "purpose"),
    [
        ("tryghedsopfoelgning_burglary", FOLLOWUP),
        ("burglary_home_24h", ACUTE_RESPONSE),  # a guarantee: on the scene within 24 hours
        ("burglary_home_in_progress", ACUTE_RESPONSE),
        ("violence_acute", ACUTE_RESPONSE),
        ("rape_acute", ACUTE_RESPONSE),
        ("drug_dealing_school_response", ACUTE_RESPONSE),
        ("a_rule_added_later", ACUTE_RESPONSE),
    ],
)
def test_a_follow_up_alert_is_read_for_followup_and_any_other_for_acute_response(rule: str, purpose: str) -> None:
    assert report_purpose(rule) == purpose


def test_the_follow_up_rules_of_the_real_rules_file_are_recognised() -> None:
    """A follow-up rule (met by followup_done alone) renamed without the prefix would be read for the wrong purpose."""
    text = resources.files("services.deadlines").joinpath("data", "politigarantier.yaml").read_text(encoding="utf-8")
    rules = yaml.safe_load(text)["rules"]
    followups = [r["id"] for r in rules if r.get("stop_on") == ["followup_done"]]
    assert followups == ["tryghedsopfoelgning_burglary"]
    assert {report_purpose(r) for r in followups} == {FOLLOWUP}
    others = [r["id"] for r in rules if r["id"] not in followups]
    assert others and {report_purpose(r) for r in others} == {ACUTE_RESPONSE}


def test_the_purpose_is_said_in_danish_with_its_code() -> None:
    assert purpose_da(ACUTE_RESPONSE) == "akut indsats (acute_response)"
    assert purpose_da(FOLLOWUP) == "tryghedsopfølgning (followup)"
    assert purpose_da("investigation") == "investigation"
