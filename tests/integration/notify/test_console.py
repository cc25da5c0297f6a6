"""The console against notify as a real process on real Kafka and Postgres: in Debian's headless Chromium, and by HTTP.

In the browser a duty officer signs in through the identity provider's own login page (Keycloak,
realm mvsj), a breach published on the deadlines topic appears without a reload, the ack button
acknowledges it as that person (the API, the audit trail, alerts.v1 and the e-mail to the others
name them; it never escalates, while an unacknowledged twin does), markup in event data shows as
text, and signing out ends the session here and at the provider. With 60 open alerts and more
streaming in, the first click on a Kvittér acknowledges the alert it was aimed at and no other,
details stay open and the filters hold; a session ended elsewhere says so on the open page. By
HTTP: the redirect to the provider, the session cookie's flags, who gets a console (a lokalbetjent
his kommune's alerts, a council secretary none), the CSRF token, a copied cookie after sign-out,
and the event stream carrying a change made by another notify instance.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, FloatRect, Locator, Page, expect

from demo.identity import dev_password, loopback_client
from demo.identity import sign_in as provider_sign_in
from shared.events import alerts as ev
from tests.integration.notify.conftest import POLICE, Deadline, TestRoster, Upstream, alert_events, notify_env
from tests.support.axe import assert_accessible
from tests.support.browser import danish_page, needs_chromium
from tests.support.identity import issuer
from tests.support.infra import Namespace
from tests.support.receivers import SmtpSink, WebhookReceiver
from tests.support.services import ServiceProcess
from tests.support.waiting import eventually
from tests.testdata import SECONDS_POLICY_FILE

ISSUER = issuer()
MARKUP = '<img src=x onerror="window.__pwned=1"><b>fed</b>'
OFFICER = ("vc-anne", "Anne Holm")  # a vagtchef of the development realm: roster id and the provider's name
ACK_TIMEOUT = 8  # seconds: long enough to click, short enough to see the unacknowledged twin escalate


class MarkupDeadline(Deadline):
    """A deadline whose title (event data, free text) carries markup: the page must show it as text."""

    def _common(self) -> dict[str, Any]:
        return super()._common() | {"title": MARKUP}


def timed(deadline: Deadline, due_in: timedelta) -> Deadline:
    """The deadline as if started a day before its due time, which is `due_in` from now."""
    deadline.due_at = datetime.now(UTC) + due_in
    deadline.started_at = deadline.due_at - timedelta(hours=24)
    return deadline


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    text = SECONDS_POLICY_FILE.read_text(encoding="utf-8").replace(
        "ack_timeout: PT3S", f"ack_timeout: PT{ACK_TIMEOUT}S"
    )
    path = tmp_path / "policy.yaml"
    path.write_text(text.replace("reminder_interval: PT3S", "reminder_interval: PT60S"), encoding="utf-8")
    return path


@pytest.fixture
def notify_environment(
    ns: Namespace, notify_schema: str, roster: TestRoster, smtp: SmtpSink, policy: Path
) -> dict[str, str]:
    return notify_env(ns, roster, smtp) | {"ALERT_POLICY_FILE": str(policy)}


@pytest.fixture
def notify(notify_environment: dict[str, str], tmp_path: Path) -> Iterator[ServiceProcess]:
    service = ServiceProcess("notify", notify_environment, tmp_path / "notify.log").start()
    try:
        service.wait_ready()
        yield service
    finally:
        service.stop()


async def sign_in(page: Page, base: str, username: str = OFFICER[0], password: str | None = None) -> None:
    """As an officer does it: the console sends the browser to the provider's login page, and back."""
    await page.goto(base + "/console")
    await page.locator("#username").fill(username)
    await page.locator("#password").fill(password or dev_password(username))
    await page.locator("#kc-login").click()
    await page.wait_for_url(base + "/console")


