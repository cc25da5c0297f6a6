"""Property-based run of schemathesis against the deadlines API's OpenAPI document (tests/support/conformance.py).

`python -m services.deadlines serve` on real Postgres and Kafka, with one real case's deadlines in
it, so the list and the detail answer with real rows, and the checks compare them with the schema.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.deadlines.conftest import CasesTopic, deadlines_env, now
from tests.support.cases import reported
from tests.support.conformance import run_schemathesis, statuses_by_operation
from tests.support.infra import Namespace
from tests.support.services import ServiceProcess, running_processes
from tests.support.waiting import eventually

POLICE = {"Authorization": "Bearer dev-police-key"}


@pytest.fixture
def deadlines_process(ns: Namespace, tmp_path: Path) -> Iterator[ServiceProcess]:
    service = ServiceProcess("deadlines", deadlines_env(ns), tmp_path / "deadlines.log")
    with running_processes(service, ready_within=30):
        yield service


async def test_no_generated_input_makes_a_server_error_or_breaks_the_schema(
    ns: Namespace, deadlines_process: ServiceProcess, cases_topic: CasesTopic
) -> None:
    await cases_topic.publish(reported(uuid.uuid4(), "burglary_home", now(), in_progress=False))
    async with httpx.AsyncClient(base_url=deadlines_process.url) as client:

        async def started() -> bool:
            return bool((await client.get("/v1/deadlines", headers=POLICE)).json()["total"] >= 1)

        await eventually(started, timeout=30, what="the case's deadlines started")
        deadline_id = (await client.get("/v1/deadlines", headers=POLICE)).json()["items"][0]["id"]
    answered = await asyncio.to_thread(
        run_schemathesis,
        deadlines_process.url,
        lambda _path: "dev-police-key",
        {"deadline_id": deadline_id},
        schema_url=deadlines_process.ops_url + "/openapi.json",
    )
    statuses = statuses_by_operation(answered)
    assert 200 in statuses["GET /v1/deadlines"] and 422 in statuses["GET /v1/deadlines"]
    assert {200, 404} <= statuses["GET /v1/deadlines/{deadline_id}"]
    assert not any(status >= 500 for _, status in answered)
    assert "Traceback" not in deadlines_process.tail(5000), deadlines_process.tail(60)
