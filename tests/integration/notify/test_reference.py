"""An alert names its case by reference even when the deadline event overtakes the case event on cases.v1."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
from fastapi import FastAPI
from standardwebhooks import Webhook

from services.notify import handlers
from services.notify.adapters.policy_file import load_policy
from services.notify.adapters.repository import PostgresNotifyRepository
from services.notify.adapters.roster_file import load_roster
from services.notify.domain.alert import alert_id_for
from shared.db import create_pool
from shared.events import alerts as ev
from shared.unit_of_work import InTransaction
from tests.integration.notify.conftest import Deadline, TestRoster, Upstream, alert_events, alert_of
from tests.support.infra import Namespace
from tests.support.receivers import SmtpSink, WebhookReceiver
from tests.support.waiting import eventually
from tests.testdata import SECONDS_POLICY_FILE


async def test_a_deadline_event_before_its_case_event_still_raises_an_alert_with_the_reference(
    ns: Namespace,
    notify_service: tuple[FastAPI, httpx.AsyncClient],
    upstream: Upstream,
    receiver: WebhookReceiver,
    smtp: SmtpSink,
    roster: TestRoster,
) -> None:
    _, client = notify_service
    deadline = Deadline()
    # Only the deadline event: notify has not seen cases.v1 for this case when the alert is raised
    # and its webhook and e-mail are sent.
    await upstream.publish(deadline.warning(0.5))
    await eventually(lambda: receiver.delivered("/lb1") and smtp.to("lb2@politi.example"), timeout=20,
                     what="warning delivered to both lokalbetjente")  # fmt: skip

    hook = receiver.delivered("/lb1")[0]
    payload = Webhook(roster.secrets["/lb1"]).verify(hook.body, hook.headers)
    assert payload["alert"]["reference"] == deadline.reference
    mail = smtp.to("lb2@politi.example")[0]
    assert f"Sag: {deadline.reference}" in mail.get_content() and deadline.reference in mail["Subject"]
    raised = [e for e in await alert_events(ns) if e.type == ev.RAISED]
    assert len(raised) == 1 and raised[0].data["reference"] == deadline.reference
    alert_id = str(alert_id_for(deadline.case_id, deadline.rule))
    assert (await alert_of(client, alert_id))["reference"] == deadline.reference

    # The case event arriving late changes nothing and breaks nothing.
    await upstream.publish(deadline.reported())
    await asyncio.sleep(1.5)
    assert (await alert_of(client, alert_id))["reference"] == deadline.reference


async def test_a_deadline_event_without_a_reference_takes_the_one_remembered_from_cases(
    ns: Namespace, notify_schema: str, roster: TestRoster
) -> None:
    # Events written before deadlines carried the reference still name the case, once cases.v1 told it.
    policy, people = load_policy(SECONDS_POLICY_FILE), load_roster(roster.path)
    ctx = handlers.Context(policy=lambda: policy, roster=lambda: people, alerts_topic=ns.topics.alerts)
    deadline = Deadline()
    deadline.carries_reference = False
    reported, warning = deadline.reported(), deadline.warning()
    assert warning.data["reference"] is None
    pool = await create_pool(ns.database_url, notify_schema, application="notify-tests")
    try:
        async with pool.acquire() as conn, conn.transaction():
            uow = InTransaction(conn, lambda c: PostgresNotifyRepository(c, topic=ctx.alerts_topic))
            await handlers.handle_case_event(uow, reported.meta, reported.payload())
            applied = await handlers.handle_deadline_event(uow, warning.meta, warning.payload(), ctx, datetime.now(UTC))
    finally:
        await pool.close()
    raised = [e for e in applied.events if e.type == ev.RAISED]
    assert len(raised) == 1 and raised[0].data["reference"] == deadline.reference
