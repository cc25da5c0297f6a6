"""A breach only when it is one (issue 14): the timer holds what the cases.v1 consumer has not caught up with.

Fault testing found a restarted service breaching deadlines seconds before its consumer was
assigned its partitions, for cases whose `on_scene` had been on the bus since before the due time.
"""

from __future__ import annotations

import math
import uuid
from datetime import timedelta

import httpx
from fastapi import FastAPI

from services.deadlines.metrics import BREACH_GATE_LAG
from shared.events import deadlines as ev
from tests.integration.deadlines.conftest import CasesTopic
from tests.support.cases import action, reported
from tests.support.infra import Namespace
from tests.support.waiting import eventually

RULE = "violence_acute"  # PT4S in the test rules, stopped by on_scene, warned at half time


async def test_a_deadline_waits_for_the_consumer_to_apply_its_stop_action_and_one_without_is_breached(
    ns: Namespace, deadlines_service: tuple[FastAPI, httpx.AsyncClient], cases_topic: CasesTopic
) -> None:
    app, _client = deadlines_service
    runtime = app.state.runtime
    db = runtime.db
    consumer = runtime.consumers[0]
    attended, unattended = uuid.uuid4(), uuid.uuid4()
    received = await db.fetchval("SELECT clock_timestamp()")
    await cases_topic.publish(
        reported(attended, "violence", received, acute=True), reported(unattended, "violence", received, acute=True)
    )

    async def started() -> bool:
        return bool(await db.fetchval("SELECT count(*) FROM deadlines WHERE rule_id = $1", RULE) == 2)

    await eventually(started, timeout=10, step=0.05, what="both deadlines started")
    # The consumer goes away (as in a restart before its partitions are assigned); the patrol
    # arrives a second after the report, and intake puts that on cases.v1 well before the due time.
    await consumer.subscriber.stop()
    await cases_topic.publish(action(attended, "on_scene", received + timedelta(seconds=1), category="violence"))
    due = received + timedelta(seconds=4)

    async def long_past_due() -> bool:
        return bool(await db.fetchval("SELECT clock_timestamp() > $1", due + timedelta(seconds=3)))

    await eventually(long_past_due, timeout=15, what="3 s past the due time")
    states = {r["case_id"]: r["state"] for r in await db.fetch("SELECT case_id, state FROM deadlines")}
    assert states == {attended: "pending", unattended: "pending"}, "breached while the consumer was away"
    assert await db.fetchval("SELECT count(*) FROM deadline_timeline WHERE type = $1", ev.BREACHED) == 0
    lag = BREACH_GATE_LAG._value.get()
    assert math.isinf(lag) or lag >= 3.0  # the hold is visible

    restarted = await db.fetchval("SELECT clock_timestamp()")
    await consumer.subscriber.start()

    async def settled() -> bool:
        rows = await db.fetch("SELECT case_id, state FROM deadlines WHERE rule_id = $1", RULE)
        return {r["case_id"]: r["state"] for r in rows} == {attended: "met", unattended: "breached"}

    await eventually(settled, timeout=30, what="attended met, unattended breached")
    timelines = {
        case: await db.fetch(
            "SELECT t.type, t.data, t.recorded_at FROM deadline_timeline t JOIN deadlines d ON d.id = t.deadline_id"
            " WHERE d.case_id = $1 ORDER BY t.recorded_at",
            case,
        )
        for case in (attended, unattended)
    }
    met = [t for t in timelines[attended] if t["type"] != ev.WARNING]  # a warning may precede the stop
    assert [t["type"] for t in met] == [ev.STARTED, ev.MET]
    assert met[-1]["data"]["late"] is False
    breaches = [t for t in timelines[unattended] if t["type"] == ev.BREACHED]
    assert len(breaches) == 1 and breaches[0]["recorded_at"] >= restarted
    assert await db.fetchval("SELECT count(*) FROM deadline_timeline WHERE type = $1", ev.BREACHED) == 1
    await eventually(lambda: BREACH_GATE_LAG._value.get() < 2.0, timeout=5, what="the gate caught up")
