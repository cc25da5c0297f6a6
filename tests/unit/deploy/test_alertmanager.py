"""deploy/alertmanager/alertmanager.yml: valid for amtool, every alert of alerts.yml reaches whom its severity says.

amtool (Debian's prometheus-alertmanager package) checks the config and resolves routes without a running
Alertmanager; inhibition needs one and is tested in tests/integration/ops/test_alertmanager.py.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.infra import ROOT

CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
BY_SEVERITY = {"critical": "ops-oncall", "warning": "ops-email", "info": "ops-overview"}


def amtool() -> str:
    found = shutil.which("amtool")
    if found is None:
        pytest.fail("amtool is missing: `make up` installs Debian's prometheus-alertmanager package")
    return found


def check(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([amtool(), "check-config", str(config)], capture_output=True, text=True, timeout=30)


def receivers_for(labels: dict[str, str], config: Path = CONFIG) -> list[str]:
    """The receivers Alertmanager would notify for an alert with these labels, in routing-tree order."""
    result = subprocess.run(
        [amtool(), "config", "routes", "test", f"--config.file={config}", *(f"{k}={v}" for k, v in labels.items())],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.split()


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]


def test_amtool_accepts_the_config() -> None:
    result = check(CONFIG)
    assert result.returncode == 0, result.stdout + result.stderr


def test_amtool_refuses_a_route_to_a_receiver_that_does_not_exist(tmp_path: Path) -> None:
    """Shows the check above can fail."""
    broken = CONFIG.read_text().replace("receiver: ops-oncall", "receiver: ops-pager")
    assert broken != CONFIG.read_text()
    (tmp_path / "alertmanager.yml").write_text(broken)
    result = check(tmp_path / "alertmanager.yml")
    assert result.returncode != 0
    assert "ops-pager" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        ({"alertname": "ServiceDown", "severity": "critical", "service": "intake"}, ["ops-oncall"]),
        ({"alertname": "NotifyDown", "severity": "critical", "job": "notify"}, ["ops-oncall"]),
        ({"alertname": "DeadLettered", "severity": "warning", "service": "notify"}, ["ops-email"]),
        ({"alertname": "GuaranteeBreached", "severity": "info", "kommune": "0265"}, ["ops-overview"]),
        ({"alertname": "SomethingNew"}, ["ops-email"]),  # no severity: someone reads it, nobody is paged
    ],
)
def test_routes_by_severity(labels: dict[str, str], receivers: list[str]) -> None:
    assert receivers_for(labels) == receivers


def test_every_alert_rule_reaches_the_receiver_of_its_severity() -> None:
    for rule in alert_rules():
        severity = rule["labels"]["severity"]
        assert severity in BY_SEVERITY, f"{rule['alert']}: severity {severity!r} has no route"
        labels = {"alertname": rule["alert"], "severity": severity, "service": "deadlines"}
        assert receivers_for(labels) == [BY_SEVERITY[severity]], rule["alert"]


def test_critical_alerts_page_by_webhook_and_e_mail_and_info_alerts_reach_nobody() -> None:
    receivers = {r["name"]: r for r in yaml.safe_load(CONFIG.read_text())["receivers"]}
    assert receivers["ops-oncall"]["webhook_configs"] and receivers["ops-oncall"]["email_configs"]
    assert set(receivers["ops-email"]) == {"name", "email_configs"}
    assert set(receivers["ops-overview"]) == {"name"}
    for hook in receivers["ops-oncall"]["webhook_configs"]:
        assert hook["send_resolved"] is True
        # The token is read from a file outside git, never written in the config.
        assert set(hook["http_config"]["authorization"]) == {"credentials_file"}


def test_inhibitions_name_only_alerts_that_exist() -> None:
    """A renamed alert must not silently stop being inhibited, or stop inhibiting."""
    known = {rule["alert"] for rule in alert_rules()}
    named: set[str] = set()
    for rule in yaml.safe_load(CONFIG.read_text())["inhibit_rules"]:
        for matcher in rule["source_matchers"] + rule["target_matchers"]:
            found = re.fullmatch(r'alertname(=~|=)"([^"]+)"', matcher)
            if found:
                named |= set(found.group(2).split("|"))
    assert named, "no inhibition names an alert"
    assert not named - known, f"inhibitions name alerts alerts.yml does not have: {sorted(named - known)}"


def test_prometheus_sends_to_the_alertmanager_port_the_demo_starts_and_kafka_keeps_off_it() -> None:
    from demo.__main__ import ALERTMANAGER_PORT

    prometheus = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    targets = [t for am in prometheus["alerting"]["alertmanagers"] for s in am["static_configs"] for t in s["targets"]]
    assert targets == [f"127.0.0.1:{ALERTMANAGER_PORT}"]
    kafka = (ROOT / "deploy" / "local" / "kafka.sh").read_text()
    defaults = {int(p) for p in re.findall(r"CONTROLLER_PORT=\$\{KAFKA_CONTROLLER_PORT:-(\d+)\}", kafka)}
    assert defaults, "kafka.sh no longer sets default controller ports"
    # The controllers of node 1..3 (base + 100 * (n - 1)) and Alertmanager's web and cluster ports.
    assert not {base + 100 * n for base in defaults for n in range(3)} & {ALERTMANAGER_PORT, 9094}
