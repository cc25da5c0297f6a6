"""The alert rules are valid and query metrics the services really export, checked with a real Prometheus."""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client import REGISTRY

from shared.kafka import EventProducer, OutgoingMessage
from tests.support.cases import reported
from tests.support.infra import ROOT, Namespace
from tests.support.notify import roster_document, write_roster
from tests.support.services import ServiceProcess, free_port, service_env
from tests.testdata import SECONDS_POLICY_FILE, SECONDS_RULES_FILE

METRIC_MODULES = (
    "shared.metrics",
    "services.deadlines.metrics",
    "services.intake.metrics",
    "services.notify.metrics",
    "services.reporting.metrics",
)
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
PROMQL_WORDS = {
    "sum", "by", "max", "min", "rate", "increase", "histogram_quantile", "le", "up", "without", "avg", "count",
    "and", "or", "unless", "on", "ignoring", "group_left", "group_right", "offset", "bool", "time",
}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers not in label matchers, grouping lists or functions."""
    stripped = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    stripped = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", stripped)  # grouping labels
    stripped = re.sub(r"\[[^\]]*\]", "", stripped)  # range selectors
    names = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", stripped))
    return {n for n in names if n not in PROMQL_WORDS and not re.fullmatch(r"\d.*", n)}


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]


def test_promtool_accepts_the_rules() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail(
            "promtool is missing: `make up` installs Debian's prometheus package (or apt-get install prometheus)"
        )
    result = subprocess.run([promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_metric_name_extraction_finds_names_and_ignores_labels() -> None:
    expr = "histogram_quantile(0.99, sum by (le) (rate(deadline_detection_lag_seconds_bucket[10m]))) > 1"
    assert metric_names(expr) == {"deadline_detection_lag_seconds_bucket"}
    assert metric_names('sum by (service, topic) (increase(consumer_events_total{outcome="x"}[15m])) > 0') == {
        "consumer_events_total"
    }
    assert metric_names("time() - max by (topic) (reporting_last_event_timestamp_seconds)") == {
        "reporting_last_event_timestamp_seconds"
    }


async def test_every_metric_an_alert_uses_is_scraped_from_the_running_services(ns: Namespace, tmp_path: Path) -> None:
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        pytest.fail("prometheus is missing: `make up` installs Debian's prometheus package")
    deadlines = ServiceProcess(
        "deadlines", service_env(ns, "deadlines", DEADLINE_RULES_FILE=str(SECONDS_RULES_FILE)), tmp_path / "d.log"
    )
    deadlines.migrate()
    deadlines.start()
    # notify behind deadlines, with a console-only roster: the acute report below raises an alert
    # that is delivered at once, so its labelled series exist.
    roster = write_roster(tmp_path / "roster.yaml", roster_document())
    notify = ServiceProcess(
        "notify",
        service_env(ns, "notify", ROSTER_FILE=str(roster), ALERT_POLICY_FILE=str(SECONDS_POLICY_FILE),
                    NOTIFY_GAUGES_INTERVAL_SECONDS="1"),
        tmp_path / "n.log",
    )  # fmt: skip
    notify.migrate()
    notify.start()
    prom_port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(ALERTS)],
                "scrape_configs": [
                    # The ops port, as deploy/prometheus/prometheus.yml scrapes it.
                    {"job_name": "deadlines", "static_configs": [{"targets": [f"127.0.0.1:{deadlines.ops_port}"]}]},
                    {"job_name": "notify", "static_configs": [{"targets": [f"127.0.0.1:{notify.ops_port}"]}]},
                ],
            }
        )
    )
    prom = subprocess.Popen(
        [prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{prom_port}"],
        stdout=subprocess.DEVNULL, stderr=(tmp_path / "prometheus.log").open("wb"),
    )  # fmt: skip
    try:
        deadlines.wait_ready()
        notify.wait_ready()
        # Traffic that makes the labelled series exist: a deadline that warns and breaches, and a
        # message the consumer must dead-letter.
        producer = EventProducer(ns.kafka, client_id="ops-test")
        case = reported(uuid.uuid4(), "violence", datetime.now(UTC), acute=True)
        await producer.send_batch([
            OutgoingMessage(ns.topics.cases, case.subject.encode(), case.to_bytes()),
            OutgoingMessage(ns.topics.cases, b"junk", b"not a cloudevent"),
        ])  # fmt: skip
        await producer.stop()

        api = f"http://127.0.0.1:{prom_port}/api/v1"
        wanted = set().union(*(metric_names(rule["expr"]) for rule in alert_rules()))
        must_have = {"up", "deadline_events_total", "deadline_detection_lag_seconds_bucket", "consumer_events_total",
                     "outbox_oldest_pending_age_seconds", "notify_deliveries_total", "notify_alerts_past_chain"}  # fmt: skip
        missing: set[str] = set(wanted)
        end = time.monotonic() + 40
        while missing & must_have and time.monotonic() < end:
            try:
                names = httpx.get(f"{api}/label/__name__/values", timeout=3).json()["data"]
                missing = wanted - set(names)
            except httpx.HTTPError:
                pass
            time.sleep(1)
        assert not missing & must_have, f"never reached Prometheus: {sorted(missing & must_have)}"
        # Series that need a failure nobody staged here (a DB outage, 5xx answers) must at least be
        # declared by the services' code, so a typo in a rule cannot hide behind "no incident yet".
        undeclared = {m for m in missing if m not in declared_metric_names()}
        assert not undeclared, f"alert rules use metrics no service declares: {sorted(undeclared)}"
        # Prometheus can evaluate every alert expression against real data.
        for rule in alert_rules():
            answer = httpx.get(f"{api}/query", params={"query": rule["expr"]}, timeout=5).json()
            assert answer["status"] == "success", (rule["alert"], answer)
    finally:
        prom.terminate()
        prom.wait(10)
        deadlines.stop()
        notify.stop()


def declared_metric_names() -> set[str]:
    """Every sample name the services' metric modules register (labelled ones show no line until used)."""
    for module in METRIC_MODULES:
        importlib.import_module(module)
    return set(REGISTRY._names_to_collectors)
