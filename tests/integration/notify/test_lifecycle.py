"""An alert's life on real Kafka, Postgres, SMTP and HTTP: raised, delivered once, escalated or acked, resolved."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from fastapi import FastAPI
from standardwebhooks import Webhook

from services.notify.domain.alert import alert_id_for
from shared.events import alerts as ev
from tests.integration.notify.conftest import POLICE, Deadline, TestRoster, Upstream, alert_events, alert_of
from tests.support.infra import Namespace
from tests.support.receivers import SmtpSink, WebhookReceiver
from tests.support.waiting import eventually


async def test_a_warning_reaches_the_kommunes_officers_once_and_an_ack_stops_escalation(
    ns: Namespace,
    notify_service: tuple[FastAPI, httpx.AsyncClient],
    upstream: Upstream,
    receiver: WebhookReceiver,
    smtp: SmtpSink,
    roster: TestRoster,
) -> None:
    _, client = notify_service
    deadline = Deadline()
    await upstream.publish(deadline.reported())
    await upstream.publish(deadline.warning(0.5))
    alert_id = str(alert_id_for(deadline.case_id, deadline.rule))

    await eventually(lambda: receiver.delivered("/lb1") and smtp.to("lb2@politi.example"), timeout=20,
                     what="warning delivered to both lokalbetjente")  # fmt: skip
    hook = receiver.delivered("/lb1")[0]
    payload = Webhook(roster.secrets["/lb1"]).verify(hook.body, hook.headers)  # an independent verifier
    assert payload["alert"]["reference"] == deadline.reference
    assert payload["alert"]["kommune"] == "0265" and payload["stage"] == "raised"
    assert hook.headers["webhook-id"] == payload["delivery_id"]
    mail = smtp.to("lb2@politi.example")[0]
    assert "Frist nærmer sig" in mail.get_content() and deadline.reference in mail.get_content()
    assert mail["Message-ID"].startswith("<") and mail["Content-Language"] == "da"

    # lb-roskilde-2 acknowledges through the API: escalation (after 3 s) never happens.
    answer = await client.post(f"/v1/alerts/{alert_id}/ack", headers=POLICE, json={"by": "lb-roskilde-2"})
    assert answer.status_code == 200 and answer.json()["state"] == "acknowledged"
    await eventually(lambda: len(receiver.delivered("/lb1")) == 2, timeout=15, what="the others told of the ack")
    told = json.loads(receiver.delivered("/lb1")[1].body)
    assert told["alert"]["acknowledged_by"] == "lb-roskilde-2" and told["type"] == "alert.acknowledged"
    await asyncio.sleep(4.5)  # past the 3 s ack timeout: nothing more may come
    assert receiver.to("/vagtchef") == [] and receiver.to("/vagtcentral") == []
    assert len(smtp.to("lb2@politi.example")) == 1  # the acker is not told of their own ack
    assert [h.headers["webhook-id"] for h in receiver.to("/lb1")] == [h.headers["webhook-id"] for h in
                                                                      receiver.delivered("/lb1")]  # fmt: skip

    events = await alert_events(ns)
    kinds = Counter(e.type for e in events)
    assert kinds[ev.RAISED] == 1 and kinds[ev.ACKNOWLEDGED] == 1 and kinds[ev.ESCALATED] == 0
    assert kinds[ev.DELIVERED] == 3  # lb1 raised, lb2 raised, lb1 told of the ack
    raised = next(e for e in events if e.type == ev.RAISED)
    assert raised.kommune == "0265" and raised.subject == str(deadline.case_id)
    assert raised.data["reference"] == deadline.reference and raised.data["category"] == "burglary_home"
    assert set(raised.data["recipients"]) == {"lb-roskilde-1", "lb-roskilde-2"}
    detail = await alert_of(client, alert_id)
    assert [a["kind"] for a in detail["audit"]][:1] == ["raised"]
    assert {"delivered", "acknowledged"} <= {a["kind"] for a in detail["audit"]}


async def test_a_breach_reaches_the_vagtchef_and_without_ack_escalates_then_reminds(
    ns: Namespace,
    notify_service: tuple[FastAPI, httpx.AsyncClient],
    upstream: Upstream,
    receiver: WebhookReceiver,
    smtp: SmtpSink,
    roster: TestRoster,
) -> None:
    _, client = notify_service
    deadline = Deadline()
    await upstream.publish(deadline.reported(), deadline.breached())
    alert_id = str(alert_id_for(deadline.case_id, deadline.rule))

    await eventually(lambda: receiver.delivered("/vagtchef"), timeout=20, what="breach to the vagtchef")
    first = json.loads(receiver.delivered("/vagtchef")[0].body)
    assert first["alert"]["severity"] == "critical" and first["alert"]["reason"] == "deadline_breached"
    assert first["ack_url"].startswith(f"http://127.0.0.1:8003/v1/alerts/{alert_id}/ack-link?token=")
    # Chain akut: 3 s without ack -> the vagtcentral; then reminders to it every 3 s.
    await eventually(lambda: receiver.delivered("/vagtcentral"), timeout=15, what="escalation to the vagtcentral")
    await eventually(lambda: len(receiver.delivered("/vagtcentral")) >= 2, timeout=15, what="a reminder")
    stages = [json.loads(h.body)["stage"] for h in receiver.delivered("/vagtcentral")]
    assert stages[:2] == ["deadline_breached-escalated-1", "deadline_breached-reminder-1"]

    detail = await alert_of(client, alert_id)
    assert detail["state"] == "escalated" and detail["level"] == 1
    # The shared desk's messages carry no ack link, and a key cannot acknowledge as the desk: a person takes it.
    assert all(json.loads(h.body)["ack_url"] is None for h in receiver.delivered("/vagtcentral"))
    desk = await client.post(f"/v1/alerts/{alert_id}/ack", headers=POLICE, json={"by": "vagtcentral"})
    assert desk.status_code == 422 and "shared desk" in desk.text
    answer = await client.post(f"/v1/alerts/{alert_id}/ack", headers=POLICE, json={"by": "vc-b"})
    assert answer.status_code == 200 and answer.json()["acknowledged_by_name"] == "Vagtchef B"
    reminders_then = len(receiver.delivered("/vagtcentral"))
    await asyncio.sleep(4.5)
    # An ack stops reminders at once; the desk is only told who took it.
    after = [json.loads(h.body) for h in receiver.delivered("/vagtcentral")[reminders_then:]]
    assert [(m["stage"].split("-")[0], m["alert"]["acknowledged_by"]) for m in after] == [("acknowledged", "vc-b")]
    kinds = Counter(e.type for e in await alert_events(ns))
    assert kinds[ev.ESCALATED] == 1 and kinds[ev.ACKNOWLEDGED] == 1


async def test_met_resolves_and_tells_everyone_notified_and_a_late_breach_changes_nothing(
    ns: Namespace,
    notify_service: tuple[FastAPI, httpx.AsyncClient],
    upstream: Upstream,
    receiver: WebhookReceiver,
    smtp: SmtpSink,
) -> None:
    _, client = notify_service
    deadline = Deadline()
    await upstream.publish(deadline.reported(), deadline.warning())
    await eventually(lambda: receiver.delivered("/lb1") and smtp.to("lb2@politi.example"), timeout=20)
    await upstream.publish(deadline.met())
    await eventually(lambda: len(smtp.to("lb2@politi.example")) == 2, timeout=15, what="resolve told")
    assert "Afsluttet" in smtp.to("lb2@politi.example")[1].get_content()
    await upstream.publish(deadline.breached())  # late: the deadline was met
    await asyncio.sleep(3)
    detail = await alert_of(client, str(alert_id_for(deadline.case_id, deadline.rule)))
    assert detail["state"] == "resolved" and detail["resolved_reason"] == "met"
    assert receiver.to("/vagtchef") == []
    assert "ignored" in [a["kind"] for a in detail["audit"]]
    listed = await client.get("/v1/alerts", params={"state": "resolved", "kommune": "265"}, headers=POLICE)
    assert listed.status_code == 200 and listed.json()["total"] == 1
    assert (await client.get("/v1/alerts", params={"kommune": "9999"}, headers=POLICE)).status_code == 422
    assert (await client.get("/v1/alerts")).status_code == 401


async def test_an_ack_link_shows_a_form_on_get_acks_on_post_and_works_once(
    ns: Namespace, notify_service: tuple[FastAPI, httpx.AsyncClient], upstream: Upstream, receiver: WebhookReceiver
) -> None:
    _, client = notify_service
    deadline = Deadline()
    await upstream.publish(deadline.reported(), deadline.warning())
    await eventually(lambda: receiver.delivered("/lb1"), timeout=20)
    link = httpx.URL(json.loads(receiver.delivered("/lb1")[0].body)["ack_url"])
    path = link.path
    token = link.params["token"]
    page = await client.get(path, params={"token": token})
    assert page.status_code == 200 and "<form" in page.text and 'method="post"' in page.text
    alert_id = str(alert_id_for(deadline.case_id, deadline.rule))
    assert (await alert_of(client, alert_id))["state"] == "open"  # a prefetch acknowledges nothing
    done = await client.post(path, content=f"token={token}",
                             headers={"content-type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert done.status_code == 200 and "lb-roskilde-1" in done.text
    detail = await alert_of(client, alert_id)
    assert detail["state"] == "acknowledged" and detail["acknowledged_by"] == "lb-roskilde-1"
    again = await client.post(path, content=f"token={token}",
                              headers={"content-type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert again.status_code == 409
    forged = await client.get(path, params={"token": token[:-3] + "abc"})
    assert forged.status_code == 400 and "<form" not in forged.text


async def test_an_acute_report_goes_to_the_vagtchef_at_once_as_critical(
    ns: Namespace, notify_service: tuple[FastAPI, httpx.AsyncClient], upstream: Upstream, receiver: WebhookReceiver
) -> None:
    _, client = notify_service
    acute = Deadline(rule="violence_acute", category="violence")
    plain = Deadline()  # a 24-hour burglary raises nothing when it starts
    await upstream.publish(acute.reported(), acute.started(), plain.reported(), plain.started())
    await eventually(lambda: receiver.delivered("/vagtchef"), timeout=20, what="acute alert to the vagtchef")
    payload = json.loads(receiver.delivered("/vagtchef")[0].body)
    assert (payload["alert"]["reason"], payload["alert"]["severity"]) == ("acute_report", "critical")
    listed = (await client.get("/v1/alerts", headers=POLICE)).json()
    assert listed["total"] == 1 and listed["items"][0]["rule_id"] == "violence_acute"
    assert listed["items"][0]["deliveries"][0]["recipient_id"] in ("vc-a", "vc-b")


async def test_a_breach_withdrawn_resolves_the_alert_and_tells_everyone_paged_why(
    ns: Namespace,
    notify_service: tuple[FastAPI, httpx.AsyncClient],
    upstream: Upstream,
    receiver: WebhookReceiver,
    smtp: SmtpSink,
) -> None:
    """Issue 14: the breach paged the vagtchef and the lokalbetjente; then the on_scene that happened before
    the due time reached deadlines. Everyone told of the breach is told, in Danish, it is taken back and why."""
    _, client = notify_service
    deadline = Deadline()
    breach = deadline.breached()
    await upstream.publish(deadline.reported(), breach)
    await eventually(lambda: receiver.delivered("/vagtchef") and receiver.delivered("/lb1")
                     and smtp.to("lb2@politi.example"), timeout=20, what="the breach told")  # fmt: skip
    on_scene = breach.time - timedelta(minutes=7)
    await upstream.publish(deadline.breach_withdrawn(on_scene, breach.time), deadline.met(on_scene))
    alert_id = str(alert_id_for(deadline.case_id, deadline.rule))

    def resolutions(path: str) -> list[dict[str, Any]]:
        return [b for b in (json.loads(h.body) for h in receiver.delivered(path)) if b["type"] == "alert.resolved"]

    await eventually(lambda: resolutions("/vagtchef") and resolutions("/lb1") and len(smtp.to("lb2@politi.example")) >= 2,
                     timeout=20, what="the withdrawal told")  # fmt: skip
    clock = on_scene.astimezone(ZoneInfo("Europe/Copenhagen")).strftime("%H:%M")
    sentence = f"Fristoverskridelsen er trukket tilbage, fordi handlingen (Patrulje fremme) er registreret kl. {clock}"
    for path in ("/vagtchef", "/lb1"):
        [resolution] = resolutions(path)
        assert resolution["resolved_reason"] == "breach_withdrawn" and resolution["alert"]["state"] == "resolved"
        assert resolution["text"].startswith("[Trukket tilbage] Frist overskredet") and sentence in resolution["text"]
    mail = smtp.to("lb2@politi.example")[-1]
    assert mail["Subject"].startswith("[Trukket tilbage]") and sentence in mail.get_content()

    detail = await alert_of(client, alert_id)
    assert (detail["state"], detail["resolved_reason"]) == ("resolved", "breach_withdrawn")

    # Every recipient told of the breach is told of its withdrawal, once (the delivery events follow the sends).
    def told(events: list[Any], stages: tuple[str, ...]) -> Counter[str]:
        return Counter(e.data["recipient"] for e in events if e.type == ev.DELIVERED and e.data["stage"] in stages)

    async def everyone_told() -> bool:
        events = await alert_events(ns)
        return bool(told(events, ("raised", "breached"))) and set(told(events, ("raised", "breached"))) <= set(
            told(events, ("resolved",))
        )

    await eventually(everyone_told, timeout=15, what="every delivery of the withdrawal recorded")
    events = await alert_events(ns)
    assert set(told(events, ("resolved",)).values()) == {1}
    resolved = [e for e in events if e.type == ev.RESOLVED]
    assert [e.data["reason"] for e in resolved] == ["breach_withdrawn"]  # once: the met after it changed nothing
