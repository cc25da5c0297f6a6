"""Reports, tips and officer requests on real Postgres and Kafka: stored once, published once, nothing personal."""

from __future__ import annotations

import asyncio
import json
import random
import uuid

import asyncpg
import httpx
from fastapi import FastAPI

from services.intake.bootstrap import build_app
from services.intake.domain.reference import normalize_reference
from shared.events.cases import CaseReported, OfficerRequested, TipReceived
from tests.integration.intake.conftest import (
    ADDRESS,
    DESCRIPTION,
    EMAIL,
    NAME,
    PHONE,
    POLICE,
    PORTAL,
    case_events,
    officer_request,
    report,
    running,
    settings_for,
    tip,
)
from tests.support.infra import Namespace
from tests.support.kafka_read import read_all

PERSONAL = [DESCRIPTION, PHONE, "20304050", "20 30 40 50", NAME, EMAIL, ADDRESS, "4040", "55.6415", "12.0803"]


async def test_the_school_a_citizen_names_stays_in_case_details_and_never_reaches_the_bus(
    ns: Namespace, intake_service: tuple[FastAPI, httpx.AsyncClient], db: asyncpg.Pool
) -> None:
    _, client = intake_service
    # What a citizen may type into the institution field: a name, and a phone number and e-mail.
    typed = f"Himmelev Skole, ring til mig på {PHONE} eller {EMAIL}"
    body = report(category="drug_dealing_school", in_progress=None, institution=typed)
    r = await client.post("/v1/reports", json=body, headers=PORTAL)
    assert r.status_code == 202, r.text
    [record] = await read_all(ns.kafka, ns.topics.cases, expect=1)
    for personal in [*PERSONAL, "Himmelev", typed]:
        assert personal.encode() not in record.value, f"{personal!r} went onto the bus"
    assert "institution" not in json.loads(record.value)["data"]
    case_id = uuid.UUID(r.json()["case_id"])
    assert await db.fetchval("SELECT institution FROM case_details WHERE case_id = $1", case_id) == typed
    case = await db.fetchrow("SELECT * FROM cases WHERE case_id = $1", case_id)
    assert case is not None
    assert "institution" not in case.keys()  # noqa: SIM118 - asyncpg Record


async def test_a_report_is_stored_and_published_once_as_a_cloudevent_without_personal_data(
    ns: Namespace, intake_service: tuple[FastAPI, httpx.AsyncClient], db: asyncpg.Pool
) -> None:
    _, client = intake_service
    body = report(position={"lat": 55.6415, "lon": 12.0803})
    r = await client.post("/v1/reports", json=body, headers=PORTAL | {"Idempotency-Key": str(uuid.uuid4())})
    assert r.status_code == 202, r.text
    answer = r.json()
    assert set(answer) == {"case_id", "reference", "status_url"}
    case_id = answer["case_id"]
    assert answer["status_url"] == f"/v1/cases/{case_id}" == r.headers["location"]
    assert normalize_reference(answer["reference"]) == answer["reference"]  # MV-XXXX-XXX with a valid check symbol

    records = await read_all(ns.kafka, ns.topics.cases, expect=1)
    assert len(records) == 1
    record = records[0]
    assert record.key == case_id.encode()
    assert dict(record.headers)["content-type"].startswith(b"application/cloudevents+json")
    envelope = json.loads(record.value)
    assert envelope["specversion"] == "1.0" and envelope["source"] == "/mvsj/intake"
    assert envelope["type"] == "dk.politi.case.reported" and envelope["subject"] == case_id
    assert envelope["kommune"] == "0265" and envelope["datacontenttype"] == "application/json"
    assert envelope["time"].endswith("Z")
    uuid.UUID(envelope["id"])
    data = CaseReported.model_validate(envelope["data"])
    assert (str(data.case_id), data.reference) == (case_id, answer["reference"])
    assert (data.category, data.focus_area, data.in_progress, data.channel) == (
        "burglary_home", "indbrud", False, "portal",
    )  # fmt: skip
    assert data.received_at.isoformat().replace("+00:00", "Z") == envelope["time"]
    for personal in PERSONAL:
        assert personal.encode() not in record.value, f"{personal!r} went onto the bus"

    # The person is in intake's own table, and only there.
    details = await db.fetchrow("SELECT * FROM case_details WHERE case_id = $1", uuid.UUID(case_id))
    assert details is not None
    assert details["description"] == DESCRIPTION and details["contact_phone"] == PHONE
    assert details["contact_name"] == NAME and details["contact_email"] == EMAIL
    assert details["address"] == ADDRESS and details["postcode"] == "4040" and details["lat"] == 55.6415
    assert str(details["client_address"]) == "127.0.0.1"
    case = await db.fetchrow("SELECT * FROM cases WHERE case_id = $1", uuid.UUID(case_id))
    assert case is not None
    assert all(personal not in str(value) for value in case.values() for personal in PERSONAL)

    status = await client.get(answer["status_url"], headers=PORTAL)
    assert status.status_code == 200
    assert status.json() | {"since": None} == {
        "case_id": case_id, "reference": answer["reference"], "kind": "report", "category": "burglary_home",
        "status": "received", "label_da": "Modtaget", "label_en": "Received", "since": None,
    }  # fmt: skip
    assert all(personal not in status.text for personal in PERSONAL)


