"""Postgres ends every connection of the deadlines service (a restart, a failover): every loop resumes by itself."""

from __future__ import annotations

import time
import uuid

import httpx
from fastapi import FastAPI

from tests.integration.deadlines.conftest import CasesTopic, now
from tests.support.cases import reported
from tests.support.infra import Namespace
from tests.support.pg_faults import every_loop_resumes, terminate_backends
from tests.support.waiting import eventually

POLICE = {"Authorization": "Bearer dev-police-key"}


async def test_after_every_connection_is_ended_the_scheduler_fires_again_without_a_restart(
    ns: Namespace, deadlines_service: tuple[FastAPI, httpx.AsyncClient], cases_topic: CasesTopic
) -> None:
    app, client = deadlines_service
    runtime = app.state.runtime
    await every_loop_resumes(runtime, after=0.0)
    cut = time.monotonic()
    # The relay's and the scheduler's LISTEN connections at least.
    assert await terminate_backends(runtime.db, ns.database_url) >= 2

    await every_loop_resumes(runtime, after=cut, timeout=runtime.settings.loop_ready_bound_seconds)
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["loops"] == "ok"

    # And the work goes on: a report after the fault is started, and breached on time.
    case = uuid.uuid4()
    await cases_topic.publish(reported(case, "burglary_home", now(), in_progress=False))

    async def breached() -> bool:
        r = await client.get("/v1/deadlines", params={"state": "breached", "rule": "burglary_home_24h"}, headers=POLICE)
        return any(d["case_id"] == str(case) for d in r.json()["items"])

    await eventually(breached, timeout=20, what="a deadline started after the fault was breached")
