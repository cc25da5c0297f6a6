"""Intake's HTTP layer on the fake unit of work: status codes, problem+json, keys, limits, and what reaches storage."""

from __future__ import annotations

import json
import logging
import random
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from services.intake.bootstrap import build_app
from services.intake.domain.cases import CaseFacts, RecordedAction
from services.intake.domain.fields import DESCRIPTION_MAX_CHARS
from services.intake.domain.reference import new_reference
from services.intake.entrypoints.bodies import ActionIn, OfficerRequestIn, ReportIn, SubmissionT, TipIn
from services.intake.entrypoints.checks import validate_submission
from services.intake.entrypoints.http import request_hash
from services.intake.handlers import StoredCase
from services.intake.settings import IntakeSettings
from shared.clock import ManualClock
from shared.metrics import HTTP_REQUESTS
from tests.support.services import PORTAL_LIKE_HOOKS
from tests.unit.intake.fakes import FakeUnitOfWork

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
PORTAL = {"Authorization": "Bearer dev-portal-key"}
POLICE = {"Authorization": "Bearer dev-police-key"}
DESCRIPTION = "Vinduet i kælderen er knust og cyklen fra Onkel Bent er væk"
PHONE_TYPED = "20 30 40 50"
SEED = 7
REFERENCE = new_reference(random.Random(SEED))  # the first a fresh app draws


def report(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "category": "burglary_home",
        "description": DESCRIPTION,
        "in_progress": False,
        "postcode": "4040",
        "address": "Strandvejen 12",
        "occurred_at": "2026-03-01T08:40:00+01:00",
        "contact": {"name": "Mette Hansen", "phone": PHONE_TYPED},
    }
    return {k: v for k, v in (body | over).items() if v is not None}


def make_app(uow: FakeUnitOfWork, **settings: Any) -> FastAPI:
    values = {"rate_limit_per_minute": 6000, "rate_limit_burst": 100} | settings
    return build_app(IntakeSettings(**values), clock=ManualClock(NOW), rng=random.Random(SEED), uow=uow)


async def call(app: FastAPI, method: str, path: str, *, portal_like: bool = True, **kw: Any) -> httpx.Response:
    """One request; `portal_like` gives a POST an Idempotency-Key when it has none, as the portal does."""
    hooks = PORTAL_LIKE_HOOKS if portal_like else {}
    # raise_app_exceptions=False: a bug answers 500 problem+json, as under uvicorn, instead of raising here.
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://intake", event_hooks=hooks) as client:
        return await client.request(method, path, **kw)


@pytest.fixture
def uow() -> FakeUnitOfWork:
    return FakeUnitOfWork()


@pytest.fixture
def app(uow: FakeUnitOfWork) -> FastAPI:
    return make_app(uow)


# --- Accepted submissions ----------------------------------------------------------------------


async def test_an_accepted_report_is_202_with_reference_and_status_url(app: FastAPI, uow: FakeUnitOfWork) -> None:
    r = await call(app, "POST", "/v1/reports", json=report(), headers=PORTAL)
    assert r.status_code == 202
    [case] = uow.committed.new_cases
    assert r.json() == {"case_id": str(case.case_id), "reference": REFERENCE,
                        "status_url": f"/v1/cases/{case.case_id}"}  # fmt: skip
    assert r.headers["location"] == f"/v1/cases/{case.case_id}"
    assert (case.kind, case.kommune, case.focus_area, case.received_at) == ("report", "0265", "indbrud", NOW)
    assert case.details.contact_phone == "+4520304050" and case.details.client_address == "203.0.113.7"
    assert DESCRIPTION not in repr(case) and "+4520304050" not in repr(case)  # a logged NewCase shows no one


async def test_the_event_of_a_case_carries_no_personal_data(app: FastAPI, uow: FakeUnitOfWork) -> None:
    await call(app, "POST", "/v1/reports", json=report(position={"lat": 55.6415, "lon": 12.0803}), headers=PORTAL)
    [event] = uow.committed.outbox
    raw = event.to_bytes().decode()
    for personal in (DESCRIPTION, "Mette", "4520304050", "Strandvejen", "4040", "55.6415", "203.0.113.7"):
        assert personal not in raw
    assert event.kommune == "0265" and event.data["category"] == "burglary_home"


