"""Loop health: which loops count as stalled, and what /readyz and /healthz answer for them."""

from __future__ import annotations

import time

import httpx
from fastapi import FastAPI

from shared.health import Health
from shared.http import ops_router


def test_a_timer_that_completes_no_round_is_stalled_past_its_bound() -> None:
    health = Health("svc", ready_bound=0.05)
    relay = health.loop("outbox relay")
    assert health.stalled() == {}
    time.sleep(0.08)
    assert list(health.stalled()) == ["outbox relay"]
    relay.round_done()
    assert health.stalled() == {}


def test_a_failing_round_does_not_reset_the_stall() -> None:
    health = Health("svc", ready_bound=0.05)
    timer = health.loop("scheduler")
    timer.round_done()
    time.sleep(0.08)
    timer.failed()
    assert list(health.stalled()) == ["scheduler"]


def test_an_idle_consumer_is_not_stalled_but_one_failing_past_its_bound_is() -> None:
    health = Health("svc", ready_bound=0.05)
    consumer = health.loop("consumer cases", idle_ok=True)
    time.sleep(0.08)
    assert health.stalled() == {}  # no messages for a while: fine
    consumer.failed()
    time.sleep(0.03)
    consumer.failed()  # the stall counts from the first failure
    time.sleep(0.03)
    assert list(health.stalled()) == ["consumer cases"]
    consumer.round_done()
    assert health.stalled() == {}


def test_a_loop_that_sleeps_longer_gets_a_wider_bound() -> None:
    health = Health("svc", ready_bound=30.0)
    assert health.loop("slow", sleeps_up_to=20.0).ready_bound == 60.0
    assert health.loop("fast", sleeps_up_to=1.0).ready_bound == 30.0


async def test_liveness_fails_only_while_the_dependencies_answer() -> None:
    health = Health("svc", ready_bound=0.01, live_bound=0.02)
    health.loop("delivery worker")
    time.sleep(0.05)

    async def up() -> bool:
        return True

    async def down() -> bool:
        return False

    assert list(await health.live(up)) == ["delivery worker"]  # stuck although Postgres answers: restart
    assert await health.live(down) == {}  # an outage: restarting cures nothing


async def test_readyz_names_the_stalled_loop_and_healthz_the_stuck_one() -> None:
    health = Health("svc", ready_bound=0.01, live_bound=0.02)
    health.loop("escalation timer")
    fine = health.loop("consumer alerts", idle_ok=True)
    fine.round_done()
    time.sleep(0.05)

    async def ok() -> bool:
        return True

    async def stalled() -> dict[str, float]:
        return health.stalled()

    async def stuck() -> dict[str, float]:
        return await health.live(ok)

    app = FastAPI()
    app.include_router(ops_router({"postgres": ok}, stalled=stalled, stuck=stuck))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        body = ready.json()
        assert body["checks"] == {"postgres": "ok", "loops": "failing"}
        assert list(body["stalled_loops"]) == ["escalation timer"]
        live = await client.get("/healthz")
        assert live.status_code == 503 and list(live.json()["stalled_loops"]) == ["escalation timer"]


def test_the_stall_gauges_are_published() -> None:
    from prometheus_client import REGISTRY

    health = Health("gauge-svc", ready_bound=1.0)
    health.loop("outbox relay").round_done()
    health.publish()
    assert (
        REGISTRY.get_sample_value("service_loop_stalled_seconds", {"service": "gauge-svc", "loop": "outbox relay"})
        == 0.0
    )
    last_round = REGISTRY.get_sample_value(
        "service_loop_last_round_timestamp_seconds", {"service": "gauge-svc", "loop": "outbox relay"}
    )
    assert last_round is not None and last_round > time.time() - 5


def test_a_loop_held_up_by_a_dependency_readiness_does_not_require_keeps_the_service_ready() -> None:
    health = Health("intake", ready_bound=0.01)
    health.required = {"postgres"}  # intake answers without Kafka: the outbox keeps the reports
    relay = health.loop("outbox relay")
    time.sleep(0.03)
    relay.failed(blocked_by="kafka")
    assert health.stalled() == {}
    relay.failed(blocked_by="postgres")
    assert list(health.stalled()) == ["outbox relay"]
    relay.failed()  # cause unknown: counts
    assert list(health.stalled()) == ["outbox relay"]
    health.required = None
    relay.failed(blocked_by="kafka")
    assert list(health.stalled()) == ["outbox relay"]  # a service that needs Kafka is not ready without it