async def test_a_replay_gives_the_first_answer_and_publishes_nothing_new(
    ns: Namespace, intake_service: tuple[FastAPI, httpx.AsyncClient], db: asyncpg.Pool
) -> None:
    _, client = intake_service
    key = PORTAL | {"Idempotency-Key": "portal-form-4711"}
    first = await client.post("/v1/reports", json=report(), headers=key)
    assert first.status_code == 202 and "idempotent-replayed" not in first.headers
    # The same request, with its fields in another order and other whitespace: still the same request.
    reordered = json.dumps(dict(reversed(list(report().items()))), indent=2)
    again = await client.post("/v1/reports", content=reordered, headers=key | {"Content-Type": "application/json"})
    assert again.status_code == 202 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"

    changed = await client.post("/v1/reports", json=report(in_progress=True), headers=key)
    assert changed.status_code == 422 and changed.headers["content-type"] == "application/problem+json"
    problem = changed.json()
    assert problem["type"].endswith("/idempotency-key-reused")
    assert problem["errors"][0]["field"] == "Idempotency-Key" and problem["errors"][0]["in"] == "header"
    # The key is per path too: the same key on another route is another request.
    elsewhere = await client.post("/v1/tips", json=tip(), headers=key)
    assert elsewhere.status_code == 422 and elsewhere.json()["type"].endswith("/idempotency-key-reused")

    other = await client.post("/v1/reports", json=report(), headers=PORTAL)  # no key: a new report
    assert other.status_code == 202 and other.json()["case_id"] != first.json()["case_id"]
    assert await db.fetchval("SELECT count(*) FROM cases") == 2
    assert await db.fetchval("SELECT count(*) FROM outbox") == 2
    events = await case_events(ns, expect=2)
    assert sorted(e.subject for e in events) == sorted([first.json()["case_id"], other.json()["case_id"]])


async def test_concurrent_requests_with_one_key_make_one_case(
    ns: Namespace, intake_service: tuple[FastAPI, httpx.AsyncClient], db: asyncpg.Pool
) -> None:
    _, client = intake_service
    headers = PORTAL | {"Idempotency-Key": str(uuid.uuid4())}
    answers = await asyncio.gather(*(client.post("/v1/reports", json=report(), headers=headers) for _ in range(8)))
    assert {r.status_code for r in answers} == {202}
    assert len({r.json()["case_id"] for r in answers}) == 1
    assert sum("idempotent-replayed" not in r.headers for r in answers) == 1
    assert await db.fetchval("SELECT count(*) FROM cases") == 1
    assert await db.fetchval("SELECT count(*) FROM outbox") == 1


async def test_an_anonymous_tip_keeps_its_text_but_no_contact_and_no_client_address(
    ns: Namespace, intake_service: tuple[FastAPI, httpx.AsyncClient], db: asyncpg.Pool
) -> None:
    _, client = intake_service
    anonymous = await client.post("/v1/tips", json=tip(), headers=PORTAL)
    named = await client.post(
        "/v1/tips", json=tip(anonymous=False, contact={"phone": "20304050"}, postcode="4300", kommune=None),
        headers=PORTAL,
    )  # fmt: skip
    assert anonymous.status_code == 202 and named.status_code == 202, named.text
    rows = {
        str(r["case_id"]): r
        for r in await db.fetch("SELECT * FROM case_details JOIN cases USING (case_id) WHERE kind = 'tip'")
    }
    kept = rows[anonymous.json()["case_id"]]
    assert kept["description"] == tip()["description"]  # police need the text
    assert kept["anonymous"] is True
    assert [kept[c] for c in ("contact_name", "contact_phone", "contact_email", "client_address")] == [None] * 4
    reachable = rows[named.json()["case_id"]]
    assert reachable["contact_phone"] == PHONE and reachable["client_address"] is not None
    assert reachable["kommune"] == "0316"  # from postcode 4300 Holbæk

    events = {e.subject: e for e in await case_events(ns, expect=2)}
    tip_event = events[anonymous.json()["case_id"]]
    assert tip_event.type == "dk.politi.case.tip_received" and tip_event.kommune == "0316"
    assert TipReceived.model_validate(tip_event.data).anonymous is True
    assert TipReceived.model_validate(events[named.json()["case_id"]].data).anonymous is False


