"""Names, lines and free text as a hostile tester sent them, on real Postgres: a 422 naming the field, nothing stored.

A NUL reached Postgres (which refuses it in text: a 500, and nothing recorded); a CR LF in a name can
write a line of its own into whatever shows the name; a bidi override shows other text than was
stored; a zero-width character makes one name look like another.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from tests.integration.intake.conftest import POLICE, PORTAL, officer_request, report, tip

HOSTILE = {
    "nul": ("Mette\x00Hansen", "U+0000"),
    "crlf": ("Mette Hansen\r\nBcc: alle@politi.example", "U+000D"),
    "bidi": ("Mette \u202enesnaH", "U+202E"),
    "zero-width": ("vc\u200b-a", "U+200B"),
}
# (route, body with the hostile text in it, the field the 422 names)
PLACES: dict[str, tuple[str, Any, str]] = {
    "report contact.name": ("/v1/reports", lambda t: report(contact={"name": t, "phone": "20304050"}), "contact.name"),
    "report address": ("/v1/reports", lambda t: report(address=t), "address"),
    "report institution": (
        "/v1/reports",
        lambda t: report(category="drug_dealing_school", in_progress=None, institution=t),
        "institution",
    ),
    "report contact.email": (
        "/v1/reports",
        lambda t: report(contact={"email": t.replace(" ", "") + "@example.dk"}),
        "contact.email",
    ),
    "tip contact.name": (
        "/v1/tips",
        lambda t: tip(anonymous=False, contact={"name": t, "phone": "20304050"}),
        "contact.name",
    ),
    "officer request address": ("/v1/officer-requests", lambda t: officer_request(address=t), "address"),
}


async def nothing_stored(db: asyncpg.Pool) -> None:
    counts = await db.fetchrow(
        "SELECT (SELECT count(*) FROM cases) AS cases, (SELECT count(*) FROM case_details) AS details,"
        " (SELECT count(*) FROM outbox) AS events, (SELECT count(*) FROM idempotency_keys) AS keys"
    )
    assert counts is not None and dict(counts) == {"cases": 0, "details": 0, "events": 0, "keys": 0}


@pytest.mark.parametrize("hostile", sorted(HOSTILE))
@pytest.mark.parametrize("place", sorted(PLACES))
async def test_a_hostile_name_or_line_is_a_422_naming_the_field_and_nothing_is_stored(
    intake_service: tuple[FastAPI, httpx.AsyncClient], db: asyncpg.Pool, place: str, hostile: str
) -> None:
    _, client = intake_service
    route, body, field = PLACES[place]
    text, point = HOSTILE[hostile]
    r = await client.post(route, json=body(text), headers=PORTAL)
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", r.text
    [error] = r.json()["errors"]
    assert error["field"] == field and point in error["message"], error
    await nothing_stored(db)


@pytest.mark.parametrize("hostile", ["nul", "bidi", "zero-width"])
async def test_a_description_with_a_nul_bidi_or_zero_width_character_is_refused_and_nothing_is_stored(
    intake_service: tuple[FastAPI, httpx.AsyncClient], db: asyncpg.Pool, hostile: str
) -> None:
    _, client = intake_service
    text, point = HOSTILE[hostile]
    r = await client.post("/v1/reports", json=report(description=f"Indbrud. {text}"), headers=PORTAL)
    assert r.status_code == 422
    assert [(e["field"], point in e["message"]) for e in r.json()["errors"]] == [("description", True)]
    await nothing_stored(db)


async def test_a_description_keeps_its_lines_stored_with_lf(
    intake_service: tuple[FastAPI, httpx.AsyncClient], db: asyncpg.Pool
) -> None:
    _, client = intake_service
    r = await client.post("/v1/reports", json=report(description="Linje 1\r\nLinje 2\r\tLinje 3"), headers=PORTAL)
    assert r.status_code == 202, r.text
    assert await db.fetchval("SELECT description FROM case_details") == "Linje 1\nLinje 2\n\tLinje 3"


@pytest.mark.parametrize("officer_id", ["MVSJ\x00", "MVSJ-1\r\n2", "MVSJ\u202e1"])
async def test_an_action_with_a_hostile_officer_id_is_refused_and_nothing_is_stored(
    intake_service: tuple[FastAPI, httpx.AsyncClient], db: asyncpg.Pool, officer_id: str
) -> None:
    _, client = intake_service
    case = await client.post("/v1/reports", json=report(), headers=PORTAL)
    assert case.status_code == 202
    action = {"action": "dispatched", "occurred_at": "2026-03-01T08:05:00+01:00", "officer_id": officer_id}
    r = await client.post(f"/v1/cases/{case.json()['case_id']}/actions", json=action, headers=POLICE)
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["officer_id"]
    assert await db.fetchval("SELECT count(*) FROM case_actions") == 0