@needs_chromium
async def test_alert_appears_live_ack_stops_escalation_and_markup_is_text(
    notify: ServiceProcess,
    upstream: Upstream,
    receiver: WebhookReceiver,
    smtp: SmtpSink,
    browser: Browser,
    ns: Namespace,
) -> None:
    base = notify.url
    context, page, errors = await danish_page(browser)

    # Not signed in: the console sends the browser to the provider's own login page.
    await page.goto(base + "/console")
    assert page.url.startswith(ISSUER + "/protocol/openid-connect/auth?"), page.url
    # A wrong password (for nobody real: the realm's brute-force guard would lock a shared user out).
    await page.locator("#username").fill("ingen-saadan-bruger")
    await page.locator("#password").fill("not-the-password")
    await page.locator("#kc-login").click()
    assert page.url.startswith(ISSUER) and not [c for c in await context.cookies() if c["name"] == "notify_session"]

    await sign_in(page, base)
    await expect(page.locator("#live")).to_have_text("Live")
    (cookie,) = [c for c in await context.cookies() if c["name"] == "notify_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == "/"
    await expect(page.locator("#officer")).to_have_text(OFFICER[1])  # the provider's name for the person
    await page.evaluate("window.__sameDocument = true")  # gone if the page ever reloads

    # Two breaches and a warning, raised by events on the test's deadlines topic, after the page has loaded.
    acked = timed(MarkupDeadline(kommune="0265"), due_in=timedelta(minutes=-3))
    ignored = timed(Deadline(kommune="0316", category="violence", rule="violence_24h"), due_in=timedelta(minutes=-1))
    warned = timed(Deadline(kommune="0326", category="youth_party_nuisance", rule="youth_party_nuisance_48h"),
                   due_in=timedelta(minutes=40))  # fmt: skip
    await upstream.publish(acked.reported(), ignored.reported(), warned.reported())
    await asyncio.sleep(0.5)  # the references first, so the alerts carry them
    await upstream.publish(acked.breached(), ignored.breached(), warned.warning(0.75))

    card = page.locator("tbody.alert", has_text=acked.reference)
    twin = page.locator("tbody.alert", has_text=ignored.reference)
    await expect(card).to_be_visible(timeout=15_000)
    await expect(twin).to_be_visible(timeout=15_000)
    assert await page.evaluate("window.__sameDocument") is True  # live, not reloaded
    await expect(card.locator(".badge")).to_have_text("Kritisk")
    await expect(card).to_contain_text("Roskilde")
    await expect(card).to_contain_text("Indbrud")  # the category's Danish label
    await expect(twin).to_contain_text("Holbæk")
    await expect(card.locator(".countdown")).to_contain_text("overskredet for 3 min")
    warning = page.locator("tbody.alert", has_text=warned.reference)
    await expect(warning.locator(".badge")).to_have_text("Advarsel")
    await expect(warning).to_contain_text("Kalundborg")
    await expect(warning.locator(".countdown")).to_contain_text("om 39 min")
    # Most urgent first: the breaches (critical), the one due longest ago first, then the warning.
    await expect(page.locator("tbody.alert .reference")).to_have_text([acked.reference, ignored.reference,
                                                                       warned.reference])  # fmt: skip
    # Details on demand: the reference opens them.
    details = card.locator("tr.details")
    await expect(details).to_be_hidden()
    await card.get_by_role("button", name=acked.reference, exact=True).click()
    await expect(details).to_be_visible()
    # Who was told, on which channel: a line per recipient and kind of notice (a lokalbetjent by webhook)...
    await expect(details.locator("ul.told")).to_contain_text("Lokalbetjent lb-roskilde-1: 1 alarm kl. ")
    # ...and in the whole history, delivered (by the real receiver).
    await details.get_by_text("Alle beskeder").click()
    await expect(card.locator("tr.delivery", has_text="Vagtchef A").or_(
        card.locator("tr.delivery", has_text="Vagtchef B"))).to_contain_text("leveret", timeout=15_000)  # fmt: skip
    await expect(card.locator("tr.delivery", has_text="lb-roskilde-1")).to_contain_text("webhook")

    # Markup in event data is shown as text and never becomes an element or runs.
    await expect(card.locator("dd", has_text="onerror")).to_have_text(MARKUP)
    assert await card.locator("img, b").count() == 0
    assert await page.evaluate("window.__pwned") is None

    # WCAG 2.1 AA (webtilgængelighedsloven): the console as the officer has it now, alerts listed, details open.
    await assert_accessible(page, "the console with alerts and details open")
    # The lokalbetjent's ack link (from the webhook delivered to him) shows its form: accessible as well.
    await eventually(lambda: receiver.delivered("/lb1"), timeout=15, what="the webhook to lb-roskilde-1")
    link = httpx.URL(json.loads(receiver.delivered("/lb1")[0].body)["ack_url"])
    link_page = await context.new_page()
    await link_page.goto(f"{base}{link.path}?{link.query.decode()}")
    await expect(link_page.get_by_role("button", name="Kvittér")).to_be_visible()
    await assert_accessible(link_page, "the ack link's page")
    await link_page.close()

    # By keyboard only: Tab from the top passes the filters and reaches the alert's Kvittér; Space acknowledges.
    ack = card.get_by_role("button", name="Kvittér")
    passed = await _tab_to(page, ack)
    assert {"filter-kommune", "filter-severity"} <= set(passed), passed
    await page.keyboard.press("Space")
    await expect(card).to_have_attribute("data-state", "acknowledged")
    await expect(card.locator(".state")).to_have_text("Kvitteret")
    await expect(card.get_by_role("button", name="Kvittér")).to_have_count(0)
    await expect(card.locator("dd", has_text=OFFICER[1])).to_contain_text(OFFICER[1])

    alert_id = await card.get_attribute("data-id")
    twin_id = await twin.get_attribute("data-id")
    assert alert_id is not None
    async with httpx.AsyncClient(base_url=base, headers=POLICE) as api:
        body = (await api.get(f"/v1/alerts/{alert_id}")).json()
        assert body["state"] == "acknowledged" and (body["acknowledged_by"], body["acknowledged_by_name"]) == OFFICER
        assert body["next_escalation_at"] is None
        # The audit trail names the person who clicked, not a key and not typed text.
        assert [(a["actor"], a["detail"]) for a in body["audit"] if a["kind"] == "acknowledged"] == [
            ("vc-anne", {"by": "vc-anne", "name": "Anne Holm", "via": "console"})]  # fmt: skip

        # The unacknowledged twin escalates after the timeout, and the page shows it live...
        await expect(twin.locator(".state")).to_have_text("Eskaleret", timeout=(ACK_TIMEOUT + 15) * 1000)
        # ...by then the acknowledged one has had its timeout too, and nothing happened to it.
        assert (await api.get(f"/v1/alerts/{alert_id}")).json()["state"] == "acknowledged"
    if shot := os.environ.get("CONSOLE_SCREENSHOT"):
        await page.screenshot(path=shot, full_page=True)
    # A resolve (the deadline met) takes the alert off the page, live as well.
    await upstream.publish(ignored.met())
    await expect(twin).to_have_count(0, timeout=15_000)
    await expect(page.locator("#count")).to_have_text("2")
    events = await alert_events(ns, timeout=5)
    escalated = {e.data["alert_id"] for e in events if e.type == ev.ESCALATED}
    assert twin_id in escalated and alert_id not in escalated
    acknowledged = [e for e in events if e.type == ev.ACKNOWLEDGED and e.data["alert_id"] == alert_id]
    assert len(acknowledged) == 1 and acknowledged[0].data["via"] == "console"
    assert (acknowledged[0].data["by"], acknowledged[0].data["by_name"]) == OFFICER
    assert not [h for h in receiver.delivered("/vagtcentral") if alert_id.encode() in h.body]
    # The others who were told hear who took it, by the person's name and roster id.
    told = [m for m in smtp.to("lb2@politi.example") if "Kvitteret af" in m.get_content()]
    assert told and all("Kvitteret af: Anne Holm (vc-anne)" in m.get_content() for m in told)
    assert errors == []

    # Signing out ends the session here and at the provider: the console asks for a password again.
    await page.get_by_role("button", name="Log ud").click()
    await expect(page.get_by_role("heading", name="Du er logget ud")).to_be_visible()
    assert not [c for c in await context.cookies() if c["name"] == "notify_session"]
    await page.goto(base + "/console")
    await expect(page.locator("#password")).to_be_visible()
    await context.close()


@needs_chromium
async def test_ack_without_the_session_token_is_refused(
    notify: ServiceProcess, upstream: Upstream, browser: Browser
) -> None:
    """A cross-site form cannot ack: without the session's CSRF token (only the page has it) the ack is refused."""
    context = await browser.new_context()
    page = await context.new_page()
    await sign_in(page, notify.url)
    await expect(page.locator("#live")).to_have_text("Live")
    dl = Deadline()
    await upstream.publish(dl.reported(), dl.breached())
    card = page.locator("tbody.alert", has_text=dl.reference)
    await expect(card).to_be_visible(timeout=15_000)
    alert_id = await card.get_attribute("data-id")
    status = await page.evaluate(
        "async (id) => (await fetch('/console/alerts/' + id + '/ack', {method: 'POST'})).status", alert_id
    )
    assert status == 403
    async with httpx.AsyncClient(base_url=notify.url, headers=POLICE) as api:
        assert (await api.get(f"/v1/alerts/{alert_id}")).json()["acknowledged_by"] is None
    await context.close()


KOMMUNER = ("0265", "0253", "0316", "0326", "0329")  # Roskilde, Greve, Holbæk, Kalundborg, Ringsted
# The page's words for "the pointer is on the list, which stands still": how the test knows news was held back.
HELD = "Listen står stille"


async def _aim(page: Page, button: Locator, alert_id: str) -> FloatRect:
    """Moves the pointer onto `button` as a hand does, until what is under it is that alert's row; its box."""
    for _ in range(10):
        box = await button.bounding_box()
        assert box is not None
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        await page.mouse.move(x, y)
        under = await page.evaluate(
            "([x, y]) => document.elementFromPoint(x, y)?.closest('tbody.alert')?.dataset.id", [x, y]
        )
        if under == alert_id and await button.bounding_box() == box:
            return box
    raise AssertionError("the pointer never came to rest on the button")


@needs_chromium
async def test_sixty_open_alerts_the_first_click_acknowledges_the_right_one_while_updates_stream(
    notify: ServiceProcess, upstream: Upstream, browser: Browser
) -> None:
    """Issue 16's console at a busy hour: 60 open alerts, then a new breach every 300 ms (each more urgent
    than all, so it belongs above the rest) and the escalations of the first 60. The officer points at the
    Kvittér of an alert in the middle, reads for a moment, clicks once: that alert, and only that one, is
    acknowledged. Rows are one element each for as long as they live, the opened details stay open, the
    filters hold through updates and a reload, and the live region speaks of new critical alerts seldom."""
    base = notify.url
    context, page, errors = await danish_page(browser)
    await sign_in(page, base)
    await expect(page.locator("#live")).to_have_text("Live")
    # Every word the live region says, kept for the end.
    await page.evaluate("""() => {
        window.__said = [];
        const region = document.getElementById('announce');
        new MutationObserver(() => window.__said.push(region.textContent)).observe(
            region, {childList: true, characterData: true, subtree: true});
    }""")  # fmt: skip

    # Sixty open alerts in five kommuner: 40 breaches due up to 80 minutes ago, 20 warnings due within two hours.
    breaches = [timed(Deadline(kommune=KOMMUNER[i % 5]), due_in=timedelta(minutes=-80 + 2 * i)) for i in range(40)]
    warnings = [timed(Deadline(kommune=KOMMUNER[i % 5], category="youth_party_nuisance",
                               rule="youth_party_nuisance_48h"), due_in=timedelta(minutes=10 + 5 * i))
                for i in range(20)]  # fmt: skip
    await upstream.publish(*[d.reported() for d in breaches + warnings])
    await upstream.publish(*[d.breached() for d in breaches], *[d.warning(0.75) for d in warnings])
    rows = page.locator("tbody.alert")
    await expect(rows).to_have_count(60, timeout=30_000)
    api = httpx.AsyncClient(base_url=base, headers=POLICE, timeout=10)
    try:
        listed = (await api.get("/v1/alerts", params={"state": "unresolved", "limit": 500})).json()["items"]
        assert len(listed) == 60
        # The page's order is the server's: critical first, soonest due first.
        await expect(page.locator("tbody.alert .reference")).to_have_text([a["reference"] for a in listed])
        target, neighbour = listed[30], listed[31]
        row = page.locator(f'tbody.alert[data-id="{target["id"]}"]')
        await expect(row.locator(".countdown")).to_contain_text("overskredet for")

        # The target's details, opened before the wave, and its neighbour's button, marked: both must outlive it.
        disclosure = row.get_by_role("button", name=target["reference"], exact=True)
        await disclosure.click()
        await expect(row.locator("tr.details")).to_be_visible()
        await expect(row.locator("tr.details")).to_contain_text("Underrettet")
        neighbour_ack = page.locator(f'tbody.alert[data-id="{neighbour["id"]}"] button.ack')
        await neighbour_ack.evaluate("button => { window.__neighbour = button; }")

        wave: list[Deadline] = []

        async def stream_updates() -> None:
            for k in range(20):
                dl = timed(Deadline(kommune=KOMMUNER[k % 5]), due_in=timedelta(hours=-3, minutes=-k))
                wave.append(dl)
                await upstream.publish(dl.reported(), dl.breached())
                await asyncio.sleep(0.3)

        streaming = asyncio.create_task(stream_updates())
        try:
            await expect(rows).not_to_have_count(60, timeout=10_000)  # the wave has reached the page
            ack = row.get_by_role("button", name="Kvittér")
            await ack.scroll_into_view_if_needed()
            # As an officer clicks: the pointer goes to the button and rests while the eyes check the reference;
            # more alerts arrive meanwhile, and wait; the button has not moved when the click comes.
            box = await _aim(page, ack, target["id"])
            await expect(page.locator("#held")).to_contain_text(HELD, timeout=3_000)
            assert await ack.bounding_box() == box
            await page.mouse.down()
            await page.mouse.up()
            await expect(row).to_have_attribute("data-state", "acknowledged")
            await expect(row.locator(".by")).to_have_text(OFFICER[1])
        finally:
            await streaming

        acknowledged = (await api.get("/v1/alerts", params={"state": "acknowledged", "limit": 500})).json()["items"]
        assert [a["id"] for a in acknowledged] == [target["id"]], [a["reference"] for a in acknowledged]
        body = (await api.get(f"/v1/alerts/{target['id']}")).json()
        assert (body["acknowledged_by"], body["acknowledged_by_name"]) == OFFICER
        assert [a["actor"] for a in body["audit"] if a["kind"] == "acknowledged"] == ["vc-anne"]

        # The pointer leaves the list: the held rows come in, and the page's order is the server's again
        # (the acknowledged one below every unacknowledged one).
        await page.mouse.move(5, 5)
        await expect(rows).to_have_count(80, timeout=15_000)
        await expect(page.locator("#held")).to_be_hidden()
        listed = (await api.get("/v1/alerts", params={"state": "unresolved", "limit": 500})).json()["items"]
        await expect(page.locator("tbody.alert .reference")).to_have_text([a["reference"] for a in listed])
        assert listed[-1]["id"] == target["id"]
        # The details stayed open through it all, and show the ack: changed in place.
        await expect(disclosure).to_have_attribute("aria-expanded", "true")
        await expect(row.locator("tr.details")).to_be_visible()
        await expect(row.locator("tr.details dd", has_text=OFFICER[1])).to_be_visible()
        # The neighbour's Kvittér is the element it was before the wave and the escalations.
        assert await neighbour_ack.evaluate("button => button === window.__neighbour")
        # The live region told of new critical alerts a few times, several together, not on every change.
        said = await page.evaluate("window.__said")
        assert said and len(said) <= 4 and all("kritisk" in s for s in said), said
        assert any(" nye kritiske alarmer: " in s and " flere." in s for s in said), said

        # Filters: kommune and severity, kept in the address; they hold through updates and a reload.
        visible = page.locator("tbody.alert:visible")
        await page.get_by_label("Kommune", exact=True).select_option("0265")
        roskilde = [a for a in listed if a["kommune"] == "0265"]
        await expect(visible).to_have_count(len(roskilde))
        await expect(page.locator("#shown")).to_have_text(f"{len(roskilde)} af 80 vist")
        # By keyboard as well: Alle, Kritisk, Advarsel.
        await page.get_by_label("Alvor", exact=True).focus()
        await page.keyboard.press("ArrowDown")
        await page.keyboard.press("ArrowDown")
        await expect(page.get_by_label("Alvor", exact=True)).to_have_value("warning")
        roskilde_warnings = [a for a in roskilde if a["severity"] == "warning"]
        assert 0 < len(roskilde_warnings) < len(roskilde)
        await expect(visible).to_have_count(len(roskilde_warnings))
        assert page.url == base + "/console?kommune=0265&severity=warning"
        later = [timed(Deadline(kommune=k, category="youth_party_nuisance", rule="youth_party_nuisance_48h"),
                       due_in=timedelta(minutes=30)) for k in ("0265", "0316")]  # fmt: skip
        await upstream.publish(*[d.reported() for d in later], *[d.warning(0.75) for d in later])
        await expect(rows).to_have_count(82, timeout=15_000)
        await expect(page.locator("tbody.alert", has_text=later[0].reference)).to_be_visible()
        await expect(page.locator("tbody.alert", has_text=later[1].reference)).to_be_hidden()
        await expect(page.locator("#shown")).to_have_text(f"{len(roskilde_warnings) + 1} af 82 vist")
        await page.reload()
        await expect(page.get_by_label("Kommune", exact=True)).to_have_value("0265")
        await expect(page.get_by_label("Alvor", exact=True)).to_have_value("warning")
        await expect(rows).to_have_count(82, timeout=15_000)
        await expect(visible).to_have_count(len(roskilde_warnings) + 1)

        # By keyboard: Enter on a Kvittér acknowledges that alert; it moves down (acknowledged) and the focus
        # stays on its row.
        first_id = await visible.first.get_attribute("data-id")
        first = page.locator(f'tbody.alert[data-id="{first_id}"]')
        await first.get_by_role("button", name="Kvittér").focus()
        await page.keyboard.press("Enter")
        await expect(first).to_have_attribute("data-state", "acknowledged")
        await expect(visible.last).to_have_attribute("data-id", first_id or "")
        focused = "() => [document.activeElement.className, document.activeElement.closest('tbody')?.dataset.id]"
        assert await page.evaluate(focused) == ["disclose", first_id]
        assert (await api.get(f"/v1/alerts/{first_id}")).json()["acknowledged_by"] == OFFICER[0]
    finally:
        await api.aclose()
    assert errors == []
    await context.close()


@needs_chromium
async def test_a_session_ended_elsewhere_says_so_on_the_open_console(
    notify_environment: dict[str, str], upstream: Upstream, browser: Browser, tmp_path: Path
) -> None:
    """Signed out in another window: the open console stops, says the session ended and links to signing in
    again, filters kept; it does not reload by itself nor offer a Kvittér that cannot work."""
    environment = notify_environment | {"WEB_SESSION_RECHECK_SECONDS": "1"}  # the stream asks every second
    service = ServiceProcess("notify", environment, tmp_path / "quick.log").start()
    try:
        service.wait_ready()
        base = service.url
        context = await browser.new_context()
        page = await context.new_page()
        await sign_in(page, base)
        await page.goto(base + "/console?severity=critical")
        await expect(page.locator("#live")).to_have_text("Live")
        dl = Deadline()
        await upstream.publish(dl.reported(), dl.breached())
        row = page.locator("tbody.alert", has_text=dl.reference)
        await expect(row.get_by_role("button", name="Kvittér")).to_be_enabled(timeout=15_000)
        await page.evaluate("window.__sameDocument = true")

        (cookie,) = [c for c in await context.cookies() if c["name"] == "notify_session"]
        with httpx.Client(base_url=base, cookies={"notify_session": cookie["value"]}, timeout=10) as other_window:
            token = _csrf(other_window)
            assert other_window.post("/auth/logout", data={"csrf": token}).status_code == 303

        ended = page.get_by_role("alert")
        await expect(ended).to_contain_text("Din session er slut", timeout=15_000)
        await expect(page.locator("#live")).to_have_text("Logget ud")
        await expect(row.get_by_role("button", name="Kvittér")).to_be_disabled()
        assert await page.evaluate("window.__sameDocument") is True
        again = ended.get_by_role("link", name="Log ind igen")
        assert await again.get_attribute("href") == "/console?severity=critical"
        # The provider still knows the browser (only notify's session ended): back at once, filters and all.
        await again.click()
        await page.wait_for_url(base + "/console?severity=critical")
        await expect(page.locator("#live")).to_have_text("Live")
        await expect(page.get_by_label("Alvor", exact=True)).to_have_value("critical")
        await context.close()
    finally:
        service.stop()


async def _tab_to(page: Page, target: Locator, presses: int = 40) -> list[str]:
    """Presses Tab from the top of the page until `target` has the focus; the ids (or tags) it passed."""
    await page.locator("h1").click()  # a click on text: the focus starts over at the top of the document
    passed: list[str] = []
    for _ in range(presses):
        await page.keyboard.press("Tab")
        if await target.evaluate("el => el === document.activeElement"):
            return passed
        passed.append(await page.evaluate("() => document.activeElement.id || document.activeElement.tagName"))
    raise AssertionError(f"{presses} Tabs never reached the element; they passed {passed}")


def _signed_in(base: str, username: str = OFFICER[0]) -> httpx.Client:
    """An HTTP client signed in to the console through the provider's login form, as a browser is."""
    client = loopback_client(base_url=base)
    back = provider_sign_in(client, base + "/console", username)
    assert back.is_redirect and back.headers["location"].startswith(base + "/auth/callback?"), back.headers
    landed = client.get(back.headers["location"])
    assert landed.status_code == 303 and landed.headers["location"] == "/console", landed.text[:300]
    return client


def _csrf(client: httpx.Client) -> str:
    page = client.get("/console").text
    return page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]


