"""deploy/healthcheck.py: finds the service a container runs and the port its settings give it."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.healthcheck import main, running_service, service_port
from tests.support.services import free_port


def fake_proc(tmp_path: Path, *commands: list[str]) -> Path:
    for pid, command in enumerate(commands, start=1):
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "cmdline").write_bytes(b"\0".join(a.encode() for a in command) + b"\0")
    (tmp_path / "self").mkdir()  # not a pid: ignored
    return tmp_path


def test_finds_the_service_behind_an_init_process(tmp_path: Path) -> None:
    proc = fake_proc(
        tmp_path,
        ["/sbin/docker-init", "--", "python", "-m", "services.deadlines", "serve"],
        ["python", "-m", "services.deadlines", "serve"],
    )
    assert running_service(proc) == "deadlines"


def test_other_python_modules_are_not_services(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, ["python", "-m", "pytest", "services.intake"], ["python", "-m", "deploy.healthcheck"])
    assert running_service(proc) is None


def test_the_port_follows_the_services_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEADLINES_PORT", raising=False)
    assert service_port("deadlines") == 8002
    monkeypatch.setenv("DEADLINES_PORT", "18002")
    assert service_port("deadlines") == 18002


def test_nothing_listening_is_unhealthy(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([f"http://127.0.0.1:{free_port()}/readyz", "--timeout", "1"]) == 1
    assert "refused" in capsys.readouterr().err.lower()
