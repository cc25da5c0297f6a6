"""Property-based run of schemathesis against reporting's OpenAPI document (tests/support/conformance.py).

`python -m services.reporting serve` on real Postgres and Kafka, with a few real events of the
quarter in its read model, so KPIs, council reports (JSON, HTML, PDF and CSV) and the public open
data are computed and rendered from real rows, and the checks compare each answer with the schema.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from tests.integration.reporting.conftest import COUNCIL, Bus, reporting_env
from tests.support.conformance import run_schemathesis, statuses_by_operation
from tests.support.infra import Namespace
from tests.support.quarter import Q1, ROSKILDE, Quarter
from tests.support.services import ServiceProcess, running_processes
from tests.support.waiting import eventually


@pytest.fixture
def reporting_process(ns: Namespace, tmp_path: Path) -> Iterator[ServiceProcess]:
    service = ServiceProcess("reporting", reporting_env(ns), tmp_path / "reporting.log")
    with running_processes(service, ready_within=30):
        yield service


async def test_no_generated_input_makes_a_server_error_or_breaks_the_schema(
    reporting_process: ServiceProcess, bus: Bus
) -> None:
    quarter = Quarter()
    case = quarter.report(ROSKILDE, "burglary_home", Q1, in_progress=False)
    quarter.deadline(case, ROSKILDE, "burglary_home_24h", "burglary_home", Q1, timedelta(hours=24), outcome="met")
    await bus.publish(quarter.events)
    async with httpx.AsyncClient(base_url=reporting_process.url, timeout=30) as client:

        async def applied() -> bool:
            answer = await client.get("/v1/kpis", params={"scope": "kreds", "period": "2026-Q1"}, headers=COUNCIL)
            return answer.status_code == 200 and answer.json()["current"]["reports"] == 1

        await eventually(applied, timeout=30, what="the quarter's events in the read model")
    answered = await asyncio.to_thread(
        run_schemathesis,
        reporting_process.url,
        lambda _path: "dev-council-key",
        {"scope": "kreds", "document": "2026-Q1.csv"},
        schema_url=reporting_process.ops_url + "/openapi.json",
    )
    statuses = statuses_by_operation(answered)
    assert 200 in statuses["GET /v1/kpis"] and 422 in statuses["GET /v1/kpis"]
    assert {200, 422} <= statuses["GET /v1/council-reports/{scope}/{document}"]
    # The open data, without a key: their answers match the schema the document gives them.
    assert 200 in statuses["GET /offentlig/politigarantier.json"]
    assert 200 in statuses["GET /offentlig/politigarantier.csv"]
    assert not any(status >= 500 for _, status in answered)
    assert "Traceback" not in reporting_process.tail(5000), reporting_process.tail(60)
