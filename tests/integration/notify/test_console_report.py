"""Vis anmeldelse: the console reads an alert's report from intake as the signed-in officer, for the alert's purpose.

notify and intake run as real processes on real Kafka, Postgres and Keycloak (realm mvsj), each in the test's
own schema, topics and port. A citizen's report is submitted to intake; a deadline event for that case raises
the alert. In Debian's headless Chromium the vagtchef opens the report from an acute alert and sees the
address, the page says the look-up is logged, and intake's access log (read by the data-protection user)
names him, with purpose acute_response and via console. By HTTP: a follow-up alert is read for `followup`;
another kommune's lokalbetjent, a request without the page's token, an erased report and intake down each
get a Danish answer. Nothing of the report reaches notify's log, tables or alert events.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from playwright.async_api import Browser, expect

from tests.integration.intake.conftest import ADDRESS, DESCRIPTION, EMAIL, NAME, PORTAL, report
from tests.integration.notify.conftest import POLICE, Deadline, TestRoster, Upstream, alert_events, notify_env
from tests.integration.notify.test_console import OFFICER, _csrf, _signed_in, sign_in
from tests.support.axe import assert_accessible
from tests.support.browser import danish_page, needs_chromium
from tests.support.identity import bearer
from tests.support.infra import Namespace
from tests.support.receivers import SmtpSink
from tests.support.services import ServiceProcess, running_processes, service_env
from tests.support.waiting import eventually
from tests.testdata import SECONDS_POLICY_FILE

POSTCODE = "4040"  # Jyllinge: Roskilde (0265)
# The report's personal content: none of it may be in notify's log, tables or events.
MARKERS = (NAME, "20304050", EMAIL, ADDRESS, DESCRIPTION, "Strandvejen", "Gudrun")


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    """The seconds policy, but nothing escalates or reminds while a test looks (a minute)."""
    path = tmp_path / "policy.yaml"
    path.write_text(SECONDS_POLICY_FILE.read_text(encoding="utf-8").replace("PT3S", "PT60S"), encoding="utf-8")
    return path


@pytest.fixture
def intake(ns: Namespace, tmp_path: Path) -> Iterator[ServiceProcess]:
    service = ServiceProcess("intake", service_env(ns, "intake", INTAKE_OUTBOX_POLL_SECONDS="0.5"),
                             tmp_path / "intake.log")  # fmt: skip
    with running_processes(service):
        yield service


@pytest.fixture
def notify(
    ns: Namespace, notify_schema: str, roster: TestRoster, smtp: SmtpSink, policy: Path, intake: ServiceProcess,
    tmp_path: Path,
) -> Iterator[ServiceProcess]:  # fmt: skip
    env = notify_env(ns, roster, smtp) | {"ALERT_POLICY_FILE": str(policy), "NOTIFY_INTAKE_URL": intake.url}
    service = ServiceProcess("notify", env, tmp_path / "notify.log").start()
    try:
        service.wait_ready()
        yield service
    finally:
        service.stop()


async def submitted(intake: ServiceProcess, **over: Any) -> tuple[uuid.UUID, str]:
    """A citizen's burglary report in Roskilde, with contact details: its case id and reference."""
    async with httpx.AsyncClient(base_url=intake.url, timeout=10) as portal:
        answer = await portal.post("/v1/reports", json=report(postcode=POSTCODE, **over),
                                   headers=PORTAL | {"Idempotency-Key": str(uuid.uuid4())})  # fmt: skip
    assert answer.status_code == 202, answer.text
    return uuid.UUID(answer.json()["case_id"]), answer.json()["reference"]


def deadline_of(case_id: uuid.UUID, reference: str, rule: str) -> Deadline:
    dl = Deadline(rule=rule, kommune="0265")
    dl.case_id, dl.reference = case_id, reference
    return dl


async def raised(notify: ServiceProcess, case_id: uuid.UUID, rule: str) -> str:
    """The id of the alert notify raised for the case's deadline of `rule`, once there is one."""
    found = ""

    async def there() -> bool:
        nonlocal found
        items = httpx.get(notify.url + "/v1/alerts", headers=POLICE, timeout=10).json()["items"]
        ids = [a["id"] for a in items if a["case_id"] == str(case_id) and a["rule_id"] == rule]
        found = ids[0] if ids else ""
        return bool(found)

    await eventually(there, timeout=20, what=f"the alert of {rule}")
    return found


