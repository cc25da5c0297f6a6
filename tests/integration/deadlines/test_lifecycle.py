"""The deadlines service end to end on real Kafka and Postgres, with windows of a few seconds."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta

import httpx
from fastapi import FastAPI

from shared.consumer import ReliableConsumer
from shared.events import CloudEvent
from shared.events import deadlines as ev
from shared.events.deadlines import DeadlineBreached, DeadlineMet, DeadlineStarted, DeadlineWarning
from tests.integration.deadlines.conftest import CasesTopic, now
from tests.support.cases import action, reported
from tests.support.infra import Namespace
from tests.support.kafka_read import read_all
from tests.support.waiting import eventually

POLICE = {"Authorization": "Bearer dev-police-key"}
BURGLARY_24H = "burglary_home_24h"


async def deadline_events(
    ns: Namespace, expect: int | None = None, timeout: float = 20.0, idle_wait: bool = False
) -> list[CloudEvent]:
    records = await read_all(ns.kafka, ns.topics.deadlines, expect=None if idle_wait else expect, timeout=timeout)
    return [CloudEvent.from_bytes(r.value) for r in records]


def of_rule(events: list[CloudEvent], rule: str) -> list[CloudEvent]:
    return [e for e in events if e.data["rule_id"] == rule]


async def test_report_starts_warns_then_breaches_once(
    ns: Namespace, deadlines_service: tuple[FastAPI, httpx.AsyncClient], cases_topic: CasesTopic
) -> None:
    _app, client = deadlines_service
    case = uuid.uuid4()
    received = now()
    await cases_topic.publish(reported(case, "burglary_home", received, in_progress=False, reference="MV-7K3Q-9FX"))

    async def breached() -> bool:
        r = await client.get("/v1/deadlines", params={"state": "breached", "rule": BURGLARY_24H}, headers=POLICE)
        return bool(r.json()["total"] == 1)

    await eventually(breached, timeout=20, what="burglary deadline breached")
    events = of_rule(await deadline_events(ns, expect=3), BURGLARY_24H)
    assert [e.type for e in events] == [ev.STARTED, ev.WARNING, ev.BREACHED]
    started, warning, breach = (e.payload() for e in events)
    assert isinstance(started, DeadlineStarted) and isinstance(warning, DeadlineWarning)
    assert isinstance(breach, DeadlineBreached)
    assert started.basis == "guarantee" and started.window_set_by == "law"
    assert started.due_at == received + timedelta(seconds=4)  # PT4S in the test rules
    assert warning.fraction == 0.5
    assert breach.breached_at == started.due_at
    assert all(e.kommune == "0265" and e.subject == str(case) for e in events)
    # The timer's events come from the stored row: the report's reference survived Postgres.
    assert [e.data["reference"] for e in events] == ["MV-7K3Q-9FX"] * 3

    # The police API shows the same story.
    page = (await client.get("/v1/deadlines", params={"kommune": "265"}, headers=POLICE)).json()
    assert {d["rule_id"] for d in page["items"]} == {BURGLARY_24H, "tryghedsopfoelgning_burglary"}
    detail = (await client.get(f"/v1/deadlines/{started.deadline_id}", headers=POLICE)).json()
    assert [t["type"] for t in detail["timeline"]] == [ev.STARTED, ev.WARNING, ev.BREACHED]
    assert detail["state"] == "breached" and detail["window_set_by"] == "law"
    assert detail["reference"] == "MV-7K3Q-9FX"


async def test_on_scene_before_due_meets_it_and_nothing_breaches(
    ns: Namespace, deadlines_service: tuple[FastAPI, httpx.AsyncClient], cases_topic: CasesTopic
) -> None:
    _app, client = deadlines_service
    case = uuid.uuid4()
    received = now()
    await cases_topic.publish(reported(case, "burglary_home", received, in_progress=False))
    await cases_topic.publish(action(case, "on_scene", received + timedelta(seconds=1), category="burglary_home"))

    async def met() -> bool:
        r = await client.get("/v1/deadlines", params={"state": "met", "rule": BURGLARY_24H}, headers=POLICE)
        return bool(r.json()["total"] == 1)

    await eventually(met, timeout=15)
    await eventually(lambda: now() > received + timedelta(seconds=5), step=0.2)  # well past the due time
    events = of_rule(await deadline_events(ns, idle_wait=True), BURGLARY_24H)
    assert [e.type for e in events] == [ev.STARTED, ev.MET]
    met_event = events[1].payload()
    assert isinstance(met_event, DeadlineMet)
    assert met_event.late is False and 0.9 <= met_event.response_seconds <= 1.1


async def test_an_on_scene_in_time_arriving_after_the_breach_withdraws_it_once(
    ns: Namespace, deadlines_service: tuple[FastAPI, httpx.AsyncClient], cases_topic: CasesTopic
) -> None:
    """Issue 14: the patrol was on scene 2 s into the 4 s window, but the action reached deadlines only
    after the breach had fired (held in intake's outbox). The breach is withdrawn, then met in time;
    the action redelivered changes nothing."""
    _app, client = deadlines_service
    case = uuid.uuid4()
    received = now()
    await cases_topic.publish(reported(case, "burglary_home", received, in_progress=False))

    async def state_is(state: str) -> bool:
        r = await client.get("/v1/deadlines", params={"state": state, "rule": BURGLARY_24H}, headers=POLICE)
        return bool(r.json()["total"] == 1)

    await eventually(lambda: state_is("breached"), timeout=20, what="burglary deadline breached")
    on_scene = action(case, "on_scene", received + timedelta(seconds=2), category="burglary_home")
    await cases_topic.publish(on_scene)
    await eventually(lambda: state_is("met"), timeout=15, what="burglary deadline met")
    await cases_topic.publish(on_scene)  # redelivered
    events = of_rule(await deadline_events(ns, idle_wait=True, timeout=4), BURGLARY_24H)
    assert [e.type for e in events] == [ev.STARTED, ev.WARNING, ev.BREACHED, ev.BREACH_WITHDRAWN, ev.MET]
    breach, withdrawn, met = (e.payload() for e in events[2:])
    assert isinstance(withdrawn, ev.DeadlineBreachWithdrawn) and isinstance(met, ev.DeadlineMet)
    assert withdrawn.breached_at == breach.breached_at == withdrawn.due_at  # type: ignore[attr-defined]
    assert (withdrawn.action, withdrawn.action_at, withdrawn.reason) == (
        "on_scene", received + timedelta(seconds=2), "action_in_time",
    )  # fmt: skip
    assert met.late is False
    assert events[3].kommune == "0265" and events[3].subject == str(case)

    detail = (await client.get(f"/v1/deadlines/{withdrawn.deadline_id}", headers=POLICE)).json()
    assert (detail["state"], detail["late"], detail["breach_stands"], detail["breached_at"]) == (
        "met",
        False,
        False,
        None,
    )
    # The timeline is in the order things happened: the patrol came before the breach was (wrongly) declared.
    timeline = [t["type"] for t in detail["timeline"]]
    assert timeline[-2:] == [ev.BREACHED, ev.BREACH_WITHDRAWN]
    assert sorted(timeline) == sorted([ev.STARTED, ev.WARNING, ev.BREACHED, ev.BREACH_WITHDRAWN, ev.MET])


async def test_the_same_report_delivered_twice_makes_one_deadline(
    ns: Namespace, deadlines_service: tuple[FastAPI, httpx.AsyncClient], cases_topic: CasesTopic
) -> None:
    app, client = deadlines_service
    event = reported(uuid.uuid4(), "violence", now(), acute=True)
    await cases_topic.publish(event, event)

    async def started() -> bool:
        r = await client.get("/v1/deadlines", headers=POLICE)
        return bool(r.json()["total"] >= 1)

    await eventually(started, timeout=15)
    consumed = app.state.runtime.consumers[0]
    await eventually(lambda: _duplicates_seen(consumed) >= 1, timeout=10, what="second copy consumed")
    page = (await client.get("/v1/deadlines", headers=POLICE)).json()
    assert page["total"] == 1 and page["items"][0]["rule_id"] == "violence_acute"
    started_events = [e for e in await deadline_events(ns, expect=1) if e.type == ev.STARTED]
    assert len(started_events) == 1


def _duplicates_seen(consumer: ReliableConsumer) -> float:
    from shared.metrics import CONSUMED

    return float(CONSUMED.labels("deadlines", consumer.spec.name, consumer.spec.topics[0], "duplicate")._value.get())


async def test_an_action_before_its_report_still_meets_the_deadline(
    ns: Namespace, deadlines_service: tuple[FastAPI, httpx.AsyncClient], cases_topic: CasesTopic
) -> None:
    _app, client = deadlines_service
    case = uuid.uuid4()
    received = now()
    arrived = received + timedelta(seconds=1)
    await cases_topic.publish(action(case, "on_scene", arrived, category="burglary_home"))
    await cases_topic.publish(reported(case, "burglary_home", received, in_progress=True))

    async def met() -> bool:
        r = await client.get("/v1/deadlines", params={"state": "met"}, headers=POLICE)
        return bool(r.json()["total"] == 1)

    await eventually(met, timeout=15)
    events = of_rule(await deadline_events(ns, expect=2), "burglary_home_in_progress")
    assert [e.type for e in events] == [ev.STARTED, ev.MET]
    met_event = events[1].payload()
    assert isinstance(met_event, DeadlineMet) and met_event.late is False


async def test_police_api_needs_the_police_role(deadlines_service: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _, client = deadlines_service
    assert (await client.get("/v1/deadlines")).status_code == 401
    r = await client.get("/v1/deadlines", headers={"Authorization": "Bearer dev-portal-key"})
    assert r.status_code == 403
    bad = await client.get("/v1/deadlines", params={"kommune": "0101", "state": "open"}, headers=POLICE)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "kommune"
    missing = await client.get(f"/v1/deadlines/{uuid.uuid4()}", headers=POLICE)
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    ready = await client.get("/readyz")
    assert ready.json() == {"status": "ready", "checks": {"postgres": "ok", "kafka": "ok", "loops": "ok"}}


def count_types(events: list[CloudEvent]) -> Counter[str]:
    return Counter(e.type for e in events)