def test_the_console_sends_the_unsigned_in_to_the_provider_and_sets_an_opaque_lax_cookie(
    notify: ServiceProcess,
) -> None:
    base = notify.url
    with httpx.Client(base_url=base, timeout=10) as anonymous:
        first = anonymous.get("/console")
        assert first.status_code == 303
        target = httpx.URL(first.headers["location"])
        assert str(target).startswith(ISSUER + "/protocol/openid-connect/auth?")
        assert target.params["code_challenge_method"] == "S256" and target.params["redirect_uri"] == (
            base + "/auth/callback")  # fmt: skip
        binding = first.headers["set-cookie"].lower()
        assert "httponly" in binding and "path=/auth/callback" in binding and "samesite=lax" in binding
        assert anonymous.get("/console/events").status_code == 401
        assert anonymous.post(f"/console/alerts/{uuid.uuid4()}/ack").status_code == 401
        # A made-up callback signs nobody in.
        forged = anonymous.get("/auth/callback", params={"state": "made-up", "code": "made-up"})
        assert forged.status_code == 400 and "set-cookie" not in forged.headers
        # A key signs nobody in to the console any more, in the URL or as a bearer header.
        assert anonymous.get("/console", headers=POLICE).status_code == 303

    client = _signed_in(base)
    try:
        page = client.get("/console")
        assert page.status_code == 200 and "Anne Holm" in page.text
        assert page.headers["content-security-policy"].startswith("default-src 'none'")
        assert page.headers["x-frame-options"] == "DENY" and page.headers["x-content-type-options"] == "nosniff"
        value = client.cookies["notify_session"]
        assert len(value) >= 43 and "vc-anne" not in value  # opaque: nothing of the person in it
        # A cookie altered by its holder is no session: back to the provider.
        client.cookies.set("notify_session", value[:-2] + ("AA" if not value.endswith("AA") else "BB"),
                           domain="127.0.0.1", path="/")  # fmt: skip
        assert client.get("/console").status_code == 303
    finally:
        client.close()


