"""Property-based run of schemathesis against intake's OpenAPI document (tests/support/conformance.py).

The service runs as `python -m services.intake serve` (after `migrate`) on real Postgres and Kafka,
so this also shows the documented entry point working.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.intake.conftest import report
from tests.support.conformance import run_schemathesis, statuses_by_operation
from tests.support.identity import access_token
from tests.support.infra import Namespace
from tests.support.services import PORTAL_LIKE_HOOKS, ServiceProcess, service_env


@pytest.fixture
def intake_process(ns: Namespace, tmp_path: Path) -> Iterator[ServiceProcess]:
    service = ServiceProcess("intake", service_env(ns, "intake"), tmp_path / "intake.log")
    service.migrate()
    service.start()
    try:
        service.wait_ready(timeout=30)
        yield service
    finally:
        service.stop()


def key_for(path: str) -> str:
    """The caller each operation is for: a police officer's and the data-protection adviser's own tokens for
    the personal content (tests/support/identity.py), keys for the rest."""
    if path.endswith("/details"):
        return access_token("vc-anne")
    if path.endswith(("/access-log", "/erase")):
        return access_token("dpo")
    return "dev-police-key" if path.endswith("/actions") else "dev-portal-key"


async def test_no_generated_input_makes_a_server_error(intake_process: ServiceProcess) -> None:
    async with httpx.AsyncClient(base_url=intake_process.url, event_hooks=PORTAL_LIKE_HOOKS) as client:
        r = await client.post("/v1/reports", json=report(), headers={"Authorization": "Bearer dev-portal-key"})
        assert r.status_code == 202, r.text
    real = {"case_id": r.json()["case_id"]}
    answered = await asyncio.to_thread(
        run_schemathesis, intake_process.url, key_for, real, schema_url=intake_process.ops_url + "/openapi.json"
    )
    statuses = statuses_by_operation(answered)
    # The run got past validation into the stores, not only into 422s.
    assert 202 in statuses["POST /v1/reports"]
    assert {202, 409} & statuses["POST /v1/cases/{case_id}/actions"]
    assert 200 in statuses["GET /v1/cases/{case_id}"]
    assert {200, 410} & statuses["GET /v1/cases/{case_id}/details"]
    assert 200 in statuses["GET /v1/cases/{case_id}/access-log"]
    assert 200 in statuses["POST /v1/cases/{case_id}/erase"]
    assert not any(status >= 500 for _, status in answered)
    assert "Traceback" not in intake_process.tail(5000), intake_process.tail(60)