async def test_the_institution_a_citizen_types_goes_to_the_details_not_the_event(
    app: FastAPI, uow: FakeUnitOfWork
) -> None:
    typed = "Himmelev Skole, ring 20 30 40 50 / mette@example.dk"
    body = report(category="drug_dealing_school", in_progress=None, address=None, institution=typed)
    assert (await call(app, "POST", "/v1/reports", json=body, headers=PORTAL)).status_code == 202
    assert uow.committed.new_cases[0].details.institution == typed
    raw = uow.committed.outbox[0].to_bytes().decode()
    assert "Himmelev" not in raw and "20 30 40 50" not in raw and "mette@" not in raw


async def test_an_anonymous_tip_keeps_no_contact_and_no_client_address(app: FastAPI, uow: FakeUnitOfWork) -> None:
    body = {"category": "drug_dealing_street", "description": "Salg bag hallen", "postcode": "4300", "anonymous": True}
    assert (await call(app, "POST", "/v1/tips", json=body, headers=PORTAL)).status_code == 202
    named = body | {"anonymous": False, "contact": {"email": "a@b.dk"}}
    assert (await call(app, "POST", "/v1/tips", json=named, headers=PORTAL)).status_code == 202
    anonymous, signed = uow.committed.new_cases
    assert anonymous.anonymous and anonymous.details.description == "Salg bag hallen"
    details = anonymous.details
    assert (details.contact_name, details.contact_phone, details.contact_email, details.client_address) == (None,) * 4
    assert signed.details.client_address == "203.0.113.7" and signed.details.contact_email == "a@b.dk"


async def test_an_officer_request_is_counted_under_its_category(app: FastAPI, uow: FakeUnitOfWork) -> None:
    body = {"request_type": "talk", "description": "Oplæg for seniorklubben", "kommune": "350",
            "contact": {"phone": "+4712345678"}}  # fmt: skip
    assert (await call(app, "POST", "/v1/officer-requests", json=body, headers=PORTAL)).status_code == 202
    [case] = uow.committed.new_cases
    assert (case.kind, case.request_type, case.category, case.kommune) == ("officer_request", "talk", "other", "0350")


# --- Refused submissions -----------------------------------------------------------------------


async def test_invalid_fields_are_one_problem_entry_each_in_words_a_portal_can_show(
    app: FastAPI, uow: FakeUnitOfWork
) -> None:
    body = report(contact={"phone": "12"}, description="<script>x</script>\x00", category="burglary")
    r = await call(app, "POST", "/v1/reports", json=body, headers=PORTAL)
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["type"].endswith("/validation") and problem["instance"] == "/v1/reports"
    entries = {e["field"]: e for e in problem["errors"]}
    assert set(entries) == {"contact.phone", "description", "category"}
    assert entries["contact.phone"]["message"].startswith("Enter a Danish phone number")
    assert all(e["in"] == "body" and e["code"] for e in entries.values())
    assert "<script>" not in r.text  # never repeats what was typed
    assert uow.committed.new_cases == []


async def test_markup_is_stored_as_typed_and_docs_never_carry_client_text(app: FastAPI, uow: FakeUnitOfWork) -> None:
    markup = "<svg/onload=alert(1)><img src=x onerror=alert(2)><iframe src=javascript:alert(3)>"
    body = report(description=markup, address=markup, contact={"name": markup, "phone": PHONE_TYPED})
    assert (await call(app, "POST", "/v1/reports", json=body, headers=PORTAL)).status_code == 202
    details = uow.committed.new_cases[0].details
    assert (details.description, details.address, details.contact_name) == (markup, markup, markup)
    # /docs renders the OpenAPI document: ours, built from code, with nothing a client sent.
    for page in ("/docs", "/openapi.json", "/redoc"):
        r = await call(app, "GET", page)
        assert r.status_code == 200 and "onload" not in r.text and "onerror" not in r.text and "<iframe" not in r.text


