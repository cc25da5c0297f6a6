"""The whole flow across the services as processes: a citizen's report to the council's figures."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from services.reporting.domain.periods import Period
from tests.support.services import PORTAL_LIKE_HOOKS
from tests.support.waiting import eventually

PORTAL = {"Authorization": "Bearer dev-portal-key"}
POLICE = {"Authorization": "Bearer dev-police-key"}
COUNCIL = {"Authorization": "Bearer dev-council-key"}


def burglary(kommune: str) -> dict[str, object]:
    return {
        "category": "burglary_home",
        "description": "Kom hjem og fandt terrassedøren brudt op.",
        "in_progress": False,
        "kommune": kommune,
        "address": "Bygaden 3",
        "contact": {"name": "Test Borger", "phone": "+4522334455"},
    }


async def guarantee_of(client: httpx.AsyncClient, deadlines: str, case_id: str) -> dict[str, Any] | None:
    page = (await client.get(f"{deadlines}/v1/deadlines", params={"limit": 500}, headers=POLICE)).json()
    found = [d for d in page["items"] if d["case_id"] == case_id and d["rule_id"] == "burglary_home_24h"]
    if not found:
        return None
    detail: dict[str, Any] = (await client.get(f"{deadlines}/v1/deadlines/{found[0]['id']}", headers=POLICE)).json()
    return detail


def kinds(deadline: dict[str, Any] | None) -> list[str]:
    return [t["type"].rsplit(".", 1)[1] for t in (deadline or {}).get("timeline", [])]


def rule_figures(report: dict[str, Any], rule_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(r for r in report["current"]["compliance"]["rules"] if r["rule_id"] == rule_id)
    return found


async def test_a_burglary_warned_then_met_in_time_counts_in_the_council_report(whole_system) -> None:  # type: ignore[no-untyped-def]
    intake, deadlines, reporting = (whole_system[s].url for s in ("intake", "deadlines", "reporting"))
    period = Period.containing(datetime.now(UTC), "quarter")
    async with httpx.AsyncClient(timeout=10, event_hooks=PORTAL_LIKE_HOOKS) as client:
        accepted = await client.post(f"{intake}/v1/reports", json=burglary("0350"), headers=PORTAL)
        assert accepted.status_code == 202, accepted.text
        case_id = accepted.json()["case_id"]

        # The 4-second guarantee warns at half time; the patrol arrives after the warning, in time.
        async def warned() -> bool:
            return "warning" in kinds(await guarantee_of(client, deadlines, case_id))

        await eventually(warned, timeout=30, step=0.1, what="the guarantee's warning")
        arrived = await client.post(
            f"{intake}/v1/cases/{case_id}/actions",
            json={"action": "on_scene", "occurred_at": datetime.now(UTC).isoformat(), "officer_id": "mvsj-1234"},
            headers=POLICE,
        )
        assert arrived.status_code == 202, arrived.text

        async def met() -> bool:
            return (await guarantee_of(client, deadlines, case_id) or {}).get("state") == "met"

        await eventually(met, timeout=20, what="the guarantee met")
        guarantee = await guarantee_of(client, deadlines, case_id)
        assert guarantee is not None and guarantee["late"] is False
        assert kinds(guarantee) == ["started", "warning", "met"]

        # The council sees it: one report, the guarantee kept once out of once.
        async def counted() -> bool:
            answer = await client.get(f"{reporting}/v1/council-reports/kreds/{period}.json", headers=COUNCIL)
            figures = rule_figures(answer.json(), "burglary_home_24h")
            return bool(figures["concluded"] == 1)

        await eventually(counted, timeout=30, what="the council report counting the met guarantee")
        report = (await client.get(f"{reporting}/v1/council-reports/kreds/{period}.json", headers=COUNCIL)).json()
        figures = rule_figures(report, "burglary_home_24h")
        assert (figures["compliance"]["numerator"], figures["compliance"]["denominator"]) == (1, 1)
        assert figures["exceptions"]["met_late"] == 0
        lejre = (await client.get(f"{reporting}/v1/kpis", params={"scope": "0350", "period": str(period)},
                                  headers=COUNCIL)).json()  # fmt: skip
        assert lejre["current"]["reports"] == 1
        html = await client.get(f"{reporting}/v1/council-reports/kreds/{period}.html", headers=COUNCIL)
        assert html.status_code == 200 and "Test Borger" not in html.text
