"""The console against notify as a real process on real Kafka and Postgres: in Debian's headless Chromium, and by HTTP.

In the browser a duty officer signs in, a breach published on the deadlines topic appears without
a reload, the ack button acknowledges it (the API says so and it never escalates, while an
unacknowledged twin does), and markup in event data and in the officer's name shows as text.
By HTTP: the session cookie's flags, refused keys and origins, the CSRF token, and the event
stream carrying a change made by another notify instance.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from itsdangerous import TimestampSigner
from playwright.async_api import Browser, Page, async_playwright, expect

from services.notify.settings import DEV_CONSOLE_SECRET
from shared.events import alerts as ev
from tests.integration.notify.conftest import POLICE, Deadline, TestRoster, Upstream, alert_events, notify_env
from tests.support.infra import Namespace
from tests.support.receivers import SmtpSink, WebhookReceiver
from tests.support.services import ServiceProcess
from tests.support.waiting import eventually
from tests.testdata import SECONDS_POLICY_FILE

CHROMIUM = "/usr/bin/chromium"
MARKUP = '<img src=x onerror="window.__pwned=1"><b>fed</b>'
OFFICER = "Vagtchef <i>Test</i>"
ACK_TIMEOUT = 8  # seconds: long enough to click, short enough to see the unacknowledged twin escalate

# Skipped on a developer's machine without it; in CI (which installs it) a missing browser fails instead.
needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"),
    reason="needs Debian's chromium at /usr/bin/chromium: apt-get install -y chromium",
)


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


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield chromium
        finally:
            await chromium.close()


async def sign_in(page: Page, base: str, key: str = "dev-police-key") -> None:
    await page.goto(base + "/console")
    await page.get_by_label("Dit navn").fill(OFFICER)
    await page.get_by_label("Nøgle").fill(key)
    await page.get_by_role("button", name="Log ind").click()


@needs_chromium
async def test_alert_appears_live_ack_stops_escalation_and_markup_is_text(
    notify: ServiceProcess, upstream: Upstream, receiver: WebhookReceiver, browser: Browser, ns: Namespace
) -> None:
    base = notify.url
    context = await browser.new_context(locale="da-DK", timezone_id="Europe/Copenhagen",
                                        viewport={"width": 1280, "height": 900})  # fmt: skip
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    # A wrong key is refused on the form; nothing is set.
    await sign_in(page, base, key="not-a-key")
    await expect(page.get_by_role("alert")).to_have_text("Nøglen er ikke gyldig.")
    assert await context.cookies() == []

    await sign_in(page, base)
    await expect(page.locator("#live")).to_have_text("Live")
    assert "key" not in page.url and page.url == base + "/console"
    (cookie,) = await context.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/console"
    assert "dev-police-key" not in cookie["value"]
    await expect(page.locator("#officer")).to_have_text(OFFICER)  # the officer's own name, as text
    await page.evaluate("window.__sameDocument = true")  # gone if the page ever reloads

    # Two breaches and a warning, raised by events on the test's deadlines topic, after the page has loaded.
    acked = timed(MarkupDeadline(kommune="0265"), due_in=timedelta(minutes=-3))
    ignored = timed(Deadline(kommune="0316", category="violence", rule="violence_24h"), due_in=timedelta(minutes=-1))
    warned = timed(Deadline(kommune="0326", category="youth_party_nuisance", rule="youth_party_nuisance_48h"),
                   due_in=timedelta(minutes=40))  # fmt: skip
    await upstream.publish(acked.reported(), ignored.reported(), warned.reported())
    await asyncio.sleep(0.5)  # the references first, so the alerts carry them
    await upstream.publish(acked.breached(), ignored.breached(), warned.warning(0.75))

    card = page.locator("article.alert", has_text=acked.reference)
    twin = page.locator("article.alert", has_text=ignored.reference)
    await expect(card).to_be_visible(timeout=15_000)
    await expect(twin).to_be_visible(timeout=15_000)
    assert await page.evaluate("window.__sameDocument") is True  # live, not reloaded
    await expect(card.locator(".badge")).to_have_text("Kritisk")
    await expect(card).to_contain_text("Roskilde")
    await expect(card).to_contain_text("Indbrud")  # the category's Danish label
    await expect(twin).to_contain_text("Holbæk")
    await expect(card.locator(".countdown")).to_contain_text("overskredet for 3 min")
    warning = page.locator("article.alert", has_text=warned.reference)
    await expect(warning.locator(".badge")).to_have_text("Advarsel")
    await expect(warning).to_contain_text("Kalundborg")
    await expect(warning.locator(".countdown")).to_contain_text("om 39 min")
    # Most urgent first: the breaches (critical), the one due longest ago first, then the warning.
    await expect(page.locator("article.alert h2")).to_have_text([acked.reference, ignored.reference,
                                                                 warned.reference])  # fmt: skip
    # Who was told, on which channel: the vagtchef by webhook (delivered by the real receiver).
    await expect(card.locator("tr.delivery", has_text="Vagtchef A").or_(
        card.locator("tr.delivery", has_text="Vagtchef B"))).to_contain_text("leveret", timeout=15_000)  # fmt: skip
    await expect(card.locator("tr.delivery", has_text="lb-roskilde-1")).to_contain_text("webhook")

    # Markup in event data is shown as text and never becomes an element or runs.
    await expect(card.locator("dd", has_text="onerror")).to_have_text(MARKUP)
    assert await card.locator("img, b").count() == 0
    assert await page.evaluate("window.__pwned") is None

    await card.get_by_role("button", name="Kvittér").click()
    await expect(card).to_have_attribute("data-state", "acknowledged")
    await expect(card.locator(".state")).to_have_text("Kvitteret")
    await expect(card.get_by_role("button", name="Kvittér")).to_have_count(0)
    await expect(card.locator("dd", has_text="Test")).to_contain_text(OFFICER)

    alert_id = await card.get_attribute("data-id")
    twin_id = await twin.get_attribute("data-id")
    assert alert_id is not None
    async with httpx.AsyncClient(base_url=base, headers=POLICE) as api:
        body = (await api.get(f"/v1/alerts/{alert_id}")).json()
        assert body["state"] == "acknowledged" and body["acknowledged_by"] == OFFICER
        assert body["next_escalation_at"] is None
        assert any(a["kind"] == "acknowledged" for a in body["audit"])

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
    assert not [h for h in receiver.delivered("/vagtcentral") if alert_id.encode() in h.body]
    assert errors == []

    # Signing out ends the session: the page asks for a key again.
    await page.get_by_role("button", name="Log ud").click()
    await expect(page.get_by_role("button", name="Log ind")).to_be_visible()
    assert await context.cookies() == []
    await context.close()


@needs_chromium
async def test_ack_without_the_session_token_is_refused(
    notify: ServiceProcess, upstream: Upstream, browser: Browser
) -> None:
    """A cross-site form cannot ack: the cookie is SameSite=Strict, and even with it the CSRF token is missing."""
    context = await browser.new_context()
    page = await context.new_page()
    await sign_in(page, notify.url)
    await expect(page.locator("#live")).to_have_text("Live")
    dl = Deadline()
    await upstream.publish(dl.reported(), dl.breached())
    card = page.locator("article.alert", has_text=dl.reference)
    await expect(card).to_be_visible(timeout=15_000)
    alert_id = await card.get_attribute("data-id")
    status = await page.evaluate(
        "async (id) => (await fetch('/console/alerts/' + id + '/ack', {method: 'POST'})).status", alert_id
    )
    assert status == 403
    async with httpx.AsyncClient(base_url=notify.url, headers=POLICE) as api:
        assert (await api.get(f"/v1/alerts/{alert_id}")).json()["acknowledged_by"] is None
    await context.close()


def _signed_in(base: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=10)
    response = client.post("/console/login", data={"key": "dev-police-key", "navn": "VC Http"})
    assert response.status_code == 303 and response.headers["location"] == "/console"
    return client


def _csrf(client: httpx.Client) -> str:
    page = client.get("/console").text
    return page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]


def test_sign_in_sets_a_strict_http_only_cookie_and_refuses_wrong_keys_and_origins(notify: ServiceProcess) -> None:
    base = notify.url
    with httpx.Client(base_url=base, timeout=10) as anonymous:
        assert anonymous.post("/console/login", data={"key": "nope"}).status_code == 401
        refused = anonymous.post("/console/login", data={"key": "dev-council-key"})
        assert refused.status_code == 403 and "set-cookie" not in refused.headers
        cross = anonymous.post("/console/login", data={"key": "dev-police-key"},
                               headers={"Origin": "https://evil.example"})  # fmt: skip
        assert cross.status_code == 403 and "set-cookie" not in cross.headers
        assert anonymous.get("/console/events").status_code == 401
        assert anonymous.get("/console").headers["content-security-policy"].startswith("default-src 'none'")
        # A key in the URL signs nobody in.
        assert "Log ind" in anonymous.get("/console", params={"key": "dev-police-key"}).text

    with httpx.Client(base_url=base, timeout=10) as client:
        response = client.post("/console/login", data={"key": "dev-police-key", "navn": "VC Http"})
        assert response.status_code == 303
        flags = [f.strip().lower() for f in response.headers["set-cookie"].split(";")]
        assert "httponly" in flags and "samesite=strict" in flags and "path=/console" in flags
        assert "dev-police-key" not in response.headers["set-cookie"]
        assert "Logget ind som" in client.get("/console").text
        # A cookie altered by its holder is no session.
        value = client.cookies["notify_console"]
        client.cookies.set("notify_console", value[:-2] + ("AA" if not value.endswith("AA") else "BB"),
                           domain="127.0.0.1", path="/console")  # fmt: skip
        assert "Log ind" in client.get("/console").text


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
    finally:
        other.stop()
    (shown,) = [a for a in events[-1][1] if a["id"] == alert_id]
    assert shown["state"] == "acknowledged" and shown["state_da"] == "Kvitteret"

    # The console's own ack wants the session's token; the API's state is the judge.
    assert client.post(f"/console/alerts/{alert_id}/ack").status_code == 403
    assert client.post(f"/console/alerts/{alert_id}/ack", headers={"X-CSRF-Token": token + "x"}).status_code == 403
    again = client.post(f"/console/alerts/{alert_id}/ack", headers={"X-CSRF-Token": token})
    assert again.status_code == 200 and again.json()["acknowledged_by"] == "vc-b"  # a second ack changes nothing
    assert client.post(f"/console/alerts/{uuid.uuid4()}/ack", headers={"X-CSRF-Token": token}).status_code == 404
    # Signed out, the token is worth nothing.
    assert client.post("/console/logout", data={"csrf": token}).status_code == 303
    assert client.post(f"/console/alerts/{alert_id}/ack", headers={"X-CSRF-Token": token}).status_code == 401
    client.close()


async def test_a_console_ack_names_the_signed_in_key_in_the_audit_trail(
    notify: ServiceProcess, upstream: Upstream
) -> None:
    # The name is typed at sign-in; the key is what was checked: the trail keeps both, as for the API.
    client = _signed_in(notify.url)
    token = _csrf(client)
    dl = Deadline()
    await upstream.publish(dl.reported(), dl.breached())
    alert_id = await _raised_alert(notify.url)
    acked = client.post(f"/console/alerts/{alert_id}/ack", headers={"X-CSRF-Token": token})
    assert acked.status_code == 200 and acked.json()["acknowledged_by"] == "VC Http"
    client.close()
    audit = httpx.get(f"{notify.url}/v1/alerts/{alert_id}", headers=POLICE).json()["audit"]
    assert [(a["actor"], a["detail"]) for a in audit if a["kind"] == "acknowledged"] == [
        ("key:dev-police", {"by": "VC Http", "via": "console"})]  # fmt: skip


def _cookie(secret: str, session: dict[str, Any]) -> str:
    """A session cookie as Starlette writes it: base64 JSON, signed with a timestamp (itsdangerous)."""
    data = base64.b64encode(json.dumps(session).encode())
    return TimestampSigner(secret).sign(data).decode()


def test_a_sign_in_ends_after_its_time_and_a_cookie_needs_the_secret(notify: ServiceProcess) -> None:
    now = time.time()
    fresh = {"officer": "vc-x", "key": "dev-police", "csrf": "t" * 43, "until": now + 600}
    stale = fresh | {"until": now - 1}
    cases = [
        (DEV_CONSOLE_SECRET, fresh, True),
        (DEV_CONSOLE_SECRET, stale, False),
        ("another-secret" * 3, fresh, False),
    ]
    for secret, session, signed_in in cases:
        with httpx.Client(base_url=notify.url, timeout=10, cookies={"notify_console": _cookie(secret, session)}) as c:
            assert ("Logget ind som" in c.get("/console").text) is signed_in
            if not signed_in:
                assert c.get("/console/events").status_code == 401


def test_guessing_keys_at_the_sign_in_form_is_rate_limited(notify_environment: dict[str, str], tmp_path: Path) -> None:
    tight = notify_environment | {
        "NOTIFY_ANONYMOUS_RATE_LIMIT_PER_MINUTE": "1",
        "NOTIFY_ANONYMOUS_RATE_LIMIT_BURST": "3",
    }
    service = ServiceProcess("notify", tight, tmp_path / "notify-tight.log").start()
    try:
        service.wait_ready()
        with httpx.Client(base_url=service.url, timeout=10) as guesser:
            answers = [guesser.post("/console/login", data={"key": f"guess-{i}"}).status_code for i in range(5)]
        assert answers[:3] == [401, 401, 401]
        assert answers[3:] == [429, 429]
    finally:
        service.stop()
