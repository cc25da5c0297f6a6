"""Times on real Postgres: an implausible time is refused before it is stored, and a stored one breaks no read."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import httpx
from fastapi import FastAPI

from tests.integration.intake.conftest import POLICE, PORTAL, report
from tests.support.infra import Namespace


async def test_zero_and_ancient_times_are_refused_and_nothing_is_stored(
    ns: Namespace, intake_service: tuple[FastAPI, httpx.AsyncClient], db: asyncpg.Pool
) -> None:
    _, client = intake_service
    for zero in ("0001-01-01T00:00:00Z", "1900-01-01T08:00:00+01:00", "1999-12-31T23:59:59Z"):
        r = await client.post("/v1/reports", json=report(occurred_at=zero), headers=PORTAL)
        assert r.status_code == 422 and r.json()["errors"][0]["code"] == "too_early", r.text
    accepted = await client.post("/v1/reports", json=report(), headers=PORTAL)
    case_url = accepted.json()["status_url"]
    for zero in ("0001-01-01T00:00:00Z", "1900-01-01T08:00:00+01:00"):
        r = await client.post(f"{case_url}/actions", json={"action": "on_scene", "occurred_at": zero}, headers=POLICE)
        assert r.status_code == 422 and r.json()["errors"][0]["code"] == "too_early", r.text
    assert await db.fetchval("SELECT count(*) FROM case_actions") == 0
    assert await db.fetchval("SELECT count(*) FROM cases WHERE occurred_at < '2000-01-01'") == 0


async def test_a_stored_infinite_time_breaks_neither_the_status_nor_later_actions(
    ns: Namespace, intake_service: tuple[FastAPI, httpx.AsyncClient], db: asyncpg.Pool
) -> None:
    _, client = intake_service
    accepted = await client.post("/v1/reports", json=report(), headers=PORTAL)
    case_url = accepted.json()["status_url"]
    now = datetime.now(UTC).isoformat()
    r = await client.post(f"{case_url}/actions", json={"action": "dispatched", "occurred_at": now}, headers=POLICE)
    assert r.status_code == 202, r.text
    # What the zero value of another language's time type became in Postgres before the fix.
    await db.execute("UPDATE case_actions SET occurred_at = '-infinity'")

    status = await client.get(case_url, headers=PORTAL)
    assert status.status_code == 200 and status.json()["status"] == "officer_dispatched", status.text
    later = datetime.now(UTC).isoformat()
    r = await client.post(f"{case_url}/actions", json={"action": "on_scene", "occurred_at": later}, headers=POLICE)
    assert r.status_code == 202, r.text
    assert (await client.get(case_url, headers=PORTAL)).json()["status"] == "officer_on_scene"
