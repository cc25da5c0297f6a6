"""End to end: the real services as processes, talking over HTTP and Kafka, as in production."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.infra import Namespace
from tests.support.services import ServiceProcess, running_processes, service_env
from tests.testdata import SECONDS_RULES_FILE


@pytest.fixture
def system(ns: Namespace, tmp_path: Path) -> Iterator[dict[str, ServiceProcess]]:
    """intake and deadlines, each its own process and schema, sharing the test's topics."""
    env = {
        "INTAKE_OUTBOX_POLL_SECONDS": "0.5",
        "DEADLINE_RULES_FILE": str(SECONDS_RULES_FILE),
    }
    services = {
        name: ServiceProcess(name, service_env(ns, name, **env), tmp_path / f"{name}.log")
        for name in ("intake", "deadlines")
    }
    with running_processes(*services.values()):
        yield services