def test_a_council_secretary_gets_no_console(notify: ServiceProcess) -> None:
    client = _signed_in(notify.url, "raad-0265")
    try:
        page = client.get("/console")
        assert page.status_code == 403 and "ikke adgang til konsollen" in page.text
        assert 'name="csrf-token"' not in page.text
        assert client.get("/console/events").status_code == 401
    finally:
        client.close()


async def test_a_lokalbetjent_sees_and_acknowledges_only_his_kommune(
    notify: ServiceProcess, upstream: Upstream
) -> None:
    greve, roskilde = Deadline(kommune="0253"), Deadline(kommune="0265")
    await upstream.publish(greve.reported(), roskilde.reported(), greve.breached(), roskilde.breached())

    async def both_raised() -> bool:
        return len(httpx.get(notify.url + "/v1/alerts", headers=POLICE).json()["items"]) == 2

    await eventually(both_raised, timeout=20, what="both alerts raised")
    items = {a["kommune"]: a["id"] for a in httpx.get(notify.url + "/v1/alerts", headers=POLICE).json()["items"]}
    client = _signed_in(notify.url, "lb-greve-1")
    try:
        token = _csrf(client)
        snapshot: list[dict[str, Any]] = []
        async with httpx.AsyncClient(base_url=notify.url, cookies=client.cookies, timeout=30) as sse, \
                sse.stream("GET", "/console/events") as stream:  # fmt: skip
            async for line in stream.aiter_lines():
                if line.startswith("data:"):
                    snapshot = json.loads(line.split(":", 1)[1])
                    break
        assert [a["kommune"] for a in snapshot] == ["0253"]
        refused = client.post(f"/console/alerts/{items['0265']}/ack", headers={"X-CSRF-Token": token})
        assert refused.status_code == 403 and "anden kommune" in refused.json()["detail"]
        acked = client.post(f"/console/alerts/{items['0253']}/ack", headers={"X-CSRF-Token": token})
        assert acked.status_code == 200
        assert (acked.json()["acknowledged_by"], acked.json()["acknowledged_by_name"]) == (
            "lb-greve-1", "Lokalbetjent Greve 1")  # fmt: skip
    finally:
        client.close()
    assert httpx.get(f"{notify.url}/v1/alerts/{items['0265']}", headers=POLICE).json()["acknowledged_by"] is None


