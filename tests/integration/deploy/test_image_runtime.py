"""A service run with the image's environment answers the image's health probe, on real Kafka and Postgres.

No Docker engine here: the test runs `python -m services.intake serve` as the container would,
with deploy/Dockerfile's ENV, and calls the probe the HEALTHCHECK and compose call.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.dockerfile import environment
from tests.support.infra import ROOT
from tests.support.services import ServiceProcess, free_port, service_env


def probe(url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deploy.healthcheck", url], cwd=ROOT, capture_output=True, text=True, timeout=30
    )


def test_the_image_environment_serves_every_interface_and_the_probe_says_ready(ns, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    intake = ServiceProcess("intake", service_env(ns, "intake", **environment()), tmp_path / "intake.log")
    intake.migrate()
    intake.start()
    try:
        intake.wait_ready()
        ready = probe(f"{intake.url}/readyz")
        assert ready.returncode == 0, ready.stderr
        # INTAKE_HOST=0.0.0.0: it answers on another loopback address too, as on a pod's IP.
        assert httpx.get(f"http://127.0.0.2:{intake.port}/healthz", timeout=5).status_code == 200
    finally:
        intake.stop()
    stopped = probe(f"{intake.url}/healthz")
    assert stopped.returncode == 1


def test_the_probe_reports_not_ready_while_kafka_is_unreachable(ns, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """deadlines needs Kafka to fire deadlines (intake does not: its outbox holds reports meanwhile)."""
    nowhere = f"127.0.0.1:{free_port()}"
    env = service_env(ns, "deadlines", **environment()) | {"KAFKA_BOOTSTRAP_SERVERS": nowhere}
    deadlines = ServiceProcess("deadlines", env, tmp_path / "deadlines.log")
    deadlines.migrate()
    deadlines.start()
    try:
        deadlines.wait_ready(path="/healthz")
        not_ready = probe(f"{deadlines.url}/readyz")
        assert not_ready.returncode == 1
        assert "503" in not_ready.stderr and '"kafka":"failing"' in not_ready.stderr.replace(" ", "")
        assert probe(f"{deadlines.url}/healthz").returncode == 0, "alive: a Kafka outage is no reason to restart"
    finally:
        deadlines.stop()