async def test_an_officer_request_is_published_under_its_category(
    ns: Namespace, intake_service: tuple[FastAPI, httpx.AsyncClient]
) -> None:
    _, client = intake_service
    r = await client.post("/v1/officer-requests", json=officer_request(), headers=PORTAL)
    assert r.status_code == 202, r.text
    [event] = await case_events(ns, expect=1)
    data = OfficerRequested.model_validate(event.data)
    assert (event.type, event.kommune) == ("dk.politi.case.officer_requested", "0259")
    assert (data.request_type, data.category, data.focus_area) == ("traffic_control", "traffic", "faerdselssikkerhed")


async def test_an_invalid_submission_is_refused_per_field_and_nothing_is_stored(
    ns: Namespace, intake_service: tuple[FastAPI, httpx.AsyncClient], db: asyncpg.Pool
) -> None:
    _, client = intake_service
    future = "2099-01-01T10:00:00+01:00"
    r = await client.post(
        "/v1/reports",
        json=report(postcode="4000", occurred_at=future, in_progress=None, description="Hjælp\x07"),
        headers=PORTAL,
    )
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    by_field = {e["field"]: e for e in r.json()["errors"]}
    assert set(by_field) == {"description"}  # field-level errors first; cross-field rules on the next try
    assert by_field["description"]["code"] == "control_characters"

    r = await client.post("/v1/reports", json=report(postcode="4000", occurred_at=future, in_progress=None),
                          headers=PORTAL)  # fmt: skip
    by_field = {e["field"]: e for e in r.json()["errors"]}
    assert set(by_field) == {"kommune", "occurred_at", "in_progress"}
    assert by_field["kommune"]["code"] == "kommune_ambiguous"
    assert "Roskilde (0265) and Lejre (0350)" in by_field["kommune"]["message"]  # asks, naming the choices
    assert await db.fetchval("SELECT count(*) FROM cases") == 0
    assert await db.fetchval("SELECT count(*) FROM outbox") == 0


async def test_a_taken_reference_is_drawn_again(ns: Namespace, intake_schema: str, db: asyncpg.Pool) -> None:
    rng = random.Random(2026)
    app = build_app(settings_for(ns), rng=rng)
    key = PORTAL | {"Idempotency-Key": "after-a-collision"}
    async with running(app) as client:
        first = await client.post("/v1/reports", json=report(), headers=PORTAL)
        rng.seed(2026)  # the next draw repeats the first reference
        second = await client.post("/v1/reports", json=report(), headers=key)
        replay = await client.post("/v1/reports", json=report(), headers=key)
    assert first.status_code == second.status_code == 202, second.text
    assert first.json()["reference"] != second.json()["reference"]
    assert replay.json() == second.json()  # the key remembers the reference the case really got
    stored = await db.fetchval("SELECT reference FROM cases WHERE case_id = $1", uuid.UUID(second.json()["case_id"]))
    assert stored == second.json()["reference"]
    assert await db.fetchval("SELECT count(*) FROM cases") == 2


async def test_keys_decide_who_may_do_what(intake_service: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _, client = intake_service
    r = await client.post("/v1/reports", json=report())
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"] == "Bearer"
    r = await client.post("/v1/reports", json=report(), headers={"Authorization": "Bearer not-a-key"})
    assert r.status_code == 401
    r = await client.post("/v1/reports", json=report(), headers=POLICE)
    assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"
    r = await client.post(f"/v1/cases/{uuid.uuid4()}/actions", json={}, headers=PORTAL)
    assert r.status_code == 403
    r = await client.get(f"/v1/cases/{uuid.uuid4()}", headers={"Authorization": "Bearer dev-council-key"})
    assert r.status_code == 403
    assert (await client.get(f"/v1/cases/{uuid.uuid4()}", headers=POLICE)).status_code == 404