async def access_log(intake: ServiceProcess, case_id: uuid.UUID) -> list[dict[str, Any]]:
    """The case's access log as the data-protection person reads it."""
    async with httpx.AsyncClient(base_url=intake.url, timeout=10) as client:
        answer = await client.get(f"/v1/cases/{case_id}/access-log", headers=bearer("dpo"))
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


async def assert_nothing_personal_kept(ns: Namespace, notify: ServiceProcess) -> None:
    """None of the report's content in notify's log, in any row of its tables, or on alerts.v1."""
    logged = notify.log.read_text(encoding="utf-8", errors="replace")
    conn = await asyncpg.connect(ns.database_url)
    try:
        schema = ns.schema("notify")
        tables = await conn.fetch("SELECT table_name FROM information_schema.tables WHERE table_schema = $1"
                                  " AND table_type = 'BASE TABLE'", schema)  # fmt: skip
        assert {"alerts", "web_sessions"} <= {t["table_name"] for t in tables}
        stored = [
            str(r[0]) for t in tables for r in await conn.fetch(f'SELECT t::text FROM "{schema}"."{t["table_name"]}" t')
        ]
    finally:
        await conn.close()
    events = [e.to_bytes().decode() for e in await alert_events(ns, timeout=3)]
    assert stored and events
    for marker in MARKERS:
        assert marker not in logged, f"{marker!r} in notify's log"
        assert not [row for row in stored if marker in row], f"{marker!r} in notify's tables"
        assert not [e for e in events if marker in e], f"{marker!r} on alerts.v1"


@needs_chromium
async def test_the_vagtchef_opens_the_report_of_an_acute_alert_and_the_access_log_names_him(
    notify: ServiceProcess, intake: ServiceProcess, upstream: Upstream, browser: Browser, ns: Namespace
) -> None:
    case_id, reference = await submitted(intake, in_progress=True)
    acute = deadline_of(case_id, reference, "burglary_home_in_progress")
    context, page, errors = await danish_page(browser)
    await sign_in(page, notify.url)
    await expect(page.locator("#live")).to_have_text("Live")
    await upstream.publish(acute.started())  # an acute report: its deadline starts, the vagtchef is alerted

    card = page.locator("tbody.alert", has_text=reference)
    await expect(card).to_be_visible(timeout=20_000)
    await card.get_by_role("button", name=reference, exact=True).click()
    details = card.locator("tr.details")
    await expect(details).to_contain_text("Akut anmeldelse")
    show = details.get_by_role("button", name=f"Vis anmeldelse {reference}")
    await expect(show).to_have_attribute("aria-expanded", "false")
    assert await details.locator(".report").text_content() == ""  # nothing fetched before it is asked for

    # By keyboard: Enter on the button shows the report.
    await show.focus()
    await page.keyboard.press("Enter")
    shown = details.locator(".report")
    await expect(shown).to_be_visible()
    await expect(shown.locator("dd", has_text=ADDRESS)).to_have_text(f"{ADDRESS}, {POSTCODE}")
    await expect(shown.locator("dd", has_text="Gudrun")).to_have_text(DESCRIPTION)
    await expect(shown.locator("dd", has_text=NAME)).to_contain_text(EMAIL)
    await expect(shown.locator(".logged")).to_contain_text("Opslaget er logget: ")
    await expect(shown.locator(".logged")).to_contain_text("formål: akut indsats (acute_response)")
    await expect(details.get_by_role("status")).to_have_text("Anmeldelsen er vist, og opslaget er logget.")
    hide = details.get_by_role("button", name=f"Skjul anmeldelse {reference}")
    await expect(hide).to_have_attribute("aria-expanded", "true")
    await expect(hide).to_be_focused()

    # WCAG 2.1 AA with the report open.
    await assert_accessible(page, "the console with an alert's report open")

    # Intake's access log names the officer, the purpose and the console.
    entries = await access_log(intake, case_id)
    assert [(e["action"], e["person_id"], e["person_name"], e["purpose"], e["via"]) for e in entries] == [
        ("read", OFFICER[0], OFFICER[1], "acute_response", "console")]  # fmt: skip
    assert {"address", "description", "contact.name"} <= set(entries[0]["fields"])

    # The Kvittér beside it works as before; the row changes in place and the report stays open.
    await card.get_by_role("button", name="Kvittér").click()
    await expect(card).to_have_attribute("data-state", "acknowledged")
    await expect(shown.locator("dd", has_text=ADDRESS)).to_be_visible()
    # Hidden, the content leaves the page; shown again, it is read (and logged) again.
    await hide.click()
    await expect(shown).to_be_hidden()
    assert await shown.text_content() == ""
    await show.click()
    await expect(shown.locator("dd", has_text=ADDRESS)).to_be_visible()
    assert len(await access_log(intake, case_id)) == 2
    assert errors == []
    await context.close()

    await assert_nothing_personal_kept(ns, notify)


