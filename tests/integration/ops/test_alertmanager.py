"""An alert rule reaches a person: a stopped service's ServiceDown goes from a real Prometheus through a real
Alertmanager (deploy/alertmanager/alertmanager.yml) to the on-call's webhook and the ops mailbox; its
inhibitions keep the consequences of an outage quiet and nothing else.

Only the timings differ from production: a 1 s scrape and evaluation, ServiceDown's `for:` of 3 s instead of
a minute, and Alertmanager's group waits of 1 s, so the test takes seconds rather than minutes.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.infra import ROOT, Namespace
from tests.support.receivers import SmtpSink, WebhookReceiver
from tests.support.services import ServiceProcess, free_port, service_env
from tests.support.waiting import eventually

CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
ONCALL_PATH = "/alertmanager/ops-oncall"
TOKEN = "test-token-for-alertmanager"


def binary(*names: str) -> str:
    for name in names:
        if found := shutil.which(name):
            return found
    pytest.fail(f"{names[0]} is missing: `make up` installs Debian's package")


def config_for_test(tmp_path: Path, hook: WebhookReceiver, sink: SmtpSink) -> Path:
    """The committed config with the test's receivers and 1 s group waits; routes and inhibitions as committed."""
    config = yaml.safe_load(CONFIG.read_text())
    config["global"]["smtp_smarthost"] = f"127.0.0.1:{sink.port}"
    token = tmp_path / "token"
    token.write_text(TOKEN)
    for receiver in config["receivers"]:
        for webhook in receiver.get("webhook_configs", []):
            webhook["url"] = hook.url(f"/alertmanager/{receiver['name']}")
            webhook["http_config"]["authorization"]["credentials_file"] = str(token)
    routes = [config["route"], *config["route"]["routes"]]
    for route in routes:
        route.update(group_wait="1s", group_interval="1s")
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@contextlib.contextmanager
def alertmanager(tmp_path: Path, config: Path) -> Iterator[str]:
    """A real Alertmanager on a free port, without its cluster port; yields its URL."""
    port = free_port()
    log = tmp_path / "alertmanager.log"
    proc = subprocess.Popen(
        [binary("prometheus-alertmanager", "alertmanager"), f"--config.file={config}",
         f"--storage.path={tmp_path / 'am-data'}", f"--web.listen-address=127.0.0.1:{port}",
         "--cluster.listen-address="],
        stdout=subprocess.DEVNULL, stderr=log.open("wb"),
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        end = time.monotonic() + 20
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/-/ready", timeout=2).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > end:
                raise AssertionError(f"Alertmanager did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    server = SmtpSink().start()
    yield server
    server.stop()


def notifications(hook: WebhookReceiver) -> list[dict[str, Any]]:
    return [json.loads(hit.body) for hit in hook.delivered(ONCALL_PATH)]


def paged(hook: WebhookReceiver) -> set[tuple[str, str]]:
    """(alertname, service) of every alert the on-call's webhook was told of."""
    return {
        (a["labels"]["alertname"], a["labels"].get("service", "")) for n in notifications(hook) for a in n["alerts"]
    }


def service_down_rules(tmp_path: Path) -> Path:
    """alerts.yml's ServiceDown as it is, but for 3 s instead of a minute."""
    rules = [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]
    (service_down,) = [rule for rule in rules if rule["alert"] == "ServiceDown"]
    path = tmp_path / "alerts.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "test", "rules": [service_down | {"for": "3s"}]}]}))
    return path


async def test_a_stopped_service_pages_the_on_call_and_mails_ops_then_says_it_is_back(
    ns: Namespace, tmp_path: Path, hook: WebhookReceiver, sink: SmtpSink
) -> None:
    intake = ServiceProcess("intake", service_env(ns, "intake"), tmp_path / "intake.log")
    intake.migrate()
    intake.start()
    # deploy/prometheus/prometheus.yml's intake job (its `service` label included) on the test's ports.
    prometheus_config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    (job,) = [job for job in prometheus_config["scrape_configs"] if job["job_name"] == "intake"]
    for static in job["static_configs"]:
        static["targets"] = [f"127.0.0.1:{intake.ops_port}"]
    prom_port = free_port()
    prom: subprocess.Popen[bytes] | None = None
    try:
        with alertmanager(tmp_path, config_for_test(tmp_path, hook, sink)) as am_url:
            prometheus_config |= {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(service_down_rules(tmp_path))],
                "scrape_configs": [job],
                "alerting": {"alertmanagers": [{"static_configs": [{"targets": [am_url.removeprefix("http://")]}]}]},
            }
            config = tmp_path / "prometheus.yml"
            config.write_text(yaml.safe_dump(prometheus_config))
            # Intake first: a scrape before it answers would be a real ServiceDown, fired before the test stops it.
            intake.wait_ready()
            prom = subprocess.Popen(
                [binary("prometheus"), f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{prom_port}"],
                stdout=subprocess.DEVNULL, stderr=(tmp_path / "prometheus.log").open("wb"),
            )  # fmt: skip

            def up() -> list[str]:
                with contextlib.suppress(httpx.HTTPError, KeyError, ValueError):
                    answer = httpx.get(f"http://127.0.0.1:{prom_port}/api/v1/query", params={"query": "up"}, timeout=2)
                    return [sample["value"][1] for sample in answer.json()["data"]["result"]]
                return []

            await eventually(lambda: up() == ["1"], timeout=20, what="Prometheus scrapes intake")
            assert notifications(hook) == []
            stopped = time.monotonic()
            intake.stop()

            def pages(status: str) -> list[dict[str, Any]]:
                return [
                    alert
                    for note in notifications(hook)
                    for alert in note["alerts"]
                    if alert["status"] == status and alert["labels"]["alertname"] == "ServiceDown"
                ]

            await eventually(
                lambda: bool(pages("firing")), timeout=30, what="ServiceDown reaches the on-call's webhook"
            )
            # Down for 3 s, scraped each second, grouped for 1 s: far longer means a wait nobody chose.
            assert time.monotonic() - stopped < 20, "ServiceDown took too long to arrive"
            (alert,) = pages("firing")
            assert alert["labels"] == {
                "alertname": "ServiceDown", "severity": "critical", "service": "intake", "job": "intake",
                "instance": f"127.0.0.1:{intake.ops_port}",
            }  # fmt: skip
            assert alert["annotations"]["summary"] == "intake does not answer /metrics"
            first = hook.delivered(ONCALL_PATH)[0]
            assert first.headers["authorization"] == f"Bearer {TOKEN}"
            assert json.loads(first.body)["receiver"] == "ops-oncall"
            # The same page by e-mail to the ops on-call, readable as text.
            await eventually(lambda: bool(sink.to("driftsvagt@politi.example")), timeout=10, what="the e-mail")
            mail = sink.to("driftsvagt@politi.example")[0]
            assert "ServiceDown" in mail["Subject"] and "FIRING" in mail["Subject"]
            body = mail.get_body(preferencelist=("plain",))
            assert body is not None and "intake does not answer /metrics" in body.get_content()
            assert sink.to("drift@politi.example") == []  # a critical alert is not also sent as a warning

            intake.start()
            intake.wait_ready()
            await eventually(lambda: bool(pages("resolved")), timeout=30, what="the all-clear reaches the webhook")
            await eventually(
                lambda: any("RESOLVED" in m["Subject"] for m in sink.to("driftsvagt@politi.example")),
                timeout=10, what="the all-clear by e-mail",
            )  # fmt: skip
    finally:
        if prom is not None:
            prom.terminate()
            prom.wait(10)
        intake.stop()


def test_inhibitions_quiet_the_consequences_of_an_outage_and_nothing_else(
    tmp_path: Path, hook: WebhookReceiver, sink: SmtpSink
) -> None:
    """Alerts posted as Prometheus posts them; Alertmanager marks which are inhibited and by what."""
    notify = {"job": "notify", "instance": "127.0.0.1:9003", "service": "notify"}
    posted = {
        "notify down": {"alertname": "NotifyDown", "severity": "critical", **notify},
        "notify's ServiceDown": {"alertname": "ServiceDown", "severity": "critical", **notify},
        "deliveries failing": {"alertname": "NotifyDeliveriesFailing", "severity": "warning", "channel": "email"},
        "past chain": {"alertname": "NotifyAlertsUnacknowledgedPastChain", "severity": "critical"},
        "intake down": {"alertname": "ServiceDown", "severity": "critical", "job": "intake", "service": "intake"},
        "intake's loop": {"alertname": "LoopStalled", "severity": "critical", "service": "intake", "loop": "relay"},
        "intake's outbox": {"alertname": "OutboxStuck", "severity": "critical", "service": "intake"},
        "deadlines' loop": {"alertname": "LoopStalled", "severity": "critical", "service": "deadlines", "loop": "x"},
        "breaches held": {"alertname": "BreachesHeld", "severity": "critical"},
    }
    with alertmanager(tmp_path, config_for_test(tmp_path, hook, sink)) as url:
        now = datetime.now(UTC).isoformat()
        answer = httpx.post(
            f"{url}/api/v2/alerts", json=[{"labels": labels, "startsAt": now} for labels in posted.values()], timeout=5
        )
        assert answer.status_code == 200, answer.text

        def inhibited() -> dict[str, bool]:
            alerts = httpx.get(f"{url}/api/v2/alerts", timeout=5).json()
            marks = {json.dumps(a["labels"], sort_keys=True): bool(a["status"]["inhibitedBy"]) for a in alerts}
            return {name: marks.get(json.dumps(labels, sort_keys=True), False) for name, labels in posted.items()}

        expected = {
            "notify down": False,  # the page that says what is wrong
            "notify's ServiceDown": True,
            "deliveries failing": True,
            "past chain": True,
            "intake down": False,
            "intake's loop": True,
            "intake's outbox": True,
            "deadlines' loop": False,  # another service's stall is news
            "breaches held": False,  # deadlines itself is up
        }
        end = time.monotonic() + 10
        while inhibited() != expected and time.monotonic() < end:
            time.sleep(0.2)
        assert inhibited() == expected
        # What is not inhibited is delivered: notify down and intake down page the on-call, the rest stays quiet.
        delivered = {("NotifyDown", "notify"), ("ServiceDown", "intake"), ("LoopStalled", "deadlines"),
                     ("BreachesHeld", "")}  # fmt: skip
        end = time.monotonic() + 15
        while paged(hook) != delivered and time.monotonic() < end:
            time.sleep(0.2)
        time.sleep(1.5)  # one more group interval: an inhibited alert that slipped through would arrive now
        assert paged(hook) == delivered
