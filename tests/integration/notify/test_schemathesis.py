"""Property-based run of schemathesis against notify's OpenAPI document (tests/support/conformance.py).

`python -m services.notify serve` on real Postgres and Kafka, with one real alert in it (a deadline
warning played onto deadlines.v1, delivered to the console), so the list, the detail and the
acknowledgement answer with real rows and the checks compare them with the schema.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.notify.domain.alert import alert_id_for
from tests.integration.notify.conftest import POLICE, Deadline, TestRoster, Upstream, notify_env
from tests.support.conformance import run_schemathesis, statuses_by_operation
from tests.support.infra import Namespace
from tests.support.receivers import SmtpSink
from tests.support.services import ServiceProcess, running_processes
from tests.support.waiting import eventually


@pytest.fixture
def notify_process(ns: Namespace, tmp_path: Path, roster: TestRoster, smtp: SmtpSink) -> Iterator[ServiceProcess]:
    service = ServiceProcess("notify", notify_env(ns, roster, smtp), tmp_path / "notify.log")
    with running_processes(service, ready_within=30):
        yield service


async def test_no_generated_input_makes_a_server_error_or_breaks_the_schema(
    notify_process: ServiceProcess, upstream: Upstream
) -> None:
    deadline = Deadline()
    await upstream.publish(deadline.reported(), deadline.warning())
    alert_id = str(alert_id_for(deadline.case_id, deadline.rule))
    async with httpx.AsyncClient(base_url=notify_process.url) as client:

        async def raised() -> bool:
            return (await client.get(f"/v1/alerts/{alert_id}", headers=POLICE)).status_code == 200

        await eventually(raised, timeout=30, what="the warning's alert raised")
    answered = await asyncio.to_thread(
        run_schemathesis,
        notify_process.url,
        lambda _path: "dev-police-key",
        {"alert_id": alert_id},
        schema_url=notify_process.ops_url + "/openapi.json",
        bodies={"POST /v1/alerts/{alert_id}/ack": {"by": "vc-a"}},  # a key acknowledges for an officer
    )
    statuses = statuses_by_operation(answered)
    assert 200 in statuses["GET /v1/alerts"] and 422 in statuses["GET /v1/alerts"]
    assert {200, 404} <= statuses["GET /v1/alerts/{alert_id}"]
    # The real alert was acknowledged (200), then answered as already acknowledged or refused (409, 422).
    assert 200 in statuses["POST /v1/alerts/{alert_id}/ack"]
    assert 404 in statuses["POST /v1/alerts/{alert_id}/ack"]
    assert not any(status >= 500 for _, status in answered)
    assert "Traceback" not in notify_process.tail(5000), notify_process.tail(60)
