"""A report's personal content on real Postgres, Kafka and Keycloak: read by a person for a purpose and on record,
refused to everyone else, erased on request and when its retention ends, with the case's facts kept.

Tokens are the development realm's, got through its login form (tests/support/identity.py): vc-anne is
a vagtchef, lb-roskilde-1 and lb-greve-1 lokalbetjente of 0265 and 0253, raad-0265 a council
secretary, dpo the data-protection role. The report below is in Roskilde (0265).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from services.intake.entrypoints.erasure import ErasureJob
from shared.events import CloudEvent, envelope
from shared.events.deadlines import DeadlineCancelled, DeadlineMet, DeadlineStarted
from shared.kafka import EventProducer, OutgoingMessage
from tests.integration.intake.conftest import (
    ADDRESS,
    DESCRIPTION,
    EMAIL,
    NAME,
    POLICE,
    PORTAL,
    report,
    running,
    settings_for,
    tip,
)
from tests.support.identity import bearer
from tests.support.infra import Namespace
from tests.support.waiting import eventually

COUNCIL = {"Authorization": "Bearer dev-council-key"}
PHONE_DIGITS = "20304050"
MARKERS = (NAME, PHONE_DIGITS, EMAIL, ADDRESS, DESCRIPTION, "Strandvejen", "Gudrun")


async def submit(client: httpx.AsyncClient, body: dict[str, Any] | None = None) -> str:
    answer = await client.post("/v1/reports" if body is None else "/v1/tips", json=body or report(), headers=PORTAL)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["case_id"])


async def details(client: httpx.AsyncClient, case_id: str, purpose: str | None, **headers: str) -> httpx.Response:
    params = {"purpose": purpose} if purpose else {}
    return await client.get(f"/v1/cases/{case_id}/details", params=params, headers=headers)


async def log_rows(db: asyncpg.Pool, case_id: str) -> list[tuple[str, str, str | None, str]]:
    rows = await db.fetch(
        "SELECT action, person_id, purpose, via FROM access_log WHERE case_id = $1 ORDER BY id", uuid.UUID(case_id)
    )
    return [(r["action"], r["person_id"], r["purpose"], r["via"]) for r in rows]


async def test_a_police_person_reads_for_a_purpose_each_read_logged_and_everyone_else_is_refused(
    intake_service: tuple[FastAPI, httpx.AsyncClient], db: asyncpg.Pool
) -> None:
    _, client = intake_service
    case_id = await submit(client)

    anne = await details(client, case_id, "acute_response", **bearer("vc-anne"))
    assert anne.status_code == 200, anne.text
    assert anne.headers["cache-control"] == "no-store"
    body = anne.json()
    assert (body["description"], body["address"], body["postcode"]) == (DESCRIPTION, ADDRESS, "4040")
    assert body["position"] == {"lat": 55.7448, "lon": 12.0992}
    assert body["contact"]["name"] == NAME and PHONE_DIGITS in body["contact"]["phone"]
    assert body["contact"]["email"] == EMAIL and body["kommune"] == "0265" and body["anonymous"] is False
    assert body["fields"] == ["description", "address", "postcode", "position", "contact.name", "contact.phone",
                              "contact.email"]  # fmt: skip
    assert body["logged"]["purpose"] == "acute_response"

    local = await details(client, case_id, "followup", **bearer("lb-roskilde-1"), **{"X-Access-Via": "console"})
    assert local.status_code == 200, local.text
    # A police system reads for the officer it names, never alone; the officer's reach still applies.
    for_officer = await details(client, case_id, "investigation", **POLICE, **{"X-On-Behalf-Of": "vc-bo"})
    assert for_officer.status_code == 200, for_officer.text

    refusals = {
        "another kommune's lokalbetjent": (await details(client, case_id, "followup", **bearer("lb-greve-1")), 403),
        "council key": (await details(client, case_id, "followup", **COUNCIL), 403),
        "council person": (await details(client, case_id, "followup", **bearer("raad-0265")), 403),
        "portal key": (await details(client, case_id, "followup", **PORTAL), 403),
        "data-protection person": (await details(client, case_id, "followup", **bearer("dpo")), 403),
        "police key alone": (await details(client, case_id, "followup", **POLICE), 403),
        "police key for another kommune's officer": (
            await details(client, case_id, "followup", **POLICE, **{"X-On-Behalf-Of": "lb-greve-1"}), 403),
        "police key for a council secretary": (
            await details(client, case_id, "followup", **POLICE, **{"X-On-Behalf-Of": "raad-0265"}), 422),
        "a token acting for someone else": (
            await details(client, case_id, "followup", **bearer("vc-anne"), **{"X-On-Behalf-Of": "vc-bo"}), 422),
        "no purpose": (await details(client, case_id, None, **bearer("vc-anne")), 422),
        "a purpose not on the list": (await details(client, case_id, "curiosity", **bearer("vc-anne")), 422),
        "no credentials": (await details(client, case_id, "followup"), 401),
        "no such case": (await details(client, str(uuid.uuid4()), "followup", **bearer("vc-anne")), 404),
    }  # fmt: skip
    for what, (answer, status) in refusals.items():
        assert answer.status_code == status, (what, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json"), what
    missing = refusals["no purpose"][0].json()["errors"]
    assert [(e["field"], e["in"]) for e in missing] == [("purpose", "query")]

    # Exactly one entry per successful read, naming the person and the purpose; none for a refusal.
    assert await log_rows(db, case_id) == [
        ("read", "vc-anne", "acute_response", "api"),
        ("read", "lb-roskilde-1", "followup", "console"),
        ("read", "vc-bo", "investigation", "api"),
    ]
    via_key = await db.fetchval("SELECT via_key FROM access_log WHERE person_id = 'vc-bo'")
    assert via_key == "dev-police"

    # The log is for the data-protection role, and no API changes it (nor does SQL).
    assert (await client.get(f"/v1/cases/{case_id}/access-log", headers=bearer("vc-anne"))).status_code == 403
    assert (await client.get(f"/v1/cases/{case_id}/access-log", headers=POLICE)).status_code == 403
    logged = await client.get(f"/v1/cases/{case_id}/access-log", headers=bearer("dpo"))
    assert logged.status_code == 200, logged.text
    page = logged.json()
    assert page["total"] == 3 and page["details_erased_at"] is None
    first = page["items"][0]
    assert (first["person_id"], first["person_name"], first["purpose"]) == ("vc-anne", "Anne Holm", "acute_response")
    assert first["fields"] == body["fields"] and first["id"] == body["logged"]["id"]
    for method in ("PUT", "PATCH", "DELETE"):
        assert (
            await client.request(method, f"/v1/cases/{case_id}/access-log", headers=bearer("dpo"))
        ).status_code == 405
    with pytest.raises(asyncpg.RaiseError, match="never changed"):
        await db.execute("UPDATE access_log SET purpose = 'followup'")


async def test_no_answer_goes_out_when_the_read_cannot_be_logged(
    intake_service: tuple[FastAPI, httpx.AsyncClient], db: asyncpg.Pool
) -> None:
    _, client = intake_service
    case_id = await submit(client)
    await db.execute(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'log full'; END $$;"
        " CREATE TRIGGER refuse BEFORE INSERT ON access_log FOR EACH ROW EXECUTE FUNCTION refuse();"
    )
    answer = await details(client, case_id, "acute_response", **bearer("vc-anne"))
    assert answer.status_code == 500 and DESCRIPTION not in answer.text and NAME not in answer.text


async def test_an_anonymous_tip_answers_its_text_and_no_contact(
    intake_service: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = intake_service
    case_id = await submit(client, tip(kommune="0265"))
    answer = await details(client, case_id, "investigation", **bearer("vc-anne"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["anonymous"] is True and answer.json()["contact"] is None
    assert answer.json()["fields"] == ["description"]


async def test_the_data_protection_role_erases_with_a_reason_and_the_case_then_answers_410_with_the_date(
    intake_service: tuple[FastAPI, httpx.AsyncClient], db: asyncpg.Pool
) -> None:
    _, client = intake_service
    case_id = await submit(client)
    status_before = (await client.get(f"/v1/cases/{case_id}", headers=PORTAL)).json()
    erase = f"/v1/cases/{case_id}/erase"
    assert (
        await client.post(erase, json={"reason": "Borgerens anmodning"}, headers=bearer("vc-anne"))
    ).status_code == 403
    assert (await client.post(erase, json={"reason": "Borgerens anmodning"}, headers=POLICE)).status_code == 403
    no_reason = await client.post(erase, json={}, headers=bearer("dpo"))
    assert no_reason.status_code == 422 and no_reason.json()["errors"][0]["field"] == "reason"

    erased = await client.post(erase, json={"reason": "Borgerens anmodning, j.nr. DPO-2026-14"}, headers=bearer("dpo"))
    assert erased.status_code == 200, erased.text
    assert erased.json()["already_erased"] is False
    assert set(erased.json()["fields"]) >= {"description", "address", "contact.phone", "client_address"}
    again = await client.post(erase, json={"reason": "igen"}, headers=bearer("dpo"))
    assert again.json()["already_erased"] is True and again.json()["erased_at"] == erased.json()["erased_at"]

    gone = await details(client, case_id, "followup", **bearer("vc-anne"))
    assert gone.status_code == 410 and gone.headers["content-type"].startswith("application/problem+json")
    assert datetime.fromisoformat(gone.json()["erased_at"]) == datetime.fromisoformat(erased.json()["erased_at"])
    assert erased.json()["erased_at"][:10] in gone.json()["detail"]
    # The case's facts remain; its status page answers as before.
    assert (await client.get(f"/v1/cases/{case_id}", headers=PORTAL)).json() == status_before
    log = (await client.get(f"/v1/cases/{case_id}/access-log", headers=bearer("dpo"))).json()
    # The data-protection adviser is on no roster: the provider's stable subject names them.
    assert [(e["action"], e["person_name"], e["reason"]) for e in log["items"]] == [
        ("erase", "Databeskyttelses rådgiver", "Borgerens anmodning, j.nr. DPO-2026-14")]  # fmt: skip
    assert uuid.UUID(log["items"][0]["person_id"])
    assert await markers_in_schema(db) == []


# --- Erasure on time ---------------------------------------------------------------------------


def deadline_events(case_id: str, received: datetime) -> tuple[list[CloudEvent], list[CloudEvent]]:
    """Two deadlines of the case started; then one met after an hour and the other cancelled after ten days."""
    common = {"case_id": case_id, "basis": "guarantee", "window_set_by": "law", "category": "burglary_home",
              "focus_area": "indbrud", "started_at": received, "reference": "MV-TEST-AAA"}  # fmt: skip
    ids = {"burglary_home_24h": uuid.uuid4(), "burglary_followup": uuid.uuid4()}
    started = [
        DeadlineStarted(deadline_id=d, rule_id=rule, title=rule, due_at=received + timedelta(days=1),
                        window_seconds=86400, rules_version=1, **common)
        for rule, d in ids.items()
    ]  # fmt: skip
    ended = [
        DeadlineMet(deadline_id=ids["burglary_home_24h"], rule_id="burglary_home_24h", title="x",
                    due_at=received + timedelta(days=1), met_at=received + timedelta(hours=1), action="on_scene",
                    late=False, response_seconds=3600, **common),
        DeadlineCancelled(deadline_id=ids["burglary_followup"], rule_id="burglary_followup", title="x",
                          due_at=received + timedelta(days=14), cancelled_at=received + timedelta(days=10), **common),
    ]  # fmt: skip
    wrap = [envelope(e, source="/mvsj/deadlines", kommune="0265") for e in (*started, *ended)]
    return wrap[:2], wrap[2:]


async def publish(ns: Namespace, events: list[CloudEvent]) -> None:
    producer = EventProducer(ns.kafka, client_id="privacy-test")
    try:
        await producer.send_batch(
            [OutgoingMessage(ns.topics.deadlines, e.subject.encode(), e.to_bytes()) for e in events]
        )
    finally:
        await producer.stop()


async def case_row(db: asyncpg.Pool, case_id: str) -> dict[str, Any]:
    row = await db.fetchrow("SELECT * FROM cases WHERE case_id = $1", uuid.UUID(case_id))
    assert row is not None
    return dict(row)


FACTS = ("case_id", "reference", "kind", "category", "focus_area", "kommune", "in_progress", "acute", "anonymous",
         "status", "received_at", "occurred_at")  # fmt: skip


async def markers_in_schema(db: asyncpg.Pool) -> list[str]:
    """Every text, JSON, array, address and byte column of every table of the schema, searched for the markers."""
    columns = await db.fetch(
        "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema ="
        " current_schema() AND data_type IN ('text', 'character varying', 'jsonb', 'json', 'ARRAY', 'bytea', 'inet')"
    )
    found = []
    for c in columns:
        table, column = c["table_name"], c["column_name"]
        if c["data_type"] == "bytea":
            where = f"position(convert_to($1, 'UTF8') in \"{column}\") > 0"
        else:
            where = f'strpos("{column}"::text, $1) > 0'
        for marker in MARKERS:
            if await db.fetchval(f'SELECT count(*) FROM "{table}" WHERE {where}', marker):
                found.append(f"{table}.{column}: {marker}")
    assert len(columns) > 20, "the search must cover the schema's columns"
    return found


async def test_contact_goes_after_the_deadlines_end_then_everything_personal_and_the_facts_stay(
    ns: Namespace, intake_schema: str, db: asyncpg.Pool
) -> None:
    app = build(ns)
    async with running(app) as client:
        case_id = await submit(client)
        facts_before = {k: v for k, v in (await case_row(db, case_id)).items() if k in FACTS}
        received: datetime = facts_before["received_at"]
        job: ErasureJob = app.state.erasure
        started, ended = deadline_events(case_id, received)
        await publish(ns, started)
        await eventually(lambda: rows_of(db, "case_deadlines", case_id, 2), timeout=20, what="deadlines learnt")

        # The search finds the markers while they are kept (it would find them anywhere later).
        assert {f.split(":")[0] for f in await markers_in_schema(db)} >= {
            "case_details.contact_name", "case_details.contact_phone", "case_details.description"}  # fmt: skip
        # Deadlines running: the contact stays, however long; the report stays for its 90 days.
        assert (await job.run_once(received + timedelta(days=60))).contacts == 0
        await publish(ns, ended)
        await eventually(lambda: settled(db, case_id), timeout=20, what="deadlines concluded")
        # Counted from the later end (ten days in): 30 days after it, not before.
        assert (await job.run_once(received + timedelta(days=39))).contacts == 0
        assert (await job.run_once(received + timedelta(days=41))).contacts == 1
        read = await details(client, case_id, "followup", **bearer("lb-roskilde-1"))
        assert read.status_code == 200 and read.json()["contact"] is None, read.text
        assert read.json()["contact_erased_at"] is not None and read.json()["description"] == DESCRIPTION

        done = await job.run_once(received + timedelta(days=91))
        assert done.reports == 1
        gone = await details(client, case_id, "followup", **bearer("lb-roskilde-1"))
        assert gone.status_code == 410, gone.text

        assert await markers_in_schema(db) == []
        assert (
            await db.fetchval("SELECT client_address FROM case_details WHERE case_id = $1", uuid.UUID(case_id)) is None
        )
        assert {k: v for k, v in (await case_row(db, case_id)).items() if k in FACTS} == facts_before
        erasures = [(r[0], r[1]) for r in await log_rows(db, case_id) if r[0] == "erase"]
        assert erasures == [("erase", "intake-retention")] * 2

        # The access log itself goes after its five years.
        assert (await job.run_once(received + timedelta(days=5 * 365 + 100))).log_purged == 3
        assert await log_rows(db, case_id) == []


def build(ns: Namespace, **over: Any) -> FastAPI:
    from services.intake.bootstrap import build_app

    return build_app(settings_for(ns, **over))


async def rows_of(db: asyncpg.Pool, table: str, case_id: str, expect: int) -> bool:
    count = await db.fetchval(f"SELECT count(*) FROM {table} WHERE case_id = $1", uuid.UUID(case_id))
    return bool(count == expect)


async def settled(db: asyncpg.Pool, case_id: str) -> bool:
    row = await case_row(db, case_id)
    return not row["deadlines_open"] and row["deadlines_settled_at"] is not None


async def test_the_job_runs_by_itself_on_one_instance_at_a_time(
    ns: Namespace, intake_schema: str, db: asyncpg.Pool
) -> None:
    # Retention of nothing and a fast round: the job erases what is submitted, unless another holds its lock.
    app = build(ns, report_retention=timedelta(0), erasure_interval_seconds=0.1)
    async with db.acquire() as holder, holder.transaction():
        assert await holder.fetchval(
            "SELECT pg_try_advisory_xact_lock(hashtext('intake-erasure:' || current_schema()))"
        )
        async with running(app) as client:
            case_id = await submit(client)
            skipped = await app.state.erasure.run_once(datetime.now(UTC) + timedelta(seconds=5))
            assert skipped.skipped and skipped.reports == 0
            assert (await details(client, case_id, "followup", **bearer("vc-anne"))).status_code == 200
            await holder.execute("SELECT 1")  # still holding
        await holder.execute("SELECT 1")
    async with running(build(ns, report_retention=timedelta(0), erasure_interval_seconds=0.1)) as client:

        async def erased() -> bool:
            return (await details(client, case_id, "followup", **bearer("vc-anne"))).status_code == 410

        await eventually(erased, timeout=10, what="the case erased by the job's own rounds")


async def test_a_lokalbetjent_records_actions_on_his_own_kommunes_cases_only(
    intake_service: tuple[FastAPI, httpx.AsyncClient], db: asyncpg.Pool
) -> None:
    _, client = intake_service
    case_id = await submit(client)  # in Roskilde (0265)
    actions = f"/v1/cases/{case_id}/actions"
    on_scene = {"action": "on_scene", "occurred_at": datetime.now(UTC).isoformat()}
    greve = await client.post(actions, json=on_scene, headers=bearer("lb-greve-1"))
    assert greve.status_code == 403, greve.text
    roskilde = await client.post(actions, json=on_scene, headers=bearer("lb-roskilde-1"))
    assert roskilde.status_code == 202, roskilde.text
    recorded = await db.fetch("SELECT action, recorded_by FROM case_actions WHERE case_id = $1", uuid.UUID(case_id))
    assert [(r["action"], r["recorded_by"]) for r in recorded] == [("on_scene", "lb-roskilde-1")]
