"""The lokalbetjent's follow-up list against intake, deadlines and notify as real processes, with real sign-in.

A burglary in Roskilde is reported to intake; deadlines opens its tryghedsopfølgning; lb-roskilde-1
signs in through the identity provider and finds it on /console/opfoelgning, with nothing personal
on the page. "Vis telefon" shows the victim's name and phone, and intake's access log (read by the
data-protection role) names him, for the purpose `followup`, via the console. "Udført", even
clicked twice, records `followup_done` once, in his name, and deadlines meets the deadline
(deadlines.v1 `met`); the row leaves the list. A lokalbetjent of Greve neither sees it nor may act on
it; a vagtchef sees every kommune's list, or one kommune's; a council secretary gets no list. In Chromium: the same by keyboard, and axe finds nothing.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from playwright.async_api import Browser, expect

from demo.identity import dev_password, loopback_client
from demo.identity import sign_in as provider_sign_in
from shared.events import CloudEvent
from shared.events import deadlines as d
from tests.integration.notify.conftest import POLICE, TestRoster, notify_env
from tests.support.axe import assert_accessible
from tests.support.browser import danish_page, needs_chromium
from tests.support.identity import bearer
from tests.support.infra import Namespace
from tests.support.kafka_read import read_all
from tests.support.receivers import SmtpSink
from tests.support.services import PORTAL_LIKE_HOOKS, ServiceProcess, running_processes, service_env
from tests.support.waiting import eventually

PORTAL = {"Authorization": "Bearer dev-portal-key"}
RULE = "tryghedsopfoelgning_burglary"
LIST = "/console/opfoelgning"
VICTIM = ("Test Borger", "+4522334455")


@pytest.fixture
def system(ns: Namespace, roster: TestRoster, smtp: SmtpSink, tmp_path: Path) -> Iterator[dict[str, ServiceProcess]]:
    """intake and deadlines (the real rules: a follow-up is due in 14 days) and notify calling them as the officer."""
    intake = ServiceProcess("intake", service_env(ns, "intake", INTAKE_OUTBOX_POLL_SECONDS="0.5"),
                            tmp_path / "intake.log")  # fmt: skip
    deadlines = ServiceProcess("deadlines", service_env(ns, "deadlines"), tmp_path / "deadlines.log")
    notify = ServiceProcess("notify", notify_env(ns, roster, smtp) | {"NOTIFY_INTAKE_URL": intake.url,
                            "NOTIFY_DEADLINES_URL": deadlines.url}, tmp_path / "notify.log")  # fmt: skip
    with running_processes(intake, deadlines, notify):
        yield {"intake": intake, "deadlines": deadlines, "notify": notify}


async def open_followup(system: dict[str, ServiceProcess], kommune: str = "0265") -> tuple[str, dict[str, Any]]:
    """A burglary reported and visited (intake wants the patrol's visit before the follow-up): the case id
    and its open tryghedsopfølgning deadline, once deadlines has it."""
    intake, deadlines = system["intake"].url, system["deadlines"].url
    report = {"category": "burglary_home", "description": "Kom hjem og fandt terrassedøren brudt op.",
              "in_progress": False, "kommune": kommune, "address": "Bygaden 3",
              "contact": {"name": VICTIM[0], "phone": VICTIM[1]}}  # fmt: skip
    async with httpx.AsyncClient(timeout=10, event_hooks=PORTAL_LIKE_HOOKS) as client:
        accepted = await client.post(f"{intake}/v1/reports", json=report, headers=PORTAL)
        assert accepted.status_code == 202, accepted.text
        case_id = accepted.json()["case_id"]
        visit = {"action": "on_scene", "occurred_at": datetime.now(UTC).isoformat()}
        arrived = await client.post(f"{intake}/v1/cases/{case_id}/actions", json=visit, headers=POLICE)
        assert arrived.status_code == 202, arrived.text
        found: dict[str, Any] = {}

        async def opened() -> bool:
            page = await client.get(f"{deadlines}/v1/deadlines", params={"rule": RULE, "state": "open"},
                                    headers=POLICE)  # fmt: skip
            found.update(next((x for x in page.json()["items"] if x["case_id"] == case_id), {}))
            return bool(found)

        await eventually(opened, timeout=30, what="the tryghedsopfølgning opened by deadlines")
    return case_id, found


def signed_in(base: str, username: str) -> httpx.Client:
    """An HTTP client signed in to notify's pages through the provider's login form, as a browser is."""
    client = loopback_client(base_url=base)
    back = provider_sign_in(client, base + LIST, username)
    assert back.is_redirect and back.headers["location"].startswith(base + "/auth/callback?"), back.headers
    landed = client.get(back.headers["location"])
    assert landed.status_code == 303 and landed.headers["location"] == LIST, landed.text[:300]
    return client


def csrf_of(page: str) -> str:
    return page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]


async def met_events(ns: Namespace, deadline_id: str) -> list[CloudEvent]:
    records = await read_all(ns.kafka, ns.topics.deadlines, timeout=3.0, idle=0.7)
    events = [CloudEvent.from_bytes(r.value) for r in records]
    return [e for e in events if e.type == d.MET and str(e.data.get("deadline_id")) == deadline_id]


async def test_the_list_shows_the_victim_on_demand_and_udfoert_meets_the_followup(
    system: dict[str, ServiceProcess], ns: Namespace
) -> None:
    notify, intake, deadlines = system["notify"].url, system["intake"].url, system["deadlines"].url
    case_id, deadline = await open_followup(system)
    reference, deadline_id = deadline["reference"], deadline["id"]

    officer = signed_in(notify, "lb-roskilde-1")
    greve = signed_in(notify, "lb-greve-1")
    try:
        page = officer.get(LIST)
        assert page.status_code == 200 and reference in page.text and "Roskilde" in page.text
        assert f'data-deadline="{deadline_id}"' in page.text
        assert VICTIM[0] not in page.text and VICTIM[1] not in page.text  # nothing personal until asked
        assert page.headers["cache-control"] == "no-store" and page.headers["x-frame-options"] == "DENY"
        assert page.headers["content-security-policy"].startswith("default-src 'none'")
        token = csrf_of(page.text)

        # Another kommune's lokalbetjent: not on his list, and neither the phone nor the action for him.
        other = greve.get(LIST)
        assert other.status_code == 200 and reference not in other.text and "Greve" in other.text
        greve_csrf = {"X-CSRF-Token": csrf_of(other.text)}
        for what in ("telefon", "udfoert"):
            refused = greve.post(f"{LIST}/{deadline_id}/{what}", headers=greve_csrf)
            assert refused.status_code == 403 and "anden kommune" in refused.json()["detail"], refused.text
        # Without the session's CSRF token nothing is read or recorded.
        assert officer.post(f"{LIST}/{deadline_id}/telefon").status_code == 403
        assert officer.post(f"{LIST}/{deadline_id}/udfoert", headers={"X-CSRF-Token": "x" + token}).status_code == 403

        phone = officer.post(f"{LIST}/{deadline_id}/telefon", headers={"X-CSRF-Token": token})
        assert phone.status_code == 200, phone.text
        assert phone.headers["cache-control"] == "no-store"
        shown = phone.json()
        assert (shown["name"], shown["phone"]) == VICTIM and "logget i dit navn" in shown["logged"]

        async with httpx.AsyncClient(timeout=10) as client:
            log = (await client.get(f"{intake}/v1/cases/{case_id}/access-log", headers=bearer("dpo"))).json()
        reads = [e for e in log["items"] if e["action"] == "read"]
        # Only the officer who asked: the Greve officer's refused attempts never reached intake's details.
        assert [(e["person_id"], e["purpose"], e["via"]) for e in reads] == [("lb-roskilde-1", "followup", "console")]
        assert "contact.phone" in reads[0]["fields"] and reads[0]["person_name"] == "Lokalbetjent Roskilde 1"

        # A double click: both answered "registreret", recorded once, in his name.
        first, second = await asyncio.gather(*(asyncio.to_thread(officer.post, f"{LIST}/{deadline_id}/udfoert",
                                               headers={"X-CSRF-Token": token}) for _ in range(2)))  # fmt: skip
        assert [first.status_code, second.status_code] == [200, 200], (first.text, second.text)
        assert {first.json()["state"], second.json()["state"]} == {"registreret"}
        conn = await asyncpg.connect(ns.database_url)
        try:
            recorded = await conn.fetch(
                f'SELECT action, recorded_by FROM "{ns.schema("intake")}".case_actions WHERE case_id = $1'
                " ORDER BY seq", uuid.UUID(case_id),
            )  # fmt: skip
        finally:
            await conn.close()
        assert [(r["action"], r["recorded_by"]) for r in recorded if r["action"] == "followup_done"] == [
            ("followup_done", "lb-roskilde-1")]  # fmt: skip

        # deadlines meets the follow-up (deadlines.v1 `met`, by followup_done), and the row leaves the list.
        async def met() -> bool:
            return bool(await met_events(ns, deadline_id))

        await eventually(met, timeout=30, what="deadlines.v1 carries the follow-up's met")
        (event,) = await met_events(ns, deadline_id)
        assert event.data["action"] == "followup_done" and event.data["rule_id"] == RULE
        async with httpx.AsyncClient(timeout=10) as client:
            state = (await client.get(f"{deadlines}/v1/deadlines/{deadline_id}", headers=POLICE)).json()["state"]
        assert state == "met"
        assert reference not in officer.get(LIST).text
        # A late third click on the met follow-up says so, in Danish.
        late = officer.post(f"{LIST}/{deadline_id}/udfoert", headers={"X-CSRF-Token": token})
        assert late.status_code == 409 and "allerede afsluttet" in late.json()["detail"]
    finally:
        officer.close()
        greve.close()

    # A vagtchef: every kommune's list, or the one he picks.
    chief = signed_in(notify, "vc-anne")
    try:
        _, other_deadline = await open_followup(system, kommune="0253")
        everything = chief.get(LIST)
        assert other_deadline["reference"] in everything.text and "alle kommuner" in everything.text
        assert other_deadline["reference"] not in chief.get(LIST, params={"kommune": "0265"}).text
        assert other_deadline["reference"] in chief.get(LIST, params={"kommune": "0253"}).text
    finally:
        chief.close()

    council = signed_in(notify, "raad-0265")
    try:
        refused = council.get(LIST)
        assert refused.status_code == 403 and "ikke adgang til opfølgningslisten" in refused.text
        assert 'name="csrf-token"' not in refused.text
    finally:
        council.close()


@needs_chromium
async def test_in_chromium_by_keyboard_phone_then_udfoert(system: dict[str, ServiceProcess], browser: Browser) -> None:
    base = system["notify"].url
    _, deadline = await open_followup(system)
    context, page, errors = await danish_page(browser)

    # From the console's link, after signing in at the provider's own page.
    await page.goto(base + "/console")
    await page.locator("#username").fill("lb-roskilde-1")
    await page.locator("#password").fill(dev_password("lb-roskilde-1"))
    await page.locator("#kc-login").click()
    await page.wait_for_url(base + "/console")
    await page.get_by_role("link", name="Tryghedsopfølgning").click()
    await page.wait_for_url(base + LIST)

    row = page.locator("tr.followup", has_text=deadline["reference"])
    await expect(row).to_be_visible()
    await expect(row).to_contain_text("Roskilde")
    await assert_accessible(page, "the follow-up list")

    show = row.get_by_role("button", name=f"Vis telefon for {deadline['reference']}")
    await show.focus()
    await page.keyboard.press("Enter")
    await expect(row.locator(".phone")).to_contain_text(VICTIM[1])
    await expect(row.locator(".phone")).to_contain_text(VICTIM[0])
    await expect(row.locator(".phone")).to_contain_text("Opslaget er logget i dit navn")
    await expect(row.locator(".phone a")).to_be_focused()  # the focus stays in the row, not at the top
    if os.environ.get("FOLLOWUPS_SCREENSHOT"):
        await page.screenshot(path=os.environ["FOLLOWUPS_SCREENSHOT"], full_page=True)

    done = row.get_by_role("button", name=f"Udført for {deadline['reference']}")
    await done.focus()
    await page.keyboard.press("Enter")  # the first press only asks: it cannot be taken back
    await expect(row.get_by_role("button", name=f"Bekræft: udført for {deadline['reference']}")).to_be_focused()
    await expect(page.locator("#announce")).to_contain_text("tryk igen")
    assert (await row.locator(".result").text_content() or "") == ""
    await page.keyboard.press("Enter")
    await expect(row.locator(".result")).to_have_text("Registreret")
    await expect(page.locator("#announce")).to_contain_text("registreret")
    await assert_accessible(page, "the follow-up list after Vis telefon and Udført")

    async def gone() -> bool:
        await page.reload()
        return await page.locator("tr.followup", has_text=deadline["reference"]).count() == 0

    await eventually(gone, timeout=30, what="the met follow-up gone from the list")
    assert not errors, errors
    await context.close()
