"""Police actions on real Postgres and Kafka: checked against the case, published with the case's category."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
from fastapi import FastAPI

from shared.events.cases import ActionRecorded
from tests.integration.intake.conftest import POLICE, PORTAL, case_events, report, tip
from tests.support.infra import Namespace


def at(minutes_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat()


async def submit(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = await client.post(path, json=body, headers=PORTAL)
    assert r.status_code == 202, r.text
    reply: dict[str, Any] = r.json()
    return reply


async def test_actions_move_the_case_and_are_published_with_its_category(
    ns: Namespace, intake_service: tuple[FastAPI, httpx.AsyncClient], db: asyncpg.Pool
) -> None:
    _, client = intake_service
    case = await submit(client, "/v1/reports", report(occurred_at=at(90)))
    actions = f"/v1/cases/{case['case_id']}/actions"

    dispatched = await client.post(actions, json={"action": "dispatched", "occurred_at": at(10),
                                                  "officer_id": "MVSJ-1234"}, headers=POLICE)  # fmt: skip
    assert dispatched.status_code == 202, dispatched.text
    answer = dispatched.json()
    assert answer["case_id"] == case["case_id"] and answer["reference"] == case["reference"]
    assert answer["status_url"] == case["status_url"]
    uuid.UUID(answer["action_id"])

    # Arriving before being sent is refused, with the reason in words.
    early = await client.post(actions, json={"action": "on_scene", "occurred_at": at(20)}, headers=POLICE)
    assert early.status_code == 409 and early.headers["content-type"] == "application/problem+json"
    assert early.json()["code"] == "out_of_order" and "dispatched at" in early.json()["detail"]

    arrived = await client.post(actions, json={"action": "on_scene", "occurred_at": at(1)}, headers=POLICE)
    assert arrived.status_code == 202
    status = (await client.get(case["status_url"], headers=PORTAL)).json()
    assert status["status"] == "officer_on_scene" and status["label_en"] == "Police have arrived"
    assert await db.fetchval("SELECT status FROM cases WHERE case_id = $1", uuid.UUID(case["case_id"])) == (
        "officer_on_scene"
    )

    events = await case_events(ns, expect=3)
    assert [e.type.rsplit(".", 1)[-1] for e in events] == ["reported", "action_recorded", "action_recorded"]
    recorded = [ActionRecorded.model_validate(e.data) for e in events[1:]]
    assert [a.action for a in recorded] == ["dispatched", "on_scene"]
    assert {a.category for a in recorded} == {"burglary_home"}
    assert str(recorded[0].action_id) == answer["action_id"] and recorded[0].officer_id == "MVSJ-1234"
    assert {e.subject for e in events} == {case["case_id"]} and {e.kommune for e in events} == {"0265"}


async def test_actions_that_make_no_sense_for_the_case_are_409_with_the_reason(
    ns: Namespace, intake_service: tuple[FastAPI, httpx.AsyncClient], db: asyncpg.Pool
) -> None:
    _, client = intake_service
    violence = await submit(client, "/v1/reports", report(category="violence", acute=True, in_progress=None))
    later = {"action": "citizen_requested_later", "occurred_at": at(1),
             "requested_time": (datetime.now(UTC) + timedelta(days=1)).isoformat()}  # fmt: skip
    r = await client.post(f"/v1/cases/{violence['case_id']}/actions", json=later, headers=POLICE)
    assert r.status_code == 409 and r.json()["code"] == "not_for_category"
    assert "burglary" in r.json()["detail"]

    a_tip = await submit(client, "/v1/tips", tip())
    r = await client.post(f"/v1/cases/{a_tip['case_id']}/actions", json={"action": "on_scene", "occurred_at": at(1)},
                          headers=POLICE)  # fmt: skip
    assert r.status_code == 409 and r.json()["code"] == "not_for_kind"

    closed = {"action": "closed", "occurred_at": at(2), "outcome": "no_offence"}
    assert (await client.post(f"/v1/cases/{a_tip['case_id']}/actions", json=closed, headers=POLICE)).status_code == 202
    r = await client.post(f"/v1/cases/{a_tip['case_id']}/actions", json={"action": "dispatched", "occurred_at": at(1)},
                          headers=POLICE)  # fmt: skip
    assert r.status_code == 409 and r.json()["code"] == "case_closed"

    unknown = await client.post(f"/v1/cases/{uuid.uuid4()}/actions", json=closed, headers=POLICE)
    assert unknown.status_code == 404 and unknown.headers["content-type"] == "application/problem+json"
    # Only the one close was stored and published (a refused action leaves nothing behind).
    assert await db.fetchval("SELECT count(*) FROM case_actions") == 1
    assert await db.fetchval("SELECT count(*) FROM outbox WHERE headers->>'event-type' LIKE '%action_recorded'") == 1


async def test_a_replayed_action_is_recorded_once(
    ns: Namespace, intake_service: tuple[FastAPI, httpx.AsyncClient], db: asyncpg.Pool
) -> None:
    _, client = intake_service
    case = await submit(client, "/v1/reports", report())
    headers = POLICE | {"Idempotency-Key": "police-system-77"}
    body = {"action": "dispatched", "occurred_at": at(1)}
    first = await client.post(f"/v1/cases/{case['case_id']}/actions", json=body, headers=headers)
    again = await client.post(f"/v1/cases/{case['case_id']}/actions", json=body, headers=headers)
    # Without the key the same action is a second one, and the rules refuse it.
    twice = await client.post(f"/v1/cases/{case['case_id']}/actions", json=body, headers=POLICE)
    assert first.status_code == again.status_code == 202 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert twice.status_code == 409 and twice.json()["code"] == "already_recorded"
    assert await db.fetchval("SELECT count(*) FROM case_actions") == 1
    events = await case_events(ns, expect=2)
    assert [e.type for e in events].count("dk.politi.case.action_recorded") == 1
