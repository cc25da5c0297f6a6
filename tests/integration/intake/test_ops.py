"""Operations: health, readiness, metrics, the OpenAPI and AsyncAPI documents, and logs without people in them."""

from __future__ import annotations

import logging
import uuid

import httpx
import pytest
from fastapi import FastAPI

from tests.integration.intake.conftest import DESCRIPTION, EMAIL, NAME, PHONE, POLICE, PORTAL, case_events, report
from tests.support.identity import bearer
from tests.support.infra import Namespace


def sample(metrics: str, name: str, **labels: str) -> float:
    for line in metrics.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_health_readiness_and_metrics(intake_service: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _, client = intake_service
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {"status": "ready", "checks": {"postgres": "ok", "loops": "ok"}}

    before = (await client.get("/metrics")).text
    assert (await client.post("/v1/reports", json=report(), headers=PORTAL)).status_code == 202
    replayed = PORTAL | {"Idempotency-Key": str(uuid.uuid4())}
    for _ in range(2):  # the replay is not a second accepted report
        assert (
            await client.post("/v1/reports", json=report(kommune="0253", postcode=None), headers=replayed)
        ).status_code == 202
    assert (await client.post("/v1/reports", json={}, headers=PORTAL)).status_code == 422
    after = (await client.get("/metrics")).text

    def grew(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert grew("intake_accepted_total", type="case.reported", kommune="0265") == 1
    assert grew("intake_accepted_total", type="case.reported", kommune="0253") == 1
    assert grew("intake_idempotent_replays_total", route="/v1/reports") == 1
    assert grew("http_requests_total", service="intake", route="/v1/reports", status="202") == 3
    assert grew("http_requests_total", service="intake", route="/v1/reports", status="422") == 1
    assert 'outbox_backlog_events{service="intake"}' in after
    assert 'outbox_oldest_pending_age_seconds{service="intake"}' in after


async def test_openapi_describes_every_body_and_asyncapi_every_event(
    ns: Namespace, intake_service: tuple[FastAPI, httpx.AsyncClient]
) -> None:
    _, client = intake_service
    assert (await client.get("/docs")).status_code == 200
    document = (await client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    bodies = {
        "/v1/reports": "ReportIn", "/v1/tips": "TipIn", "/v1/officer-requests": "OfficerRequestIn",
        "/v1/cases/{case_id}/actions": "ActionIn",
    }  # fmt: skip
    for path, model in bodies.items():
        operation = document["paths"][path]["post"]
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert ref == f"#/components/schemas/{model}" and model in schemas
        assert "application/problem+json" in operation["responses"]["422"]["content"]
        assert {"202", "401", "403", "422", "429", "503"} <= set(operation["responses"])
    assert "contact" in schemas["ReportIn"]["properties"] and "Contact" in schemas
    assert document["paths"]["/v1/cases/{case_id}"]["get"]["security"] == [{"HTTPBearer": []}]

    asyncapi = (await client.get("/asyncapi.json")).json()
    # It publishes cases.v1, and reads deadlines.v1 to know when a case's contact details may be erased.
    assert sorted(c["address"] for c in asyncapi["channels"].values()) == [ns.topics.cases, ns.topics.deadlines]
    published = str(asyncapi["components"]["messages"]) + str(asyncapi["components"]["schemas"])
    for event_type in ("case.reported", "case.tip_received", "case.officer_requested", "case.action_recorded"):
        assert f"dk.politi.{event_type}" in published


async def test_logs_never_show_report_text_or_contact_details(
    ns: Namespace, intake_service: tuple[FastAPI, httpx.AsyncClient], caplog: pytest.LogCaptureFixture
) -> None:
    _, client = intake_service
    caplog.set_level(logging.DEBUG)
    key = PORTAL | {"Idempotency-Key": str(uuid.uuid4())}
    accepted = await client.post("/v1/reports", json=report(), headers=key)
    await client.post("/v1/reports", json=report(), headers=key)  # replay
    await client.post("/v1/reports", json=report(in_progress=True), headers=key)  # key reused
    await client.post("/v1/reports", json=report(contact={"phone": PHONE + "999"}), headers=PORTAL)  # bad phone
    await client.post("/v1/reports", json=report(description=DESCRIPTION + "\x07"), headers=PORTAL)  # control character
    await client.post(f"{accepted.json()['status_url']}/actions", json={"action": "dispatched",
                      "occurred_at": "2026-01-01T00:00:00Z"}, headers=POLICE)  # fmt: skip
    await case_events(ns, expect=2)  # the relay has published them too
    # An officer reads the report and the data-protection adviser erases it: neither puts it in a log line.
    read = f"{accepted.json()['status_url']}/details"
    assert (await client.get(read, params={"purpose": "followup"}, headers=bearer("vc-anne"))).status_code == 200
    erase = await client.post(f"{accepted.json()['status_url']}/erase", json={"reason": "test"}, headers=bearer("dpo"))
    assert erase.status_code == 200

    assert any(getattr(r, "reference", None) == accepted.json()["reference"] for r in caplog.records)
    for record in caplog.records:
        text = record.getMessage() + " " + str(vars(record))
        for personal in (DESCRIPTION[:30], PHONE, "20 30 40 50", "20304050", NAME, EMAIL, "Strandvejen"):
            assert personal not in text, f"{record.name} logged {personal!r}"
