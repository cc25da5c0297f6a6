"""A service run with the image's environment answers the image's health probe, on real Kafka and Postgres.

No Docker engine here: the tests run `python -m services.<name> serve` as the container would,
with deploy/Dockerfile's ENV, and call the probe the HEALTHCHECK and compose call; one runs the
service and the HEALTHCHECK command itself in a PID namespace of their own, as in a container.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.dockerfile import arguments, environment
from tests.support.infra import ROOT, Namespace
from tests.support.services import ServiceProcess, free_port, service_env


def probe(url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deploy.healthcheck", url], cwd=ROOT, capture_output=True, text=True, timeout=30
    )


def test_the_image_environment_serves_every_interface_and_the_probe_says_ready(ns: Namespace, tmp_path: Path) -> None:
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


def test_the_probe_reports_not_ready_while_kafka_is_unreachable(ns: Namespace, tmp_path: Path) -> None:
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


# Inside the PID namespace: start the service, run the HEALTHCHECK command until it passes (or
# the service dies, or a minute passes), stop the service, exit with the probe's last code.
CONTAINER = """
import json, os, subprocess, sys, time
log = open(os.environ["SERVICE_LOG"], "ab")
service = subprocess.Popen(json.loads(os.environ["SERVICE_COMMAND"]), stdout=log, stderr=subprocess.STDOUT)
end, code = time.monotonic() + 60, 1
while time.monotonic() < end and service.poll() is None:
    probe = subprocess.run(json.loads(os.environ["HEALTHCHECK_COMMAND"]), capture_output=True, text=True)
    code = probe.returncode
    print(probe.stdout + probe.stderr, end="", flush=True)
    if code == 0:
        break
    time.sleep(0.5)
service.terminate()
service.wait(30)
sys.exit(code)
"""


def test_the_dockerfiles_healthcheck_finds_the_service_in_its_own_pid_namespace(ns: Namespace, tmp_path: Path) -> None:
    unshare = shutil.which("unshare")
    if unshare is None or os.geteuid() != 0:
        pytest.skip("needs root and util-linux's unshare for a PID namespace")
    (healthcheck,) = arguments("HEALTHCHECK")
    command = json.loads(healthcheck.split(" CMD ", 1)[1])
    port = free_port()
    env = (
        os.environ
        | service_env(ns, "deadlines", **environment())
        | {
            "DEADLINES_PORT": str(port),
            "DEADLINES_OPS_PORT": str(free_port()),  # never a default port: a running demo may hold it
            "SERVICE_COMMAND": json.dumps([sys.executable, "-m", "services.deadlines", "serve"]),
            "HEALTHCHECK_COMMAND": json.dumps([sys.executable if command[0] == "python" else command[0], *command[1:]]),
            "SERVICE_LOG": str(tmp_path / "deadlines.log"),
        }
    )
    subprocess.run(
        [sys.executable, "-m", "services.deadlines", "migrate"], cwd=ROOT, env=env, check=True, capture_output=True
    )
    container = subprocess.run(
        [unshare, "--pid", "--fork", "--mount-proc", sys.executable, "-c", CONTAINER],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert container.returncode == 0, container.stdout + container.stderr + (tmp_path / "deadlines.log").read_text()
    assert f"http://127.0.0.1:{port}/readyz: 200" in container.stdout
