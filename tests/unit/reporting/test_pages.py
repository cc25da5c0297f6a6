"""The council pages (/raad/) and the public page (/offentlig/) on the in-memory read model, with a stand-in for
the sign-in (tests/integration/reporting/test_pages.py signs in through the real identity provider).

Who reads what, what the URL chooses, the downloads, and the headers of every HTML answer."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from services.reporting import handlers
from services.reporting.bootstrap import build_app
from services.reporting.domain.periods import Period
from services.reporting.domain.report import Scope
from services.reporting.settings import ReportingSettings
from shared.clock import ManualClock
from shared.oidc import Person
from shared.websession import WebSession
from tests.support.quarter import GREVE, ROSKILDE, council_quarter
from tests.unit.reporting.fakes import FakeReadModel
from tests.unit.reporting.test_headers import policy

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
SECRETARY = Person("sub-r", "raad-0265", "Rådssekretær Roskilde", frozenset({"raadssekretaer"}), kommune="0265")
KREDSRAAD = Person("sub-k", "kredsraad", "Rådssekretær Kredsrådet", frozenset({"raadssekretaer"}), kommune="kreds")
OFFICER = Person("sub-v", "vc-anne", "Anne Holm", frozenset({"vagtchef"}), roster_id="vc-anne")
OPS = Person("sub-o", "ops", "Drift Vagthavende", frozenset({"drift"}))
SIGN_IN = "https://login.politi.example/realms/mvsj/protocol/openid-connect/auth?state=x"


class SignedIn:
    """shared.websession.WebSessions as the pages use it: this person is signed in (None: nobody)."""

    def __init__(self, person: Person | None) -> None:
        self.person = person

    async def current(self, request: Request) -> WebSession | None:
        if self.person is None:
            return None
        return WebSession(self.person, csrf="csrf-token", expires_at=NOW, id_sha256="0" * 64)

    async def sign_in_redirect(self, request: Request) -> Response:
        return RedirectResponse(SIGN_IN, status_code=303)


@pytest.fixture(scope="module")
async def read_model() -> FakeReadModel:
    model = FakeReadModel()
    for event in council_quarter().events:
        await handlers.handle(model, event.meta, event.payload())
    return model


@pytest.fixture(scope="module")
def app(read_model: FakeReadModel) -> FastAPI:
    built = build_app(ReportingSettings(environment="development"), clock=ManualClock(NOW))
    built.state.reports = read_model
    return built


@pytest.fixture
async def as_person(app: FastAPI) -> AsyncIterator[Any]:
    clients: list[httpx.AsyncClient] = []

    def client(person: Person | None) -> httpx.AsyncClient:
        app.state.web_sessions = SignedIn(person)
        made = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://reporting")
        clients.append(made)
        return made

    yield client
    for made in clients:
        await made.aclose()


async def test_nobody_signed_in_is_sent_to_the_identity_provider_from_every_council_page(as_person: Any) -> None:
    anonymous = as_person(None)
    for path in ("/raad/", "/raad", "/raad/rapport?scope=0265&period=2026-Q3", "/raad/rapport.pdf?scope=kreds&period=2026",
                 "/raad/rapport.csv?scope=kreds&period=2026"):  # fmt: skip
        answer = await anonymous.get(path)
        assert (answer.status_code, answer.headers["location"]) == (303, SIGN_IN), path


async def test_a_secretary_lands_on_her_kommunes_last_quarter_and_reads_it_beside_the_previous_and_a_year_earlier(
    as_person: Any,
) -> None:
    client = as_person(SECRETARY)
    landing = await client.get("/raad/")
    assert landing.status_code == 303 and landing.headers["location"] == "/raad/rapport?scope=0265&period=2026-Q3"
    page = await client.get(landing.headers["location"])
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    html = page.text
    assert "Lokalrådet i Roskilde: politiets nøgletal" in html and "3. kvartal 2026" in html
    assert "83,3 % (10 af 12)" in html  # Roskilde's 24-hour guarantee, as the PDF prints it
    # Beside it, as in the PDF: the previous quarter (the June report) and the same quarter a year earlier.
    assert "2. kvartal 2026</th>" in html and "3. kvartal 2025</th>" in html
    assert html.count('<img class="chart"') == 3
    # Her choices are her kommune and the kreds; downloads keep the choice.
    scopes = re.findall(
        r'<option value="([^"]*)"[^>]*>[^<]*</option>', html.split('id="scope"')[1].split("</select>")[0]
    )
    assert scopes == ["kreds", ROSKILDE]
    assert 'href="/raad/rapport.pdf?scope=0265&amp;period=2026-Q3"' in html
    assert '<option value="2026-Q3" selected>' in html and '<option value="2026-Q4">4. kvartal 2026 (i gang)' in html
    assert 'name="csrf" value="csrf-token"' in html  # the sign-out form carries the session's token
    kreds = await client.get("/raad/rapport", params={"scope": "kreds", "period": "2026-Q3"})
    assert kreds.status_code == 200 and "Kredsrådet: politiets nøgletal" in kreds.text


async def test_another_kommunes_report_is_refused_in_every_shape(as_person: Any) -> None:
    client = as_person(SECRETARY)
    for path in ("/raad/rapport", "/raad/rapport.pdf", "/raad/rapport.csv"):
        refused = await client.get(path, params={"scope": GREVE, "period": "2026-Q3"})
        assert refused.status_code == 403, path
        assert "text/html" in refused.headers["content-type"]
        assert "Du har ikke adgang til rådsrapporten for Greve Kommune." in refused.text
        assert "Du kan læse rapporterne for Midt- og Vestsjællands Politi, hele kredsen og Roskilde Kommune." in (
            refused.text)  # fmt: skip
        assert "af 3)" not in refused.text and "Greve: politiets" not in refused.text


async def test_the_kredsraad_and_police_read_every_kommune_and_anyone_else_none(as_person: Any) -> None:
    for person in (KREDSRAAD, OFFICER):
        greve = await as_person(person).get("/raad/rapport", params={"scope": GREVE, "period": "2026-Q3"})
        assert greve.status_code == 200 and "for få sager (2 af 3)" in greve.text, person.username
        assert (await as_person(person).get("/raad/")).headers["location"].startswith("/raad/rapport?scope=kreds&")
    ops = as_person(OPS)
    for path in ("/raad/", "/raad/rapport?scope=kreds&period=2026-Q3", "/raad/rapport.pdf?scope=kreds&period=2026-Q3"):
        refused = await ops.get(path)
        assert refused.status_code == 403 and "ikke adgang til rådsrapporterne" in refused.text, path
        assert "<select" not in refused.text


async def test_a_bad_choice_is_named_in_danish_and_never_echoed(as_person: Any) -> None:
    client = as_person(SECRETARY)
    bad = await client.get("/raad/rapport", params={"scope": "<b>x</b>", "period": "2026-Q5", "focus_area": "nix"})
    assert bad.status_code == 400
    for sentence in ("Vælg hele kredsen eller en af kredsens kommuner.", "Vælg en periode",
                     "Vælg et af indsatsområderne"):  # fmt: skip
        assert sentence in bad.text
    assert "<b>x</b>" not in bad.text and "&lt;b&gt;" not in bad.text and "2026-Q5" not in bad.text


async def test_a_month_a_year_and_a_focus_area_are_chosen_in_the_url(as_person: Any) -> None:
    client = as_person(SECRETARY)
    month = await client.get("/raad/rapport", params={"scope": "265", "period": "2026-08", "focus_area": "indbrud"})
    assert month.status_code == 200 and "august 2026" in month.text and "indsatsområde: Indbrud" in month.text
    assert '<option value="indbrud" selected>' in month.text and '<option value="0265" selected>' in month.text
    assert 'href="/raad/rapport.csv?scope=0265&amp;period=2026-08&amp;focus_area=indbrud"' in month.text
    old = await client.get("/raad/rapport", params={"scope": "kreds", "period": "2019"})
    assert old.status_code == 200 and '<option value="2019" selected>2019</option>' in old.text


async def test_the_downloads_are_the_reports_pdf_and_csv(as_person: Any, read_model: FakeReadModel) -> None:
    client = as_person(SECRETARY)
    query = {"scope": ROSKILDE, "period": "2026-Q3"}
    pdf = await client.get("/raad/rapport.pdf", params=query)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert pdf.headers["content-disposition"] == 'attachment; filename="raadsrapport-0265-2026-Q3.pdf"'
    assert pdf.headers["cache-control"] == "no-store"
    sheet = await client.get("/raad/rapport.csv", params=query)
    rows = list(csv.DictReader(io.StringIO(sheet.text.lstrip("\ufeff"))))
    guarantees = next(r for r in rows if r["afsnit"] == "i_alt" and r["nøgletal"] == "garantier_overholdt")
    assert (guarantees["tæller"], guarantees["nævner"], guarantees["procent"]) == ("10", "12", "83.3")
    report = await handlers.council_report(read_model, scope=Scope(ROSKILDE), period=Period.parse("2026-Q3"),
                                           focus_area=None, threshold=10, now=NOW)  # fmt: skip
    assert report.current.guarantees.numerator == 10


async def test_every_page_carries_the_security_headers_and_runs_no_inline_code(as_person: Any) -> None:
    client = as_person(SECRETARY)
    answers = {
        "page": await client.get("/raad/rapport?scope=0265&period=2026-Q3"),
        "refused": await client.get("/raad/rapport?scope=0253&period=2026-Q3"),
        "bad": await client.get("/raad/rapport?scope=x&period=y"),
        "public": await client.get("/offentlig/politigarantier"),
        "signed out": await client.get("/auth/logget-ud"),
    }
    for name, answer in answers.items():
        assert answer.headers["content-type"].startswith("text/html"), name
        assert answer.headers["x-content-type-options"] == "nosniff", name
        assert answer.headers["x-frame-options"] == "DENY", name
        assert answer.headers["referrer-policy"] == "same-origin", name
        csp = policy(answer)
        assert (csp["default-src"], csp["frame-ancestors"], csp["style-src"]) == ("'none'", "'none'", "'self'"), name
        assert "script-src" not in csp and "unsafe-inline" not in answer.headers["content-security-policy"], name
        assert "<script" not in answer.text and " style=" not in answer.text and "<style" not in answer.text, name
        if name != "signed out":  # the shared sign-in pages keep their own, stricter policy
            assert csp["img-src"] == "'self' data:", name  # the charts
            assert csp["form-action"] == "'self' http://127.0.0.1:8180", name  # sign-out goes on to the provider
    sheet = await client.get("/static/pages.css")
    assert sheet.headers["content-type"].startswith("text/css") and sheet.headers["x-content-type-options"] == "nosniff"


async def test_the_public_page_needs_no_sign_in_and_shows_a_quarter_at_a_time(as_person: Any) -> None:
    anyone = as_person(None)
    latest = await anyone.get("/offentlig/politigarantier")
    assert latest.status_code == 200 and latest.headers["cache-control"] == "public, max-age=300"
    text = " ".join(latest.text.split())
    assert '<caption id="tabel">3. kvartal 2026: garantier holdt inden for fristen' in text
    assert "83,3 % (10 af 12)" in text
    running = await anyone.get("/offentlig/politigarantier", params={"kvartal": "2026-Q4"})
    assert running.status_code == 200 and "4. kvartal 2026 (foreløbige tal: kvartalet er ikke slut)" in " ".join(
        running.text.split()
    )
    assert "83,3 %" not in running.text
    for asked in ("2019-Q1", "<b>x</b>", "2026-08"):
        unknown = await anyone.get("/offentlig/politigarantier", params={"kvartal": asked})
        assert unknown.status_code == 404 and "Der er ingen tal for det kvartal." in unknown.text, asked
        assert asked not in unknown.text and "&lt;b&gt;" not in unknown.text
