"""The alert rules behave as intended: promtool's unit tests (deploy/prometheus/tests) pass, and cover every alert."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.infra import ROOT

PROMETHEUS = ROOT / "deploy" / "prometheus"
ALERTS = PROMETHEUS / "alerts.yml"
RULE_TESTS = sorted((PROMETHEUS / "tests").glob("*.yml"))


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail(
            "promtool is missing: `make up` installs Debian's prometheus package (or apt-get install prometheus)"
        )
    return found


def run_rule_tests(files: list[Path]) -> subprocess.CompletedProcess[str]:
    # promtool resolves rule_files relative to each test file, so it runs from anywhere.
    return subprocess.run([promtool(), "test", "rules", *map(str, files)], capture_output=True, text=True, timeout=60)


def test_promtool_unit_tests_of_the_alert_rules_pass() -> None:
    assert RULE_TESTS, "no promtool tests in deploy/prometheus/tests"
    result = run_rule_tests(RULE_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_case_where_it_fires_and_one_where_it_stays_quiet() -> None:
    alerts = {rule["alert"] for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]}
    fires: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        document = yaml.safe_load(path.read_text())
        assert document["rule_files"] == ["../alerts.yml"], f"{path.name} must test the real rules"
        for case in document["tests"]:
            for check in case.get("alert_rule_test", []):
                (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert not alerts - fires, f"alerts never shown to fire: {sorted(alerts - fires)}"
    assert not alerts - quiet, f"alerts never shown to stay quiet: {sorted(alerts - quiet)}"
    assert not (fires | quiet) - alerts, f"tests name alerts that do not exist: {sorted((fires | quiet) - alerts)}"


def test_a_rule_changed_without_its_tests_makes_promtool_fail(tmp_path: Path) -> None:
    """Shows the check above can fail: the same tests against a rule with a looser threshold."""
    (tmp_path / "tests").mkdir()
    loosened = ALERTS.read_text().replace(
        "outbox_oldest_pending_age_seconds) > 60", "outbox_oldest_pending_age_seconds) > 600"
    )
    assert loosened != ALERTS.read_text()
    (tmp_path / "alerts.yml").write_text(loosened)
    for path in RULE_TESTS:
        shutil.copy(path, tmp_path / "tests" / path.name)
    result = run_rule_tests(sorted((tmp_path / "tests").glob("*.yml")))
    assert result.returncode != 0
    assert "OutboxStuck" in result.stdout + result.stderr
