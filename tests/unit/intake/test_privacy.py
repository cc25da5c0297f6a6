"""A report's personal content on the fake storage: who may read it and how it is logged, the routes' answers,
and when each part is erased (handlers.read_details, erase_on_request, note_deadline, erase_due)."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.intake.bootstrap import build_app
from services.intake.domain.privacy import Contact, Reader, RetentionPolicy, StoredDetails
from services.intake.entrypoints.erasure import ErasureJob
from services.intake.handlers import (
    CaseNotFound,
    Erased,
    ErasureRound,
    OutOfReach,
    erase_due,
    erase_on_request,
    note_deadline,
    read_details,
)
from services.intake.metrics import ERASURE_OVERDUE
from services.intake.settings import IntakeSettings
from shared.clock import ManualClock
from shared.events.deadlines import DeadlineBreached, DeadlineCancelled, DeadlineMet, DeadlineStarted
from shared.oidc import InvalidToken, Person
from tests.unit.intake.fakes import FakeUnitOfWork
from tests.unit.intake.privacy_fakes import FakePrivacyUnitOfWork

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
POLICY = RetentionPolicy(contact=timedelta(days=30), report=timedelta(days=90), access_log=timedelta(days=5 * 365))
ANNE = Reader(id="vc-anne", name="Anne Holm", kommuner=None)
GREVE = Reader(id="lb-greve-1", name="Lokalbetjent Greve 1", kommuner=frozenset({"0253"}))


def burglary(kommune: str = "0265", received_at: datetime = T0, **over: Any) -> StoredDetails:
    values: dict[str, Any] = {
        "case_id": uuid.uuid4(), "reference": "MV-TEST-AAA", "kind": "report", "category": "burglary_home",
        "kommune": kommune, "received_at": received_at, "anonymous": False,
        "description": "Terrassedøren brudt op", "address": "Strandvejen 12", "postcode": "4040", "lat": 55.7,
        "lon": 12.1, "institution": None, "contact": Contact("Mette", "+4520304050", None),
        "contact_erased_at": None, "details_erased_at": None,
    }  # fmt: skip
    return StoredDetails(**(values | over))


@pytest.fixture
def privacy() -> FakePrivacyUnitOfWork:
    return FakePrivacyUnitOfWork()


async def test_a_read_is_answered_with_its_log_entry_and_refused_out_of_reach_or_once_erased(
    privacy: FakePrivacyUnitOfWork,
) -> None:
    case = burglary()
    privacy.add(case)
    read = await read_details(privacy, case.case_id, ANNE, "acute_response", T0)
    assert read.fields == ("description", "address", "postcode", "position", "contact.name", "contact.phone")
    [entry] = privacy.committed.log
    assert (entry.id, entry.person_id, entry.purpose, entry.fields, entry.at) == (
        read.entry_id, "vc-anne", "acute_response", read.fields, T0)  # fmt: skip
    with pytest.raises(OutOfReach):
        await read_details(privacy, case.case_id, GREVE, "followup", T0)
    with pytest.raises(CaseNotFound):
        await read_details(privacy, uuid.uuid4(), ANNE, "followup", T0)
    await erase_on_request(privacy, case.case_id, Reader("dpo", "DPO", None), "asked", T0 + timedelta(hours=1))
    with pytest.raises(Erased) as gone:
        await read_details(privacy, case.case_id, ANNE, "followup", T0)
    assert gone.value.erased_at == T0 + timedelta(hours=1)
    assert [e.action for e in privacy.committed.log] == ["read", "erase"]  # refusals leave no entry


async def test_an_erasure_on_request_names_what_held_something_and_a_repeat_changes_nothing(
    privacy: FakePrivacyUnitOfWork,
) -> None:
    case = burglary()
    privacy.add(case)
    first = await erase_on_request(privacy, case.case_id, Reader("dpo", "DPO", None), "asked", T0)
    assert first.fields == ("description", "address", "postcode", "position", "contact.name", "contact.phone",
                            "client_address")  # fmt: skip
    again = await erase_on_request(privacy, case.case_id, Reader("dpo", "DPO", None), "again", T0 + timedelta(days=1))
    assert again.already and again.erased_at == T0 and len(privacy.committed.log) == 1
    stored = privacy.committed.cases[case.case_id]
    assert stored.details.fields_present() == () and stored.client_address is None
    assert (stored.details.kommune, stored.details.category, stored.details.received_at) == (
        "0265",
        "burglary_home",
        T0,
    )


def deadline(kind: type[Any], case_id: uuid.UUID, deadline_id: uuid.UUID, at: datetime) -> Any:
    common: dict[str, Any] = {"deadline_id": deadline_id, "case_id": case_id, "rule_id": "r", "basis": "guarantee",
              "window_set_by": "law", "title": "t", "category": "burglary_home", "focus_area": "indbrud",
              "started_at": T0, "due_at": T0 + timedelta(days=1)}  # fmt: skip
    extras: dict[type[Any], dict[str, Any]] = {
        DeadlineStarted: {"window_seconds": 86400, "rules_version": 1},
        DeadlineMet: {"met_at": at, "action": "on_scene", "late": False, "response_seconds": 1.0},
        DeadlineCancelled: {"cancelled_at": at},
        DeadlineBreached: {"breached_at": at},
    }
    return kind(**common, **extras[kind])


async def test_contact_goes_30_days_after_the_last_deadline_ends_the_rest_90_days_after_the_report(
    privacy: FakePrivacyUnitOfWork,
) -> None:
    case, quiet = burglary(), burglary(received_at=T0 + timedelta(hours=1))  # the second: no deadline ever
    privacy.add(case)
    privacy.add(quiet, client_address=None)
    first, second = uuid.uuid4(), uuid.uuid4()
    for d in (first, second):
        await note_deadline(privacy, deadline(DeadlineStarted, case.case_id, d, T0))
    await note_deadline(privacy, deadline(DeadlineMet, case.case_id, first, T0 + timedelta(hours=2)))
    await note_deadline(privacy, deadline(DeadlineBreached, case.case_id, second, T0 + timedelta(days=1)))
    # One deadline breached and still running: its case's contact stays; the other case's goes after 30 days.
    done = await erase_due(privacy, POLICY, T0 + timedelta(days=50), batch_size=10)
    assert (done.contacts, done.reports) == (1, 0)
    assert privacy.committed.cases[quiet.case_id].details.contact == Contact()
    assert privacy.committed.cases[case.case_id].details.contact.phone == "+4520304050"
    await note_deadline(privacy, deadline(DeadlineCancelled, case.case_id, second, T0 + timedelta(days=40)))
    await note_deadline(privacy, deadline(DeadlineBreached, case.case_id, second, T0 + timedelta(days=41)))  # late copy
    assert (await erase_due(privacy, POLICY, T0 + timedelta(days=69), batch_size=10)).contacts == 0
    assert (await erase_due(privacy, POLICY, T0 + timedelta(days=71), batch_size=10)).contacts == 1
    [entry] = [e for e in privacy.committed.log if e.case_id == case.case_id]
    assert (entry.action, entry.person_id, entry.fields) == ("erase", "intake-retention",
                                                             ("contact.name", "contact.phone", "client_address"))  # fmt: skip
    # The whole report goes 90 days after it came, in batches of one here.
    done = await erase_due(privacy, POLICY, T0 + timedelta(days=91), batch_size=1)
    assert done.reports == 2 and all(c.details.fields_present() == () for c in privacy.committed.cases.values())
    assert await erase_due(privacy, POLICY, T0 + timedelta(days=92), batch_size=1) == ErasureRound()  # nothing left


async def test_another_instance_holding_the_lock_makes_a_round_skip_and_old_log_entries_go(
    privacy: FakePrivacyUnitOfWork,
) -> None:
    case = burglary()
    privacy.add(case)
    await read_details(privacy, case.case_id, ANNE, "acute_response", T0)
    privacy.locked_elsewhere = True
    skipped = await erase_due(privacy, POLICY, T0 + timedelta(days=365), batch_size=10)
    assert skipped.skipped and skipped.reports == 0 and case.case_id in privacy.committed.cases
    assert privacy.committed.cases[case.case_id].details.details_erased_at is None
    privacy.locked_elsewhere = False
    async with privacy.transaction() as repo:
        # The contact (no deadline ran) was due after 30 days, the report after 90: the older debt counts.
        assert await repo.overdue_seconds(POLICY, T0 + timedelta(days=365)) == timedelta(days=335).total_seconds()
    assert (await erase_due(privacy, POLICY, T0 + timedelta(days=365), batch_size=10)).reports == 1
    done = await erase_due(privacy, POLICY, T0 + timedelta(days=5 * 365 + 1), batch_size=10)
    # The read of day one goes; the erasure of day 365 (the whole report, its contact with it: one entry naming
    # every field) is kept its five years.
    assert done.log_purged == 1 and [e.action for e in privacy.committed.log] == ["erase"]
    assert {"description", "address", "contact.name", "contact.phone"} <= set(privacy.committed.log[0].fields)


# --- The routes ---------------------------------------------------------------------------------

PEOPLE = {
    "eyJanne.x.y": Person("s-anne", "vc-anne", "Anne Holm", frozenset({"vagtchef"}), roster_id="vc-anne"),
    "eyJgreve.x.y": Person("s-greve", "lb-greve-1", "Greve 1", frozenset({"lokalbetjent"}), "0253", "lb-greve-1"),
    "eyJraad.x.y": Person("s-raad", "raad-0265", "Råd", frozenset({"raadssekretaer"}), "0265"),
    "eyJdpo.x.y": Person("s-dpo", "dpo", "Data Beskytter", frozenset({"databeskyttelse"})),
}


class FakeProvider:
    async def person(self, token: str) -> Person:
        if token not in PEOPLE:
            raise InvalidToken("unknown")
        return PEOPLE[token]


def as_(token_or_key: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_or_key}", **headers}


@pytest.fixture
def app(privacy: FakePrivacyUnitOfWork) -> FastAPI:
    settings = IntakeSettings(rate_limit_per_minute=6000, rate_limit_burst=100)
    built = build_app(settings, clock=ManualClock(T0), rng=random.Random(1), uow=FakeUnitOfWork(), privacy_uow=privacy)
    built.state.oidc = FakeProvider()
    return built


async def call(app: FastAPI, method: str, path: str, **kw: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
        return await client.request(method, path, **kw)


async def test_the_details_route_answers_the_officer_and_refuses_everyone_else(
    app: FastAPI, privacy: FakePrivacyUnitOfWork
) -> None:
    case = burglary()
    privacy.add(case)
    path = f"/v1/cases/{case.case_id}/details"
    ok = await call(app, "GET", path, params={"purpose": "acute_response"}, headers=as_("eyJanne.x.y"))
    assert ok.status_code == 200 and ok.headers["cache-control"] == "no-store"
    assert ok.json()["contact"] == {"name": "Mette", "phone": "+4520304050", "email": None}
    assert ok.json()["logged"] == {"id": 1, "at": "2026-03-01T09:00:00Z", "purpose": "acute_response"}
    console = await call(app, "GET", path, params={"purpose": "followup"},
                         headers=as_("dev-police-key", **{"X-On-Behalf-Of": "vc-bo", "X-Access-Via": "console"}))  # fmt: skip
    assert console.status_code == 200
    last = privacy.committed.log[-1]
    assert (last.person_id, last.person_name, last.via, last.via_key) == ("vc-bo", "Vagtchef Bo Lund", "console",
                                                                          "dev-police")  # fmt: skip
    for headers, params, status in [
        (as_("eyJgreve.x.y"), {"purpose": "followup"}, 403),
        (as_("eyJraad.x.y"), {"purpose": "followup"}, 403),
        (as_("eyJdpo.x.y"), {"purpose": "followup"}, 403),
        (as_("dev-council-key"), {"purpose": "followup"}, 403),
        (as_("dev-portal-key"), {"purpose": "followup"}, 403),
        (as_("dev-police-key"), {"purpose": "followup"}, 403),
        (as_("dev-police-key", **{"X-On-Behalf-Of": "lb-greve-1"}), {"purpose": "followup"}, 403),
        (as_("dev-police-key", **{"X-On-Behalf-Of": "Robert'); DROP TABLE"}), {"purpose": "followup"}, 422),
        (as_("eyJanne.x.y", **{"X-On-Behalf-Of": "vc-bo"}), {"purpose": "followup"}, 422),
        (as_("eyJanne.x.y", **{"X-Access-Via": "telepathy"}), {"purpose": "followup"}, 422),
        (as_("eyJanne.x.y"), {}, 422),
        (as_("eyJanne.x.y"), {"purpose": "curiosity"}, 422),
    ]:
        refused = await call(app, "GET", path, params=params, headers=headers)
        assert refused.status_code == status, (headers, params, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
    assert len(privacy.committed.log) == 2


async def test_erase_and_access_log_routes_are_for_the_data_protection_person_only(
    app: FastAPI, privacy: FakePrivacyUnitOfWork
) -> None:
    case = burglary()
    privacy.add(case)
    erase, log = f"/v1/cases/{case.case_id}/erase", f"/v1/cases/{case.case_id}/access-log"
    assert (await call(app, "POST", erase, json={"reason": "asked"}, headers=as_("eyJanne.x.y"))).status_code == 403
    assert (await call(app, "GET", log, headers=as_("dev-police-key"))).status_code == 403
    not_json = await call(app, "POST", erase, content=b"reason=asked", headers=as_("eyJdpo.x.y",
                          **{"Content-Type": "application/x-www-form-urlencoded"}))  # fmt: skip
    assert not_json.status_code == 415
    for body, field in ((b"{", "body"), (b"{}", "reason"), (b'{"reason": "\\u0000\\u0000\\u0000"}', "reason")):
        bad = await call(app, "POST", erase, content=body, headers=as_("eyJdpo.x.y"))
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == field, bad.text
    done = await call(app, "POST", erase, json={"reason": " Borgerens anmodning "}, headers=as_("eyJdpo.x.y"))
    assert done.status_code == 200 and done.json()["already_erased"] is False
    gone = await call(app, "GET", f"/v1/cases/{case.case_id}/details", params={"purpose": "followup"},
                      headers=as_("eyJanne.x.y"))  # fmt: skip
    assert gone.status_code == 410 and gone.json()["erased_at"] == T0.isoformat()
    assert "2026-03-01" in gone.json()["detail"] and gone.headers["cache-control"] == "no-store"
    page = await call(app, "GET", log, headers=as_("eyJdpo.x.y"))
    assert page.status_code == 200 and page.json()["details_erased_at"] == "2026-03-01T09:00:00Z"
    [entry] = page.json()["items"]
    assert (entry["action"], entry["person_id"], entry["reason"]) == ("erase", "s-dpo", "Borgerens anmodning")
    assert (
        await call(app, "GET", f"/v1/cases/{uuid.uuid4()}/access-log", headers=as_("eyJdpo.x.y"))
    ).status_code == 404


async def test_the_job_sets_the_overdue_gauge_each_round_and_keeps_running_through_a_failure(
    privacy: FakePrivacyUnitOfWork,
) -> None:
    case = burglary()
    privacy.add(case)
    clock = ManualClock(T0 + timedelta(days=100))
    job = ErasureJob(privacy, POLICY, clock, interval=0.01, batch_size=10)
    done = await job.run_once()
    # Both were due: the whole report goes, its contact with it (one erasure, not two).
    assert (done.contacts, done.reports) == (0, 1) and ERASURE_OVERDUE._value.get() == 0.0
    privacy.add(burglary(received_at=T0))
    privacy.locked_elsewhere = True  # another instance erases: this one still tells how far behind it is
    await job.run_once()
    assert ERASURE_OVERDUE._value.get() == timedelta(days=70).total_seconds()

    rounds: list[str] = []

    async def flaky(now: datetime | None = None) -> ErasureRound:
        rounds.append("round")
        if len(rounds) == 1:
            raise ConnectionError("Postgres away")
        if len(rounds) == 3:
            raise asyncio.CancelledError
        return ErasureRound()

    job.run_once = flaky  # type: ignore[method-assign]
    with pytest.raises(asyncio.CancelledError):
        await job.run()
    assert len(rounds) == 3  # the failed round did not end the job
