"""deploy/k8s: every manifest valid for Kubernetes (kubernetes-validate, strict), and the promises it makes."""

from __future__ import annotations

import copy
import importlib
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.support.infra import ROOT

K8S = ROOT / "deploy" / "k8s"
# The oldest Kubernetes minor still in common support, and the newest the validator knows: the
# manifests must work on both (no field that is too new, none that was removed).
VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
SERVICES = ("intake", "deadlines", "notify", "reporting")
# SPEC's ports; the ops ports (/metrics) are the same plus 1000.
PORTS = {"intake": 8001, "deadlines": 8002, "notify": 8003, "reporting": 8004}
# Resident memory in MiB: measured for intake and deadlines, assumed for the two not measured yet.
RSS_MIB = {"intake": 77, "deadlines": 82, "notify": 100, "reporting": 250}
IMAGE_UID = 10001  # deploy/Dockerfile's USER

Doc = dict[str, Any]


def manifest_files() -> list[Path]:
    return sorted(p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml")


def documents(path: Path) -> list[Doc]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def all_documents() -> list[Doc]:
    return [d for path in manifest_files() for d in documents(path)]


def find(kind: str, name: str) -> Doc:
    (found,) = (d for d in all_documents() if d["kind"] == kind and d["metadata"]["name"] == name)
    return found


def mebibytes(quantity: str) -> float:
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}
    return float(quantity[:-2]) * units[quantity[-2:]]


def kustomize(folder: Path) -> list[Doc]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: the kustomize rendering is checked where it is")
    result = subprocess.run([kubectl, "kustomize", str(folder)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: str(p.relative_to(K8S)))
def test_every_manifest_is_valid_kubernetes(path: Path, version: str) -> None:
    for doc in documents(path):
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_validator_rejects_a_misspelt_field() -> None:
    """The check above can fail: strict validation refuses a field Kubernetes would silently drop."""
    deployment = copy.deepcopy(find("Deployment", "intake"))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSIONS[-1], strict=True)


@pytest.mark.parametrize("folder", [K8S, K8S / "migrate"], ids=["services", "migrate"])
def test_each_kustomization_renders_into_valid_manifests_in_one_namespace(folder: Path) -> None:
    rendered = kustomize(folder)
    for doc in rendered:
        kubernetes_validate.validate(doc, VERSIONS[-1], strict=True)
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "mvsj-politi", doc["metadata"]["name"]
    images = {
        c["image"]
        for d in rendered
        if d["kind"] in ("Deployment", "Job")
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert len(images) == 1 and "/" in next(iter(images)), f"one image, from a registry: {images}"


def test_every_manifest_file_is_in_a_kustomization() -> None:
    listed: set[Path] = set()
    for kustomization in K8S.rglob("kustomization.yaml"):
        for entry in yaml.safe_load(kustomization.read_text())["resources"]:
            listed.add((kustomization.parent / entry).resolve())
    assert set(manifest_files()) <= listed


def test_no_secret_values_are_committed() -> None:
    assert [d["metadata"]["name"] for d in all_documents() if d["kind"] == "Secret"] == []
    config = find("ConfigMap", "mvsj-politi-config")["data"]
    assert "DATABASE_URL" not in config
    assert not any("PASSWORD" in key or "SECRET" in key for key in config)


def test_shared_settings_point_at_a_replicated_production_cluster() -> None:
    config = find("ConfigMap", "mvsj-politi-config")["data"]
    assert config["ENVIRONMENT"] == "production"
    assert config["KAFKA_REPLICATION_FACTOR"] == "3"
    assert len(config["KAFKA_BOOTSTRAP_SERVERS"].split(",")) >= 3


@pytest.mark.parametrize("service", SERVICES)
def test_service_runs_n_replicas_with_probes_resources_and_a_disruption_budget(service: str) -> None:
    deployment = find("Deployment", service)
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert deployment["spec"]["replicas"] >= 2
    assert container["command"] == ["python", "-m", f"services.{service}", "serve"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": PORTS[service], "ops": PORTS[service] + 1000}
    env = {e["name"]: e for e in container["env"]}
    assert env[f"{service.upper()}_PORT"]["value"] == str(ports["http"])
    assert env[f"{service.upper()}_OPS_PORT"]["value"] == str(ports["ops"])
    assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "mvsj-politi-database"

    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(ports["ops"])

    resources = container["resources"]
    request, limit = mebibytes(resources["requests"]["memory"]), mebibytes(resources["limits"]["memory"])
    assert RSS_MIB[service] < request <= limit
    assert limit >= 2 * RSS_MIB[service], "room for bursts: a limit near the RSS means OOM kills"

    assert pod["spec"]["securityContext"]["runAsUser"] == IMAGE_UID
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True

    labels = pod["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= labels.items()
    budget = find("PodDisruptionBudget", service)
    assert budget["spec"]["minAvailable"] == 1
    assert budget["spec"]["selector"]["matchLabels"] == selector
    kube_service = find("Service", service)
    assert kube_service["spec"]["selector"] == selector
    assert {p["targetPort"] for p in kube_service["spec"]["ports"]} == {"http", "ops"}


@pytest.mark.parametrize("service", SERVICES)
def test_service_ports_match_the_services_own_settings(service: str) -> None:
    module = importlib.import_module(f"services.{service}.settings")
    from shared.settings import ServiceSettings

    (settings_type,) = (
        v
        for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, ServiceSettings) and v.__module__ == module.__name__
    )
    assert settings_type.model_fields["port"].default == PORTS[service]


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_has_a_migrate_job_with_the_same_settings(service: str) -> None:
    job = find("Job", f"{service}-migrate")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["python", "-m", f"services.{service}", "migrate"]
    assert container["envFrom"] == find("Deployment", service)["spec"]["template"]["spec"]["containers"][0]["envFrom"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
