"""The council pages and the public page against reporting as a real process, on real Kafka and Postgres, with
people signing in through the real identity provider (Keycloak, realm mvsj).

One reporting process for the module, its read model fed once with 2026-Q3 of the district
(tests/support/quarter.py `council_quarter`): Roskilde's 24-hour guarantee 10 of 12, Greve's 2 of 3
(too few for a figure), the kreds 13 of 16 (81,2 %: babel rounds half to even, as Python does). In
Debian's headless Chromium a Roskilde council secretary signs in at the provider's own login form,
picks 2026-Q3, reads the kreds and Roskilde, is refused Greve, and downloads a PDF that holds the page's
figures and passes veraPDF's PDF/UA-1 check; axe-core finds no violation (WCAG 2.1 AA) on the pages she sees
nor on the public page. By HTTP: the public figures equal the council report's, and people's access tokens on
the API reach what their pages reach.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
from collections.abc import AsyncIterator
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, expect

from demo.identity import dev_password, loopback_client, officer_token
from demo.identity import sign_in as provider_sign_in
from tests.conftest import namespace
from tests.integration.reporting.conftest import COUNCIL, Bus, reporting_env
from tests.support.axe import assert_accessible
from tests.support.browser import danish_page, needs_chromium
from tests.support.identity import issuer
from tests.support.quarter import GREVE, ROSKILDE, council_quarter
from tests.support.services import ServiceProcess, running_processes
from tests.support.verapdf import pdf_ua_failures
from tests.support.waiting import eventually

ISSUER = issuer()
Q3 = "2026-Q3"


@pytest.fixture(scope="module")
async def reporting(kafka: str, database_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """reporting's URL, its read model holding the quarter (every event applied); one for the module."""
    async with namespace(kafka, database_url) as space:
        service = ServiceProcess("reporting", reporting_env(space), tmp_path_factory.mktemp("pages") / "reporting.log")
        bus = Bus(space)
        try:
            with running_processes(service, ready_within=60):
                await bus.publish(council_quarter().events)
                async with httpx.AsyncClient(base_url=service.url, headers=COUNCIL, timeout=30) as api:

                    async def applied() -> bool:
                        now = (await api.get(f"/v1/council-reports/kreds/{Q3}.json")).json()["current"]
                        guarantees = now["compliance"]["guarantees"]
                        return (now["reports"], guarantees["denominator"], now["alerts"]["raised"],
                                now["police_actions"].get("on_scene")) == (17, 16, 1, 12)  # fmt: skip

                    await eventually(applied, timeout=60, what="the quarter's events in the read model")
                yield service.url
                assert "Traceback" not in service.tail(5000), service.tail(60)
        finally:
            await bus.producer.stop()


def pdf_text(path: Path) -> str:
    """The PDF's text as pdftotext (poppler-utils) lays it out: a table's row on one line."""
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True,
                          timeout=30).stdout  # fmt: skip