async def _raised_alert(url: str) -> str:
    """The id of the first alert notify raised, once there is one."""
    alert_id = ""

    async def raised() -> bool:
        nonlocal alert_id
        items = httpx.get(url + "/v1/alerts", headers=POLICE).json()["items"]
        alert_id = items[0]["id"] if items else ""
        return bool(alert_id)

    await eventually(raised, timeout=20, what="the alert raised")
    return alert_id


async def test_the_feed_shows_a_change_made_by_another_instance(notify: ServiceProcess, notify_environment: dict[str, str], upstream: Upstream,
                                                                tmp_path: Path) -> None:  # fmt: skip
    client = _signed_in(notify.url)
    token = _csrf(client)
    dl = Deadline()
    await upstream.publish(dl.reported(), dl.breached())
    alert_id = await _raised_alert(notify.url)
    other = ServiceProcess("notify", notify_environment, tmp_path / "other.log").start()
    try:
        other.wait_ready()
        events: list[tuple[str, Any]] = []
        async with httpx.AsyncClient(base_url=notify.url, cookies=client.cookies, timeout=30) as stream_client, \
                stream_client.stream("GET", "/console/events") as stream:  # fmt: skip
            assert stream.status_code == 200
            name, acked = "", False
            async for line in stream.aiter_lines():
                if line.startswith("event:"):
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    events.append((name, json.loads(line.split(":", 1)[1])))
                    if name == "snapshot" and not acked:
                        assert [a["id"] for a in events[0][1]] == [alert_id]
                        # The ack goes to the other instance; this one learns of it from Postgres.
                        ack = httpx.post(f"{other.url}/v1/alerts/{alert_id}/ack", headers=POLICE, json={"by": "vc-b"})
                        assert ack.status_code == 200
                        acked = True
                    elif name == "alerts" and any(a["acknowledged_by"] == "vc-b" for a in events[-1][1]):
                        break
        # The session is the other instance's too: the same cookie is signed in there.
        assert "Anne Holm" in httpx.get(other.url + "/console", cookies=client.cookies, timeout=10).text
    finally:
        other.stop()
    (shown,) = [a for a in events[-1][1] if a["id"] == alert_id]
    assert shown["state"] == "acknowledged" and shown["state_da"] == "Kvitteret"
    assert shown["acknowledged_by_name"] == "Vagtchef B"  # the roster's name for the officer the key acted for

    # The console's own ack wants the session's token; the API's state is the judge.
    assert client.post(f"/console/alerts/{alert_id}/ack").status_code == 403
    assert client.post(f"/console/alerts/{alert_id}/ack", headers={"X-CSRF-Token": token + "x"}).status_code == 403
    cross = client.post(f"/console/alerts/{alert_id}/ack", headers={"X-CSRF-Token": token,
                                                                       "Origin": "https://evil.example"})  # fmt: skip
    assert cross.status_code == 403
    again = client.post(f"/console/alerts/{alert_id}/ack", headers={"X-CSRF-Token": token})
    assert again.status_code == 200 and again.json()["acknowledged_by"] == "vc-b"  # a second ack changes nothing
    assert client.post(f"/console/alerts/{uuid.uuid4()}/ack", headers={"X-CSRF-Token": token}).status_code == 404

    # Signed out, the session is over everywhere: a copy of the cookie taken before is worth nothing.
    copied = dict(client.cookies)
    assert client.post("/auth/logout", data={"csrf": token + "x"}).status_code == 403  # a forged sign-out form
    out = client.post("/auth/logout", data={"csrf": token})
    assert out.status_code == 303 and out.headers["location"].startswith(ISSUER + "/protocol/openid-connect/logout?")
    with httpx.Client(base_url=notify.url, cookies=copied, timeout=10) as thief:
        assert thief.get("/console").status_code == 303
        assert thief.get("/console/events").status_code == 401
        assert thief.post(f"/console/alerts/{alert_id}/ack", headers={"X-CSRF-Token": token}).status_code == 401
    client.close()
