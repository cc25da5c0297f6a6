"""A deadline row holding an impossible time (-infinity, written before times were bounded) never fails a read."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
from fastapi import FastAPI

from tests.integration.deadlines.conftest import CasesTopic, now
from tests.support.cases import action, reported
from tests.support.infra import Namespace
from tests.support.waiting import eventually

POLICE = {"Authorization": "Bearer dev-police-key"}


async def test_a_stored_infinite_time_neither_fails_the_list_nor_the_deadline(
    ns: Namespace, deadlines_service: tuple[FastAPI, httpx.AsyncClient], cases_topic: CasesTopic
) -> None:
    app, client = deadlines_service
    case = uuid.uuid4()
    received = now()
    await cases_topic.publish(reported(case, "burglary_home", received, in_progress=False))
    await cases_topic.publish(action(case, "on_scene", received + timedelta(seconds=1), category="burglary_home"))

    async def met() -> bool:
        r = await client.get("/v1/deadlines", params={"state": "met"}, headers=POLICE)
        return bool(r.json()["total"] == 1)

    await eventually(met, timeout=15)
    db = app.state.runtime.db
    deadline_id = await db.fetchval("SELECT id FROM deadlines WHERE state = 'met'")
    # What an action dated at another language's zero time became in Postgres before the fix.
    await db.execute("UPDATE deadlines SET met_at = '-infinity', started_at = '-infinity' WHERE id = $1", deadline_id)
    await db.execute("UPDATE deadline_timeline SET at = 'infinity' WHERE deadline_id = $1", deadline_id)

    listed = await client.get("/v1/deadlines", headers=POLICE)
    assert listed.status_code == 200, listed.text
    assert listed.json()["total"] == 2  # the other deadline of the case is listed as well
    one = await client.get(f"/v1/deadlines/{deadline_id}", headers=POLICE)
    assert one.status_code == 200, one.text
    assert one.json()["met_at"].startswith("0001-01-01") and one.json()["timeline"][0]["at"].startswith("9999-12-31")