async def test_a_postcode_shared_by_kommuner_is_a_422_that_asks_for_the_kommune(app: FastAPI) -> None:
    r = await call(app, "POST", "/v1/reports", json=report(postcode="4000"), headers=PORTAL)
    [entry] = r.json()["errors"]
    assert (entry["field"], entry["code"]) == ("kommune", "kommune_ambiguous")
    assert "Choose the kommune" in entry["message"]
    ok = await call(app, "POST", "/v1/reports", json=report(postcode="4000", kommune="0350"), headers=PORTAL)
    assert ok.status_code == 202


async def test_a_time_in_the_future_is_refused(app: FastAPI) -> None:
    later = (NOW + timedelta(hours=1)).isoformat()
    r = await call(app, "POST", "/v1/reports", json=report(occurred_at=later), headers=PORTAL)
    assert [(e["field"], e["code"]) for e in r.json()["errors"]] == [("occurred_at", "in_the_future")]


@pytest.mark.parametrize(
    ("content", "content_type", "status", "field"),
    [
        (b'{"category": ', "application/json", 422, "body"),
        (b"", "application/json", 422, "body"),
        (b"[1, 2]", "application/json", 422, "body"),
        (b"category=burglary_home", "application/x-www-form-urlencoded", 415, None),
    ],
)
async def test_a_body_that_is_not_a_json_object_is_refused_clearly(
    app: FastAPI, content: bytes, content_type: str, status: int, field: str | None
) -> None:
    r = await call(app, "POST", "/v1/reports", content=content, headers=PORTAL | {"Content-Type": content_type})
    assert r.status_code == status and r.headers["content-type"] == "application/problem+json"
    if field:
        assert r.json()["errors"][0]["field"] == field


async def test_a_body_over_the_limit_is_413(uow: FakeUnitOfWork) -> None:
    app = make_app(uow, max_body_bytes=2048)
    r = await call(app, "POST", "/v1/reports", json=report(description="x" * 3000), headers=PORTAL)
    assert r.status_code == 413 and r.headers["content-type"] == "application/problem+json"
    assert uow.committed.new_cases == []


async def test_the_largest_valid_report_fits_under_the_default_cap(uow: FakeUnitOfWork) -> None:
    """Every text field at its longest, in a character JSON writes as 12 bytes (a surrogate pair of escapes)."""
    wide = "\U0001d504"  # 𝔄: outside the BMP, so json.dumps writes it as \ud835\udd04
    body = report(
        category="drug_dealing_school",
        in_progress=None,
        description=wide * DESCRIPTION_MAX_CHARS,
        address=wide * 200,
        institution=wide * 200,
        position={"lat": 55.6415, "lon": 12.0803},
        contact={"name": wide * 100, "phone": "+45 20 30 40 50" + " " * 17, "email": wide * 240 + "@example.dk"},
    )
    raw = json.dumps(body).encode()
    assert 55 * 1024 < len(raw) < IntakeSettings().max_body_bytes  # 56 KiB: 64 KiB keeps room for it
    r = await call(
        make_app(uow), "POST", "/v1/reports", content=raw, headers=PORTAL | {"Content-Type": "application/json"}
    )
    assert r.status_code == 202, r.text


# --- Keys and rates ----------------------------------------------------------------------------


async def test_no_key_is_401_and_the_wrong_role_is_403(app: FastAPI) -> None:
    r = await call(app, "POST", "/v1/reports", json=report())
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert r.headers["content-type"] == "application/problem+json"
    assert (await call(app, "POST", "/v1/reports", json=report(), headers=POLICE)).status_code == 403
    council = {"Authorization": "Bearer dev-council-key"}
    assert (await call(app, "GET", f"/v1/cases/{uuid.uuid4()}", headers=council)).status_code == 403
    action = await call(app, "POST", f"/v1/cases/{uuid.uuid4()}/actions", json={}, headers=PORTAL)
    assert action.status_code == 403 and "police" in action.json()["detail"]