@needs_chromium
async def test_a_roskilde_secretary_reads_her_quarter_and_the_kreds_not_greve_and_her_pdf_holds_the_page(
    reporting: str, browser: Browser, tmp_path: Path
) -> None:
    context, page, errors = await danish_page(browser, accept_downloads=True)

    # Not signed in: the council pages send the browser to the provider's own login page, and back to her report.
    await page.goto(reporting + "/raad/")
    assert page.url.startswith(ISSUER + "/protocol/openid-connect/auth?"), page.url
    await page.locator("#username").fill("raad-0265")
    await page.locator("#password").fill(dev_password("raad-0265"))
    await page.locator("#kc-login").click()
    await page.wait_for_url(re.compile(re.escape(reporting) + r"/raad/rapport\?scope=0265&period=\d{4}-Q[1-4]$"))
    await expect(page.locator("#person")).to_have_text("Rådssekretær Roskilde")
    (cookie,) = [c for c in await context.cookies() if c["name"] == "reporting_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and "raad" not in cookie["value"]

    # The kreds in 2026-Q3, chosen in the form: the choice lands in the URL.
    await page.get_by_label("Område", exact=True).select_option("kreds")
    await page.get_by_label("Periode").select_option(Q3)
    await page.get_by_role("button", name="Vis rapport").click()
    await page.wait_for_url(f"{reporting}/raad/rapport?scope=kreds&period={Q3}&focus_area=")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Kredsrådet: politiets nøgletal")
    summary = page.locator("table.keys tr", has_text="Politigarantier (lov) overholdt")
    await expect(summary.locator("td").nth(1)).to_have_text("81,2 % (13 af 16)")

    # Her own kommune, the same quarter: Roskilde's figures beside the previous quarter and a year earlier.
    await page.get_by_label("Område", exact=True).select_option(ROSKILDE)
    await page.get_by_role("button", name="Vis rapport").click()
    await page.wait_for_url(f"{reporting}/raad/rapport?scope={ROSKILDE}&period={Q3}&focus_area=")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Lokalrådet i Roskilde: politiets nøgletal")
    await expect(summary.locator("td").nth(1)).to_have_text("83,3 % (10 af 12)")
    await expect(page.locator("table.keys th")).to_have_text(["Nøgletal", "3. kvartal 2026", "2. kvartal 2026",
                                                              "3. kvartal 2025"])  # fmt: skip
    await expect(page.locator("img.chart")).to_have_count(3)
    # The summary row by row: its label's first word, and its figures for this period, the previous one, a year
    # earlier (spaces left out: pdftotext keeps a row on one line, but not every space in it: "1 / 0" is "1/0").
    shown = []
    for row in await page.locator("table.keys tr").filter(has=page.locator("td.n")).all():
        label = (await row.locator("td").first.inner_text()).split()[0]
        shown.append((label, "".join("".join(await row.locator("td.n").all_inner_texts()).split())))
    assert len(shown) == 15 and ("Politigarantier", "83,3%(10af12)ingenafsluttedeingenafsluttede") in shown
    await assert_accessible(page, "the council page")  # WCAG 2.1 AA (webtilgængelighedsloven), charts and all

    # The PDF she downloads holds the page's figures.
    async with page.expect_download() as download_info:
        await page.get_by_role("link", name="PDF").click()
    download = await download_info.value
    assert download.suggested_filename == f"raadsrapport-{ROSKILDE}-{Q3}.pdf"
    await download.save_as(tmp_path / "report.pdf")
    text = pdf_text(tmp_path / "report.pdf")
    assert "Lokalrådet i Roskilde: politiets nøgletal" in text and "83,3 % (10 af 12)" in text
    lines = ["".join(line.split()) for line in text.splitlines()]
    missing = [row for row in shown if not any(line.startswith(row[0]) and line.endswith(row[1]) for line in lines)]
    assert not missing, missing
    # Tagged for a screen reader: veraPDF's PDF/UA-1 check passes (webtilgængelighedsloven covers documents too).
    assert pdf_ua_failures(tmp_path / "report.pdf") == []

    # Greve's report is not hers: neither the page nor the PDF.
    refused = await page.goto(f"{reporting}/raad/rapport?scope={GREVE}&period={Q3}")
    assert refused is not None and refused.status == 403
    await expect(page.get_by_role("alert")).to_contain_text("Du har ikke adgang til rådsrapporten for Greve Kommune.")
    await expect(page.locator("table.keys")).to_have_count(0)
    await assert_accessible(page, "the council page's refusal")
    pdf = await context.request.get(f"{reporting}/raad/rapport.pdf?scope={GREVE}&period={Q3}")
    assert pdf.status == 403 and not (await pdf.body()).startswith(b"%PDF")

    # The public page (no sign-in), an ended quarter with a cell of too few cases, and the running one.
    for quarter in (Q3, None):
        await page.goto(f"{reporting}/offentlig/politigarantier" + (f"?kvartal={quarter}" if quarter else ""))
        await expect(page.get_by_role("heading", level=1)).to_be_visible()
        await assert_accessible(page, "the public page")
    assert errors == []
    await context.close()


def signed_in(base: str, username: str) -> httpx.Client:
    """An HTTP client signed in to the council pages through the provider's login form, as a browser is."""
    client = loopback_client(base_url=base)
    back = provider_sign_in(client, base + "/raad/", username)
    assert back.is_redirect and back.headers["location"].startswith(base + "/auth/callback?"), back.headers
    landed = client.get(back.headers["location"])
    assert landed.status_code == 303 and landed.headers["location"] == "/raad/", landed.text[:300]
    return client


def test_the_kredsraad_reads_every_kommune_and_an_ops_engineer_no_report(reporting: str) -> None:
    with contextlib.closing(signed_in(reporting, "kredsraad")) as client:
        greve = client.get("/raad/rapport", params={"scope": GREVE, "period": Q3})
        assert greve.status_code == 200 and "Lokalrådet i Greve: politiets nøgletal" in greve.text
        assert "for få sager (2 af 3)" in greve.text  # councils see the counts beside the words
        assert client.get("/raad/").headers["location"].startswith("/raad/rapport?scope=kreds&")
    with contextlib.closing(signed_in(reporting, "ops")) as client:
        refused = client.get("/raad/rapport", params={"scope": "kreds", "period": Q3})
        assert refused.status_code == 403 and "ikke adgang til rådsrapporterne" in refused.text


@cache
def bearer(username: str) -> dict[str, str]:
    """The person's access token from the provider (valid 5 minutes: enough for one test module)."""
    return {"Authorization": f"Bearer {officer_token(issuer(), username)['access_token']}"}


def test_a_council_persons_token_reads_her_kommune_and_the_kreds_on_the_api_and_a_key_as_before(
    reporting: str,
) -> None:
    with httpx.Client(base_url=reporting, timeout=30) as api:
        secretary = bearer("raad-0265")
        for path in (f"/v1/kpis?scope={ROSKILDE}&period={Q3}", f"/v1/kpis?scope=kreds&period={Q3}",
                     f"/v1/council-reports/{ROSKILDE}/{Q3}.csv"):  # fmt: skip
            assert api.get(path, headers=secretary).status_code == 200, path
        for path in (f"/v1/kpis?scope={GREVE}&period={Q3}", f"/v1/council-reports/{GREVE}/{Q3}.pdf",
                     f"/v1/council-reports/253/{Q3}.json"):  # fmt: skip
            refused = api.get(path, headers=secretary)
            assert refused.status_code == 403 and refused.headers["content-type"] == "application/problem+json", path
            assert "raad-0265 may read these scopes only: kreds, 0265" in refused.json()["detail"]
        for who in (bearer("vc-anne"), bearer("kredsraad"), COUNCIL):
            assert api.get(f"/v1/kpis?scope={GREVE}&period={Q3}", headers=who).status_code == 200


def _rule(figures: dict[str, Any], rule_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(r for r in figures["compliance"]["rules"] if r["rule_id"] == rule_id)
    return found


def test_the_public_figures_are_the_council_reports_and_a_cell_of_three_says_too_few(reporting: str) -> None:
    with httpx.Client(base_url=reporting, timeout=30) as client:
        data = client.get("/offentlig/politigarantier.json").json()
        sheet = client.get("/offentlig/politigarantier.csv")
        page = client.get("/offentlig/politigarantier", params={"kvartal": Q3})
        reports = {k: client.get(f"/v1/council-reports/{k}/{Q3}.json", headers=COUNCIL).json()["current"]
                   for k in (ROSKILDE, GREVE)}  # fmt: skip
    rows = {(r["kommunekode"], r["garanti"]): r for r in data["raekker"] if r["kvartal"] == Q3}
    assert {g["id"] for g in data["garantier"]} == {"burglary_home_24h", "violence_acute"}
    assert len(rows) == 10 * 2 and not any(r["foreloebig"] for r in rows.values())
    compared = 0
    for (kommune, rule_id), row in rows.items():
        rules = {r["rule_id"]: r for r in reports[kommune]["compliance"]["rules"]} if kommune in reports else {}
        if rule_id not in rules:  # no deadline of this guarantee started here
            assert (row["overholdt"], row["afsluttede"], row["for_faa_sager"]) == (0, 0, False), (kommune, rule_id)
            continue
        council = rules[rule_id]["compliance"]
        if council["suppressed"]:  # the council sees "for få sager (2 af 3)"; the public no count at all
            assert row == row | {"overholdt": None, "afsluttede": None, "procent": None, "for_faa_sager": True}
        else:
            assert (row["overholdt"], row["afsluttede"], row["procent"]) == (
                council["numerator"], council["denominator"], council["percent"])  # fmt: skip
            compared += 1
    assert compared == 1 and rows[(ROSKILDE, "burglary_home_24h")]["procent"] == 83.3
    assert _rule(reports[GREVE], "burglary_home_24h")["concluded"] == 3
    # The page shows the same: Roskilde's figure as the council report words it, Greve's cell of 3 as too few.
    assert page.status_code == 200 and page.headers["cache-control"].startswith("public")
    greve_row = page.text.split('<th scope="row">Greve</th>', 1)[1].split("</tr>", 1)[0]
    assert re.findall(r"<td[^>]*>([^<]*)</td>", greve_row) == ["for få sager", "for få sager"]
    assert "83,3 % (10 af 12)" in page.text and "(2 af 3)" not in page.text
    # The CSV is the JSON's rows with the licence beside each.
    assert sheet.headers["content-type"].startswith("text/csv") and 'rel="license"' in sheet.headers["link"]
    lines = sheet.text.lstrip("\ufeff").splitlines()
    assert (
        lines[0] == "kvartal,foreloebig,kommunekode,kommune,garanti,overholdt,afsluttede,procent,for_faa_sager,licens"
    )
    assert len(lines) == 1 + len(data["raekker"])
    assert f"{Q3},false,0265,Roskilde,burglary_home_24h,10,12,83.3,false,Creative Commons" in sheet.text
    assert f"{Q3},false,0253,Greve,burglary_home_24h,,,,true,Creative Commons" in sheet.text
