"""A channel that fails: retries that honour Retry-After, then the recipient's next channel; nothing twice elsewhere."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
from fastapi import FastAPI

from services.notify.domain.alert import alert_id_for
from shared.events import alerts as ev
from tests.integration.notify.conftest import Deadline, Upstream, alert_events, alert_of
from tests.support.infra import Namespace
from tests.support.receivers import Plan, SmtpSink, WebhookReceiver
from tests.support.waiting import eventually


async def test_webhook_down_retries_then_falls_back_to_email_and_resends_nothing_that_worked(
    ns: Namespace,
    notify_service: tuple[FastAPI, httpx.AsyncClient],
    upstream: Upstream,
    receiver: WebhookReceiver,
    smtp: SmtpSink,
) -> None:
    _, client = notify_service
    # lb-roskilde-1's webhook: busy (503, Retry-After 1 s), then down for good.
    receiver.plans["/lb1"] = Plan(statuses=[(503, {"Retry-After": "1"})], always=(503, {}))
    deadline = Deadline()
    await upstream.publish(deadline.reported(), deadline.warning())

    await eventually(lambda: smtp.to("lb1@politi.example"), timeout=30, what="fallback e-mail to lb-roskilde-1")
    attempts = receiver.to("/lb1")
    assert len(attempts) == 3  # max_attempts in the test settings
    assert len({h.headers["webhook-id"] for h in attempts}) == 1  # one delivery, one id across retries
    assert attempts[1].at - attempts[0].at >= 1.0  # the receiver asked for a second; it got at least that
    assert "Frist nærmer sig" in smtp.to("lb1@politi.example")[0].get_content()

    await asyncio.sleep(2)
    assert len(smtp.to("lb2@politi.example")) == 1  # the channel that worked was not used again
    assert len(smtp.to("lb1@politi.example")) == 1
    events = await alert_events(ns)
    failed = [e for e in events if e.type == ev.DELIVERY_FAILED]
    assert len(failed) == 1
    assert (failed[0].data["channel"], failed[0].data["next_channel"], failed[0].data["attempt"]) == (
        "webhook", "email", 3,
    )  # fmt: skip
    # (Unacknowledged, the alert also escalated to the vagtchef meanwhile: that is another stage.)
    delivered = Counter(
        (e.data["recipient"], e.data["channel"])
        for e in events
        if e.type == ev.DELIVERED and e.data["stage"] == "raised"
    )
    assert delivered == Counter({("lb-roskilde-1", "email"): 1, ("lb-roskilde-2", "email"): 1})
    detail = await alert_of(client, str(alert_id_for(deadline.case_id, deadline.rule)))
    trail = [a["kind"] for a in detail["audit"]]
    assert trail.count("delivery_attempt_failed") == 2 and trail.count("delivery_failed") == 1
    states = Counter((d["recipient_id"], d["channel"], d["state"]) for d in detail["deliveries"])
    assert states[("lb-roskilde-1", "webhook", "failed")] == 1
    assert states[("lb-roskilde-1", "email", "delivered")] == 1


async def test_410_disables_the_endpoint_for_later_alerts_too(
    ns: Namespace,
    notify_service: tuple[FastAPI, httpx.AsyncClient],
    upstream: Upstream,
    receiver: WebhookReceiver,
    smtp: SmtpSink,
) -> None:
    receiver.plans["/lb1"] = Plan(always=(410, {}))
    first, second = Deadline(), Deadline()
    await upstream.publish(first.reported(), first.warning())
    await eventually(lambda: smtp.to("lb1@politi.example"), timeout=20, what="next channel after 410")
    assert len(receiver.to("/lb1")) == 1  # a 410 is not retried
    await upstream.publish(second.reported(), second.warning())
    await eventually(lambda: len(smtp.to("lb1@politi.example")) == 2, timeout=20, what="second alert by e-mail")
    assert len(receiver.to("/lb1")) == 1  # the disabled endpoint was not called again
    failed = [e for e in await alert_events(ns) if e.type == ev.DELIVERY_FAILED]
    assert len(failed) == 2 and all(e.data["next_channel"] == "email" for e in failed)


async def test_every_channel_failing_hands_the_alert_to_the_vagtcentral(
    ns: Namespace,
    notify_service: tuple[FastAPI, httpx.AsyncClient],
    upstream: Upstream,
    receiver: WebhookReceiver,
    smtp: SmtpSink,
) -> None:
    receiver.plans["/lb1"] = Plan(always=(400, {}))  # refused for good: no retries
    smtp.stop()  # and no mail server: both of lb-roskilde-1's channels fail
    deadline = Deadline()
    await upstream.publish(deadline.reported(), deadline.warning())
    await eventually(lambda: receiver.delivered("/vagtcentral"), timeout=40, what="vagtcentral takes over")
    assert len(receiver.delivered("/vagtcentral")) == 1
    failed = [e for e in await alert_events(ns) if e.type == ev.DELIVERY_FAILED]
    assert any(e.data["recipient"] == "lb-roskilde-1" and e.data["next_channel"] == "vagtcentral:webhook"
               for e in failed)  # fmt: skip