async def test_a_key_over_its_rate_gets_429_with_retry_after(uow: FakeUnitOfWork) -> None:
    app = make_app(uow, rate_limit_per_minute=30, rate_limit_burst=2)
    answers = [await call(app, "POST", "/v1/reports", json=report(), headers=PORTAL) for _ in range(3)]
    assert [r.status_code for r in answers] == [202, 202, 429]
    limited = answers[-1]
    assert limited.headers["content-type"] == "application/problem+json"
    assert limited.headers["retry-after"] == "2"  # 30 a minute: one every 2 s
    assert len(uow.committed.new_cases) == 2
    # The limit is per key: the police system is not slowed down by the portal.
    police = {"action": "dispatched", "occurred_at": "2026-03-01T08:50:00+01:00"}
    assert (
        await call(app, "POST", f"/v1/cases/{uuid.uuid4()}/actions", json=police, headers=POLICE)
    ).status_code == 404


async def test_status_polling_and_submissions_have_separate_buckets(uow: FakeUnitOfWork) -> None:
    app = make_app(
        uow, rate_limit_per_minute=1, rate_limit_burst=2, status_rate_limit_per_minute=1, status_rate_limit_burst=3
    )
    status = f"/v1/cases/{uuid.uuid4()}"
    # Citizens refreshing their status pages use up the status bucket ...
    assert [(await call(app, "GET", status, headers=PORTAL)).status_code for _ in range(4)] == [404, 404, 404, 429]
    # ... and the portal can still submit; then its submissions run out, and status stays limited on its own.
    answers = [(await call(app, "POST", "/v1/reports", json=report(), headers=PORTAL)).status_code for _ in range(3)]
    assert answers == [202, 202, 429]
    fresh = make_app(
        FakeUnitOfWork(),
        rate_limit_per_minute=1,
        rate_limit_burst=1,
        status_rate_limit_per_minute=1,
        status_rate_limit_burst=3,
    )
    assert (await call(fresh, "POST", "/v1/reports", json=report(), headers=PORTAL)).status_code == 202
    assert (await call(fresh, "POST", "/v1/reports", json=report(), headers=PORTAL)).status_code == 429
    assert (await call(fresh, "GET", status, headers=PORTAL)).status_code == 404  # polling is not held up


# --- Idempotency-Key -------------------------------------------------------------------------


async def test_a_replay_gets_the_first_answer_marked_as_replayed(app: FastAPI, uow: FakeUnitOfWork) -> None:
    headers = PORTAL | {"Idempotency-Key": "form-1"}
    first = await call(app, "POST", "/v1/reports", json=report(), headers=headers)
    again = await call(app, "POST", "/v1/reports", json=report(), headers=headers)
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers and len(uow.committed.new_cases) == 1
    reused = await call(app, "POST", "/v1/reports", json=report(in_progress=True), headers=headers)
    assert reused.status_code == 422 and reused.json()["type"].endswith("/idempotency-key-reused")
    assert reused.json()["errors"][0]["field"] == "Idempotency-Key"


@pytest.mark.parametrize("path", ["/v1/reports", "/v1/tips", "/v1/officer-requests"])
async def test_a_portal_submission_without_idempotency_key_is_400_naming_the_header(
    app: FastAPI, uow: FakeUnitOfWork, path: str
) -> None:
    # Without a key, a retry after an unclear answer (a 503) would make a second case.
    r = await call(app, "POST", path, json=report(), headers=PORTAL, portal_like=False)
    assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["type"].endswith("/idempotency-key-required") and "Idempotency-Key" in problem["detail"]
    assert problem["errors"] == [
        {"field": "Idempotency-Key", "in": "header", "message": problem["detail"], "code": "missing"}
    ]
    assert uow.committed.new_cases == []
    parameters = (await call(app, "GET", "/openapi.json")).json()["paths"][path]["post"]["parameters"]
    assert {"name": "Idempotency-Key", "in": "header", "required": True}.items() <= parameters[0].items()


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "æøå".encode()])
async def test_a_malformed_idempotency_key_is_422(app: FastAPI, key: str | bytes) -> None:
    r = await call(app, "POST", "/v1/reports", json=report(), headers=PORTAL | {"Idempotency-Key": key})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "Idempotency-Key"


