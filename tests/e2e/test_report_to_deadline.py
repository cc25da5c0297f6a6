"""A citizen's report, through intake and Kafka, becomes a guarantee the deadlines service keeps."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx

from tests.support.services import PORTAL_LIKE_HOOKS, ServiceProcess
from tests.support.waiting import eventually

PORTAL = {"Authorization": "Bearer dev-portal-key"}
POLICE = {"Authorization": "Bearer dev-police-key"}


def burglary(**over: object) -> dict[str, object]:
    return {
        "category": "burglary_home",
        "description": "Kom hjem og fandt terrassedøren brudt op.",
        "in_progress": False,
        "kommune": "0350",
        "address": "Bygaden 3",
        "contact": {"name": "Test Borger", "phone": "+4522334455"},
    } | over


async def deadlines_of(client: httpx.AsyncClient, deadlines_url: str, case_id: str) -> list[dict[str, Any]]:
    page = (await client.get(f"{deadlines_url}/v1/deadlines", params={"limit": 500}, headers=POLICE)).json()
    return [d for d in page["items"] if d["case_id"] == case_id]


async def test_police_on_scene_in_time_meets_the_guarantee(system: dict[str, ServiceProcess]) -> None:
    intake, deadlines = system["intake"].url, system["deadlines"].url
    async with httpx.AsyncClient(timeout=10, event_hooks=PORTAL_LIKE_HOOKS) as client:
        accepted = await client.post(f"{intake}/v1/reports", json=burglary(), headers=PORTAL)
        assert accepted.status_code == 202, accepted.text
        case_id = accepted.json()["case_id"]

        async def started() -> bool:
            return len(await deadlines_of(client, deadlines, case_id)) == 2

        await eventually(started, timeout=20, what="the 24-hour guarantee and the follow-up target started")
        arrived = await client.post(
            f"{intake}/v1/cases/{case_id}/actions",
            json={"action": "on_scene", "occurred_at": datetime.now(UTC).isoformat(), "officer_id": "mvsj-1234"},
            headers=POLICE,
        )
        assert arrived.status_code == 202, arrived.text

        async def met() -> bool:
            found = {d["rule_id"]: d for d in await deadlines_of(client, deadlines, case_id)}
            return bool(found["burglary_home_24h"]["state"] == "met")

        await eventually(met, timeout=20, what="the guarantee met")
        found = {d["rule_id"]: d for d in await deadlines_of(client, deadlines, case_id)}
        guarantee = found["burglary_home_24h"]
        assert guarantee["late"] is False and guarantee["kommune"] == "0350"
        assert guarantee["basis"] == "guarantee" and guarantee["window_set_by"] == "law"
        # The citizen sees that the patrol came, and nothing personal.
        status = (await client.get(f"{intake}/v1/cases/{case_id}", headers=PORTAL)).json()
        assert status["status"] == "officer_on_scene"
        assert "Test Borger" not in str(status) and "+4522334455" not in str(status)


async def test_no_action_means_a_breach_and_a_late_arrival_is_still_measured(system: dict[str, ServiceProcess]) -> None:
    intake, deadlines = system["intake"].url, system["deadlines"].url
    async with httpx.AsyncClient(timeout=10, event_hooks=PORTAL_LIKE_HOOKS) as client:
        accepted = await client.post(f"{intake}/v1/reports", json=burglary(kommune="0316"), headers=PORTAL)
        case_id = accepted.json()["case_id"]

        async def breached() -> bool:
            found = {d["rule_id"]: d for d in await deadlines_of(client, deadlines, case_id)}
            return found.get("burglary_home_24h", {}).get("state") == "breached"

        await eventually(breached, timeout=25, what="the guarantee breached after its 4 s window")
        await asyncio.sleep(0.5)
        late = await client.post(
            f"{intake}/v1/cases/{case_id}/actions",
            json={"action": "on_scene", "occurred_at": datetime.now(UTC).isoformat()},
            headers=POLICE,
        )
        assert late.status_code == 202, late.text

        async def met_late() -> bool:
            found = {d["rule_id"]: d for d in await deadlines_of(client, deadlines, case_id)}
            return bool(found["burglary_home_24h"]["state"] == "met")

        await eventually(met_late, timeout=20, what="the late arrival recorded")
        guarantee = next(
            d for d in await deadlines_of(client, deadlines, case_id) if d["rule_id"] == "burglary_home_24h"
        )
        assert guarantee["late"] is True and guarantee["response_seconds"] > 4
        assert guarantee["breached_at"] is not None
        detail = (await client.get(f"{deadlines}/v1/deadlines/{guarantee['id']}", headers=POLICE)).json()
        assert [t["type"].rsplit(".", 1)[1] for t in detail["timeline"]] == ["started", "warning", "breached", "met"]