async def test_each_officer_reads_for_the_alerts_purpose_within_reach_and_refusals_are_danish(
    notify: ServiceProcess, intake: ServiceProcess, upstream: Upstream, ns: Namespace
) -> None:
    case_id, reference = await submitted(intake)
    guarantee = deadline_of(case_id, reference, "burglary_home_24h")
    followup = deadline_of(case_id, reference, "tryghedsopfoelgning_burglary")
    await upstream.publish(guarantee.breached(), followup.breached())
    guarantee_alert = await raised(notify, case_id, "burglary_home_24h")
    followup_alert = await raised(notify, case_id, "tryghedsopfoelgning_burglary")

    local = _signed_in(notify.url, "lb-roskilde-1")
    other = _signed_in(notify.url, "lb-greve-1")
    anne = _signed_in(notify.url)
    try:
        token = {"X-CSRF-Token": _csrf(local)}
        # His kommune's follow-up: read for followup; the guarantee's alert (on the scene in 24 h) for acute_response.
        read = local.get(f"/console/alerts/{followup_alert}/report", headers=token)
        assert read.status_code == 200, read.text
        assert read.headers["cache-control"] == "no-store"
        body = read.json()
        assert (body["address"], body["postcode"], body["description"]) == (ADDRESS, POSTCODE, DESCRIPTION)
        assert body["logged"]["purpose"] == "followup" and body["logged"]["purpose_da"] == (
            "tryghedsopfølgning (followup)")  # fmt: skip
        assert local.get(f"/console/alerts/{guarantee_alert}/report", headers=token).json()["logged"]["purpose"] == (
            "acute_response")  # fmt: skip
        entries = await access_log(intake, case_id)
        assert [(e["person_id"], e["purpose"], e["via"]) for e in entries] == [
            ("lb-roskilde-1", "followup", "console"), ("lb-roskilde-1", "acute_response", "console")]  # fmt: skip

        # Without the page's token (a link from another site, say) nothing is read, nothing logged.
        assert local.get(f"/console/alerts/{followup_alert}/report").status_code == 403
        # Another kommune's lokalbetjent: refused in Danish, and intake is not even asked.
        refused = other.get(f"/console/alerts/{followup_alert}/report", headers={"X-CSRF-Token": _csrf(other)})
        assert refused.status_code == 403 and refused.json()["detail"] == "Alarmen hører til en anden kommune end din."
        missing = local.get(f"/console/alerts/{uuid.uuid4()}/report", headers=token)
        assert missing.status_code == 404 and missing.json()["detail"] == "Alarmen findes ikke."
        with httpx.Client(base_url=notify.url, timeout=10) as anonymous:
            assert anonymous.get(f"/console/alerts/{followup_alert}/report").status_code == 401
        assert len(await access_log(intake, case_id)) == 2

        # Erased on request: the officer is told so, with the date.
        async with httpx.AsyncClient(base_url=intake.url, timeout=10) as dpo:
            erased = await dpo.post(f"/v1/cases/{case_id}/erase", json={"reason": "Borgerens anmodning, j.nr. T-1"},
                                    headers=bearer("dpo"))  # fmt: skip
        assert erased.status_code == 200, erased.text
        gone = anne.get(f"/console/alerts/{guarantee_alert}/report", headers={"X-CSRF-Token": _csrf(anne)})
        assert gone.status_code == 410, gone.text
        assert gone.json()["detail"].startswith("Anmeldelsens personoplysninger er slettet den ")

        # Intake down: a Danish "try again", not a stack trace.
        intake.stop()
        down = anne.get(f"/console/alerts/{guarantee_alert}/report", headers={"X-CSRF-Token": _csrf(anne)})
        assert down.status_code == 503 and "svarer ikke" in down.json()["detail"]
    finally:
        for client in (local, other, anne):
            client.close()
    await assert_nothing_personal_kept(ns, notify)
