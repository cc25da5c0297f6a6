"""Property-based run of schemathesis against the OpenAPI document: no generated input makes a server error.

The service runs as `python -m services.intake serve` (after `migrate`) on real Postgres and Kafka,
so this also shows the documented entry point working. Each operation gets positive input (fits
the schema) and negative input (does not); the case operations also run against a real case, so
actions reach the rules and the database, not only the 404. Generation is derandomized and
bounded: a run is repeatable and takes seconds, and a failure prints the request that broke it.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integration.intake.conftest import report
from tests.support.services import ServiceProcess, service_env

EXAMPLES = {GenerationMode.POSITIVE: 60, GenerationMode.NEGATIVE: 30}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def intake_process(ns, tmp_path: Path) -> Iterator[ServiceProcess]:  # type: ignore[no-untyped-def]
    env = service_env(ns, "intake", INTAKE_RATE_LIMIT_PER_MINUTE="1000000", INTAKE_RATE_LIMIT_BURST="100000")
    service = ServiceProcess("intake", env, tmp_path / "intake.log")
    service.migrate()
    service.start()
    try:
        service.wait_ready(timeout=30)
        yield service
    finally:
        service.stop()


def run_schemathesis(base_url: str, case_id: str, schema_url: str) -> Counter[tuple[str, int]]:
    """Runs every operation in both modes; returns how often each operation answered each status."""
    schema = schemathesis.openapi.from_url(schema_url)  # served on the ops port
    answered: Counter[tuple[str, int]] = Counter()
    for result in schema.get_all_operations():
        operation = result.ok()
        key = "dev-police-key" if operation.path.endswith("/actions") else "dev-portal-key"
        variants: list[dict[str, Any]] = [{}]
        if "{case_id}" in operation.path:
            variants.append({"path_parameters": {"case_id": case_id}})
        for mode, examples in EXAMPLES.items():
            for fixed in variants:
                try:
                    exercise(operation.as_strategy(generation_mode=mode, **fixed), examples, base_url, key, answered)
                except Unsatisfiable:
                    if mode is GenerationMode.POSITIVE:
                        raise
                    # Negative mode has nothing to break in an operation without parameters or body.
    return answered


def exercise(strategy: Any, examples: int, base_url: str, key: str, answered: Counter[tuple[str, int]]) -> None:
    headers = {"Authorization": f"Bearer {key}"}

    @given(case=strategy)
    @settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def no_server_error(case: schemathesis.Case) -> None:
        response = case.call(base_url=base_url, headers=headers, timeout=10)
        answered[(case.operation.label, response.status_code)] += 1
        case.validate_response(response, checks=CHECKS, headers=headers)

    no_server_error()


async def test_no_generated_input_makes_a_server_error(intake_process) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=intake_process.url) as client:
        r = await client.post("/v1/reports", json=report(), headers={"Authorization": "Bearer dev-portal-key"})
        assert r.status_code == 202, r.text
    answered = await asyncio.to_thread(
        run_schemathesis, intake_process.url, r.json()["case_id"], intake_process.ops_url + "/openapi.json"
    )
    statuses = {label: {s for (op, s) in answered if op == label} for label, _ in answered}
    # The run got past validation into the stores, not only into 422s.
    assert 202 in statuses["POST /v1/reports"]
    assert {202, 409} & statuses["POST /v1/cases/{case_id}/actions"]
    assert 200 in statuses["GET /v1/cases/{case_id}"]
    assert not any(status >= 500 for _, status in answered)
    assert "Traceback" not in intake_process.tail(5000), intake_process.tail(60)