def test_the_request_hash_ignores_formatting_but_not_content_or_path() -> None:
    compact = json.dumps({"a": 1, "b": [1, 2]}).encode()
    spread = b'{\n  "b": [1, 2],\n  "a": 1\n}'
    assert request_hash("/v1/reports", compact) == request_hash("/v1/reports", spread)
    assert request_hash("/v1/reports", compact) != request_hash("/v1/tips", compact)
    assert request_hash("/v1/reports", compact) != request_hash("/v1/reports", b'{"a": 2, "b": [1, 2]}')


# --- Police actions and status -----------------------------------------------------------------


def stored(kind: str = "report", category: str = "burglary_home") -> StoredCase:
    facts = CaseFacts(kind=kind, category=category, received_at=NOW - timedelta(hours=1), in_progress=False)  # type: ignore[arg-type]
    dispatched = RecordedAction("dispatched", NOW - timedelta(minutes=30))
    return StoredCase(uuid.uuid4(), "MV-2345-67A", "0265", facts, (dispatched,))


async def test_an_action_is_handed_over_with_who_recorded_it(app: FastAPI, uow: FakeUnitOfWork) -> None:
    case = stored()
    uow.committed.cases[case.case_id] = case
    body = {"action": "on_scene", "occurred_at": "2026-03-01T08:50:00Z", "officer_id": "MVSJ-1234"}
    r = await call(app, "POST", f"/v1/cases/{case.case_id}/actions", json=body, headers=POLICE)
    assert r.status_code == 202
    [(action, _)] = uow.committed.actions
    assert r.json()["action_id"] == str(action.action_id)
    assert (action.recorded_by, action.recorded_at, action.request.action) == ("dev-police", NOW, "on_scene")


async def test_unknown_case_refused_action_and_bad_action_fields(app: FastAPI, uow: FakeUnitOfWork) -> None:
    body = {"action": "on_scene", "occurred_at": "2026-03-01T08:50:00Z"}
    missing = await call(app, "POST", f"/v1/cases/{uuid.uuid4()}/actions", json=body, headers=POLICE)
    assert missing.status_code == 404 and missing.json()["type"].endswith("/case-not-found")

    arrived = stored()
    arrived = replace(arrived, actions=(*arrived.actions, RecordedAction("on_scene", NOW - timedelta(minutes=15))))
    uow.committed.cases[arrived.case_id] = arrived
    refused = await call(app, "POST", f"/v1/cases/{arrived.case_id}/actions", json=body, headers=POLICE)
    assert refused.status_code == 409 and refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "already_recorded" and "08:45" in refused.json()["detail"]

    closing = await call(app, "POST", f"/v1/cases/{uuid.uuid4()}/actions", json={"action": "closed",
                         "occurred_at": "2026-03-01T08:50:00Z"}, headers=POLICE)  # fmt: skip
    assert closing.status_code == 422 and closing.json()["errors"][0]["field"] == "outcome"
    not_a_case = await call(app, "POST", "/v1/cases/MV-2345-67A/actions", json=body, headers=POLICE)
    assert not_a_case.status_code == 422 and not_a_case.json()["errors"][0]["field"] == "case_id"


async def test_the_status_shows_state_and_reference_and_nothing_else(app: FastAPI, uow: FakeUnitOfWork) -> None:
    case = stored()
    uow.committed.cases[case.case_id] = case
    r = await call(app, "GET", f"/v1/cases/{case.case_id}", headers=PORTAL)
    assert r.status_code == 200
    assert r.json() == {
        "case_id": str(case.case_id), "reference": "MV-2345-67A", "kind": "report", "category": "burglary_home",
        "status": "officer_dispatched", "label_da": "Politiet er sendt af sted",
        "label_en": "Police have been dispatched", "since": "2026-03-01T08:30:00Z",
    }  # fmt: skip
    assert (await call(app, "GET", f"/v1/cases/{uuid.uuid4()}", headers=PORTAL)).status_code == 404


