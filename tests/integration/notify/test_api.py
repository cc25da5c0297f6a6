"""Notify's HTTP edge as a hostile or careless client meets it: fixed error wording, acks, ack links."""

from __future__ import annotations

import json
import uuid

import httpx
from fastapi import FastAPI

from services.notify.bootstrap import build_app
from services.notify.domain.alert import alert_id_for
from tests.integration.notify.conftest import POLICE, Deadline, TestRoster, Upstream, alert_of, settings_for
from tests.support.infra import Namespace
from tests.support.receivers import SmtpSink, WebhookReceiver
from tests.support.services import in_process
from tests.support.waiting import eventually


async def _delivered(upstream: Upstream, receiver: WebhookReceiver, stage: str, path: str) -> tuple[Deadline, str]:
    """A new deadline's `stage` (warning, breached) published and delivered on `path`: the deadline and its alert id."""
    deadline = Deadline()
    await upstream.publish(deadline.reported(), getattr(deadline, stage)())
    await eventually(lambda: receiver.delivered(path), timeout=20, what=f"the {stage} delivered on {path}")
    return deadline, str(alert_id_for(deadline.case_id, deadline.rule))


async def test_a_bad_kommune_filter_is_answered_without_repeating_it(
    notify_service: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = notify_service
    typed = "ring 22 33 44 55 <b>" + "x" * 3000
    response = await client.get("/v1/alerts", params={"kommune": typed}, headers=POLICE)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "22 33 44 55" not in response.text and "xxxx" not in response.text and "<b>" not in response.text
    assert [e["message"] for e in response.json()["errors"]] == ["Not a kommunekode of the district, such as 0265."]


async def test_a_warnings_ack_link_cannot_acknowledge_the_breach_that_superseded_it(
    notify_service: tuple[FastAPI, httpx.AsyncClient], upstream: Upstream, receiver: WebhookReceiver
) -> None:
    _, client = notify_service
    deadline, alert_id = await _delivered(upstream, receiver, "warning", "/lb1")
    link = httpx.URL(json.loads(receiver.delivered("/lb1")[0].body)["ack_url"])
    await upstream.publish(deadline.breached())

    async def breached() -> bool:
        return bool((await alert_of(client, alert_id))["reason"] == "deadline_breached")

    await eventually(breached, timeout=20, what="the breach supersedes the warning")
    page = await client.get(link.path, params={"token": link.params["token"]})
    assert page.status_code == 409 and "<form" not in page.text and "skærpet" in page.text
    done = await client.post(link.path, content=f"token={link.params['token']}",
                             headers={"content-type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert done.status_code == 409 and "skærpet" in done.text and "moved on" in done.text
    detail = await alert_of(client, alert_id)
    assert detail["state"] == "open" and detail["acknowledged_by"] is None  # the breach still escalates


async def test_a_police_key_acknowledges_only_as_an_officer_of_the_roster_and_is_named(
    notify_service: tuple[FastAPI, httpx.AsyncClient], upstream: Upstream, receiver: WebhookReceiver
) -> None:
    _, client = notify_service
    _, alert_id = await _delivered(upstream, receiver, "warning", "/lb1")
    for nobody in (None, {}, {"by": ""}):  # a key alone names no person: refused, nothing recorded
        anonymous = await client.post(f"/v1/alerts/{alert_id}/ack", json=nobody, headers=POLICE)
        assert anonymous.status_code == 422 and anonymous.json()["errors"][0]["field"] == "by", anonymous.text
    forged = await client.post(f"/v1/alerts/{alert_id}/ack", json={"by": "Rigspolitichefen"}, headers=POLICE)
    assert forged.status_code == 422 and "Rigspolitichefen" not in forged.text
    assert [e["field"] for e in forged.json()["errors"]] == ["by"]
    assert (await alert_of(client, alert_id))["state"] == "open"
    done = await client.post(f"/v1/alerts/{alert_id}/ack", json={"by": "lb-roskilde-2"}, headers=POLICE)
    assert done.status_code == 200 and done.json()["acknowledged_by"] == "lb-roskilde-2"
    acked = [a for a in (await alert_of(client, alert_id))["audit"] if a["kind"] == "acknowledged"]
    assert [(a["actor"], a["detail"]["by"]) for a in acked] == [("key:dev-police", "lb-roskilde-2")]


async def test_ack_links_are_rate_limited_per_address_like_keyless_calls(
    ns: Namespace, notify_schema: str, roster: TestRoster, smtp: SmtpSink
) -> None:
    app = build_app(settings_for(ns, roster, smtp, anonymous_rate_limit_burst=3, anonymous_rate_limit_per_minute=1))
    async with in_process(app) as client:
        path = f"/v1/alerts/{uuid.uuid4()}/ack-link"
        form = {"content-type": "application/x-www-form-urlencoded"}
        answers = [(await client.get(path, params={"token": "guess"})).status_code for _ in range(2)]
        answers.append((await client.post(path, content="token=guess", headers=form)).status_code)
        assert answers == [400, 400, 400]  # guesses: refused, and each one counted
        over = await client.post(path, content="token=guess", headers=form)
        assert over.status_code == 429 and "retry-after" in over.headers
        assert (await client.get(path, params={"token": "guess"})).status_code == 429


async def test_a_second_breach_after_a_reschedule_reaches_the_vagtchef_again(
    notify_service: tuple[FastAPI, httpx.AsyncClient], upstream: Upstream, receiver: WebhookReceiver
) -> None:
    _, client = notify_service
    deadline, alert_id = await _delivered(upstream, receiver, "breached", "/vagtchef")
    # The vagtchef on duty acknowledges (vc-a by day, vc-b by night): an ack by anyone else would tell the one on
    # duty "acknowledged" on the same webhook, and that notice is not the second breach this test waits for.
    (on_duty,) = {d["recipient_id"] for d in (await alert_of(client, alert_id))["deliveries"]} & {"vc-a", "vc-b"}
    acked = await client.post(f"/v1/alerts/{alert_id}/ack", json={"by": on_duty}, headers=POLICE)
    assert acked.status_code == 200
    deadline.reschedules = 1
    await upstream.publish(deadline.breached())
    await eventually(lambda: len(receiver.delivered("/vagtchef")) == 2, timeout=20, what="the second breach told")
    second = json.loads(receiver.delivered("/vagtchef")[1].body)
    assert second["stage"] == "breached-g1" and second["ack_url"]
    detail = await alert_of(client, alert_id)
    assert detail["state"] == "open" and detail["acknowledged_by"] is None