# --- When the database is away -----------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [ConnectionRefusedError(111, "Connection refused"), TimeoutError(),
     asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation")],
)  # fmt: skip
async def test_an_unreachable_database_is_503_problem_json_counted_as_503(
    app: FastAPI, uow: FakeUnitOfWork, failure: BaseException
) -> None:
    uow.fail_before_commit = failure
    before = HTTP_REQUESTS.labels("intake", "POST", "/v1/reports", "503")._value.get()
    r = await call(app, "POST", "/v1/reports", json=report(), headers=PORTAL)
    assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json"
    assert r.headers["retry-after"] == "5" and "nothing was saved" in r.json()["detail"]
    assert HTTP_REQUESTS.labels("intake", "POST", "/v1/reports", "503")._value.get() == before + 1


# --- Logs and documents ------------------------------------------------------------------------


async def test_logs_never_show_the_text_or_contact_details(
    app: FastAPI, uow: FakeUnitOfWork, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await call(app, "POST", "/v1/reports", json=report(), headers=PORTAL)
    await call(app, "POST", "/v1/reports", json=report(contact={"phone": PHONE_TYPED + "9"}), headers=PORTAL)
    uow.fail_before_commit = ConnectionRefusedError(111, "Connection refused")
    await call(app, "POST", "/v1/reports", json=report(), headers=PORTAL)
    uow.fail_before_commit = RuntimeError("a bug")
    assert (await call(app, "POST", "/v1/reports", json=report(), headers=PORTAL)).status_code == 500
    assert caplog.records  # the 503 and the 500 were logged ...
    for record in caplog.records:  # ... without the person
        text = record.getMessage() + str(vars(record)) + (caplog.text or "")
        for personal in (DESCRIPTION, PHONE_TYPED, "20304050", "Mette", "Strandvejen"):
            assert personal not in text


async def test_openapi_describes_the_bodies_with_examples_that_pass_validation(app: FastAPI) -> None:
    document = (await call(app, "GET", "/openapi.json")).json()
    schemas = document["components"]["schemas"]

    def documented_example_passes(path: str, model: type[SubmissionT]) -> None:
        media = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        assert media["schema"] == {"$ref": f"#/components/schemas/{model.__name__}"}
        example = media.get("example") or schemas[model.__name__]["examples"][0]
        validate_submission(model, example, NOW + timedelta(days=1))  # raises if a documented example is invalid

    documented_example_passes("/v1/reports", ReportIn)
    documented_example_passes("/v1/tips", TipIn)
    documented_example_passes("/v1/officer-requests", OfficerRequestIn)
    documented_example_passes("/v1/cases/{case_id}/actions", ActionIn)
    assert "ProblemDetails" in schemas and "Contact" in schemas and "Position" in schemas


@pytest.mark.parametrize("email", ["a\u0000b@example.dk", "a\u0007b@example.dk", "ab@exa\u007fmple.dk"])
async def test_an_email_with_control_characters_is_refused_not_stored(
    app: FastAPI, uow: FakeUnitOfWork, email: str
) -> None:
    """A NUL once passed validation and made Postgres refuse the row: a 500 instead of a 422."""
    body = {"category": "drug_dealing_street", "description": "Salg bag hallen", "kommune": "0316",
            "anonymous": False, "contact": {"email": email}}  # fmt: skip
    r = await call(app, "POST", "/v1/tips", json=body, headers=PORTAL)
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["contact.email"]
    assert uow.committed.new_cases == []


async def test_a_time_before_the_first_utc_instant_is_refused_not_a_server_error(app: FastAPI) -> None:
    """0001-01-01T00:00+01:00 parsed, then failed in the database (a 500)."""
    r = await call(app, "POST", "/v1/reports", json=report(occurred_at="0001-01-01T00:00:00+01:00"), headers=PORTAL)
    assert r.status_code == 422 and [(e["field"], e["code"]) for e in r.json()["errors"]] == [
        ("occurred_at", "too_early")
    ]
    action = {"action": "dispatched", "occurred_at": "0001-01-01T00:59:59+01:00"}
    r = await call(app, "POST", f"/v1/cases/{uuid.uuid4()}/actions", json=action, headers=POLICE)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "occurred_at"
