"""What a citizen sees while Kafka or Postgres is away, and what is left behind afterwards."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from services.intake.bootstrap import build_app
from shared.events import CloudEvent
from tests.integration.intake.conftest import PORTAL, outbox_pending, report, running, settings_for
from tests.support.infra import LocalKafka, Namespace
from tests.support.kafka_read import read_all
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import eventually


def gauge(metrics: str, name: str) -> float:
    line = next(line for line in metrics.splitlines() if line.startswith(f'{name}{{service="intake"}}'))
    return float(line.rsplit(" ", 1)[1])


async def test_with_the_broker_stopped_reports_are_accepted_and_arrive_once_it_is_back(
    ns: Namespace, intake_schema: str, db: asyncpg.Pool, local_kafka: LocalKafka
) -> None:
    app = build_app(settings_for(ns, kafka_send_timeout_seconds=2.0))
    async with running(app) as client:
        local_kafka.stop()
        try:
            started = time.monotonic()
            answers = [await client.post("/v1/reports", json=report(), headers=PORTAL) for _ in range(5)]
            assert [r.status_code for r in answers] == [202] * 5
            assert time.monotonic() - started < 5  # no request waited on Kafka
            ready = await client.get("/readyz")
            assert ready.status_code == 200  # still taking reports: the outbox holds them

            async def backlog_shown() -> bool:
                metrics = (await client.get("/metrics")).text
                return (
                    gauge(metrics, "outbox_backlog_events") == 5
                    and gauge(metrics, "outbox_oldest_pending_age_seconds") > 0
                )

            await eventually(backlog_shown, timeout=15, what="/metrics shows the 5 waiting events")
            assert await outbox_pending(db) == 5
        finally:
            local_kafka.start()
        await local_kafka.wait_ready()
        await eventually(lambda: _none_pending(db), timeout=60, what="outbox drained after Kafka came back")
    records = await read_all(ns.kafka, ns.topics.cases, expect=5)
    assert sorted(CloudEvent.from_bytes(r.value).subject for r in records) == sorted(
        a.json()["case_id"] for a in answers
    )


async def _none_pending(db: asyncpg.Pool) -> bool:
    return await outbox_pending(db) == 0


@pytest.fixture
async def postgres_proxy(ns: Namespace) -> AsyncIterator[TcpProxy]:
    proxy = await TcpProxy.to(ns.database_url).start()
    yield proxy
    await proxy.stop()


async def test_with_postgres_stopped_the_answer_is_503_problem_json_and_nothing_is_saved(
    ns: Namespace, intake_schema: str, db: asyncpg.Pool, postgres_proxy: TcpProxy
) -> None:
    settings = settings_for(ns, database_url=postgres_proxy.url(ns.database_url), db_acquire_timeout_seconds=2.0)
    app = build_app(settings)
    async with running(app) as client:
        before = await client.post("/v1/reports", json=report(), headers=PORTAL)
        assert before.status_code == 202
        await postgres_proxy.cut()
        started = time.monotonic()
        refused = await client.post("/v1/reports", json=report(description="Refused while Postgres was away"),
                                    headers=PORTAL | {"Idempotency-Key": "while-down"})  # fmt: skip
        assert time.monotonic() - started < 5
        assert refused.status_code == 503, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert int(refused.headers["retry-after"]) > 0
        assert "nothing was saved" in refused.json()["detail"]
        status = await client.get(before.json()["status_url"], headers=PORTAL)
        assert status.status_code == 503
        assert (await client.get("/readyz")).status_code == 503
        metrics = (await client.get("/metrics")).text
        assert 'route="/v1/reports",service="intake",status="503"' in metrics

        await postgres_proxy.restore()

        async def accepted_again() -> bool:
            r = await client.post("/v1/reports", json=report(), headers=PORTAL)
            return r.status_code == 202

        await eventually(accepted_again, timeout=20, what="reports accepted after Postgres is back")
        # The key of the refused request was not kept either: the citizen's retry is a first request.
        retry = await client.post("/v1/reports", json=report(description="Refused while Postgres was away"),
                                  headers=PORTAL | {"Idempotency-Key": "while-down"})  # fmt: skip
        assert retry.status_code == 202 and "idempotent-replayed" not in retry.headers
    assert await db.fetchval("SELECT count(*) FROM case_details WHERE description LIKE 'Refused%'") == 1
    assert await db.fetchval("SELECT count(*) FROM cases") == await db.fetchval("SELECT count(*) FROM outbox") == 3


async def test_a_connection_lost_just_before_commit_leaves_nothing_half_written(
    ns: Namespace, intake_schema: str, db: asyncpg.Pool, postgres_proxy: TcpProxy
) -> None:
    armed = asyncio.Event()

    async def cut_before_commit() -> None:
        if armed.is_set():
            armed.clear()
            await postgres_proxy.cut()

    settings = settings_for(ns, database_url=postgres_proxy.url(ns.database_url), db_acquire_timeout_seconds=2.0)
    app = build_app(settings, before_commit=cut_before_commit)
    async with running(app) as client:
        armed.set()
        key = PORTAL | {"Idempotency-Key": str(uuid.uuid4())}
        r = await client.post("/v1/reports", json=report(description="Lost in the middle"), headers=key)
        assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json"
        await postgres_proxy.restore()
    for table in ("cases", "case_details", "outbox", "idempotency_keys"):
        assert await db.fetchval(f"SELECT count(*) FROM {table}") == 0, f"{table} has a half-written row"


async def test_a_report_whose_event_cannot_be_written_is_not_stored_either(
    ns: Namespace, intake_service: tuple[FastAPI, httpx.AsyncClient], db: asyncpg.Pool
) -> None:
    """The case, its details, the key and the outbox row commit together: no case without its event."""
    _, client = intake_service
    await db.execute(
        "CREATE FUNCTION refuse_event() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN RAISE EXCEPTION 'outbox refused' USING ERRCODE = '40001'; END $$;"
        " CREATE TRIGGER refuse_event BEFORE INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION refuse_event()"
    )
    headers = PORTAL | {"Idempotency-Key": str(uuid.uuid4())}
    refused = await client.post("/v1/reports", json=report(), headers=headers)
    assert refused.status_code == 503 and refused.headers["content-type"] == "application/problem+json"
    for table in ("cases", "case_details", "idempotency_keys", "outbox"):
        assert await db.fetchval(f"SELECT count(*) FROM {table}") == 0, f"{table} kept a row of the refused report"

    await db.execute("DROP TRIGGER refuse_event ON outbox")
    retried = await client.post("/v1/reports", json=report(), headers=headers)
    assert retried.status_code == 202 and "idempotent-replayed" not in retried.headers
    assert await db.fetchval("SELECT count(*) FROM cases") == await db.fetchval("SELECT count(*) FROM outbox") == 1


async def test_a_relay_held_up_by_postgres_makes_the_service_not_ready_until_it_runs_again(
    ns: Namespace, intake_schema: str, db: asyncpg.Pool, postgres_proxy: TcpProxy
) -> None:
    """/readyz names the stalled loop past its bound, and says "ready" again only once the loop runs."""
    settings = settings_for(
        ns,
        database_url=postgres_proxy.url(ns.database_url),
        db_acquire_timeout_seconds=2.0,
        loop_ready_bound_seconds=2.0,
    )
    app = build_app(settings)
    async with running(app) as client:
        assert (await client.post("/v1/reports", json=report(), headers=PORTAL)).status_code == 202
        await postgres_proxy.cut()

        async def relay_named() -> bool:
            r = await client.get("/readyz")
            return r.status_code == 503 and "outbox relay" in r.json().get("stalled_loops", {})

        await eventually(relay_named, timeout=15, what="/readyz names the stalled outbox relay")

        async def gauge_shows_it() -> bool:
            metrics = (await client.get("/metrics")).text
            return any(
                line.startswith("service_loop_stalled_seconds") and 'loop="outbox relay"' in line
                and 'service="intake"' in line and float(line.rsplit(" ", 1)[1]) > 0
                for line in metrics.splitlines()
            )  # fmt: skip

        await eventually(gauge_shows_it, timeout=15, what="service_loop_stalled_seconds shows the relay")
        # Postgres is away: a restart would cure nothing, so the process stays live.
        assert (await client.get("/healthz")).status_code == 200

        await postgres_proxy.restore()
        restored = time.monotonic()

        async def ready() -> bool:
            return (await client.get("/readyz")).status_code == 200

        await eventually(ready, timeout=30, what="ready again once Postgres is back")
        assert time.monotonic() - restored < 30  # the stated bound
        assert (await client.post("/v1/reports", json=report(), headers=PORTAL)).status_code == 202
        await eventually(lambda: _none_pending(db), timeout=30, what="both reports published")


async def test_a_relay_held_up_by_kafka_alone_keeps_intake_ready(
    ns: Namespace, intake_schema: str, db: asyncpg.Pool
) -> None:
    """Intake answers citizens without Kafka (the outbox keeps every report): a relay waiting for Kafka
    past its bound shows in the metrics, but does not take intake out of the load balancer."""
    from tests.support.kafka_route import proxy_for, route_kafka_to

    proxy = await proxy_for(ns.kafka).start()
    undo = route_kafka_to(proxy.port)
    try:
        app = build_app(settings_for(ns, kafka_send_timeout_seconds=1.0, loop_ready_bound_seconds=2.0))
        async with running(app) as client:
            await proxy.cut()
            assert (await client.post("/v1/reports", json=report(), headers=PORTAL)).status_code == 202
            relay = next(p for p in app.state.runtime.health.loops if p.name == "outbox relay")

            def waiting_for_kafka() -> bool:
                return bool(relay.blocked_by == "kafka" and relay.stalled_for() > 2.5)

            await eventually(waiting_for_kafka, timeout=20, what="the relay stalled, waiting for Kafka")
            ready = await client.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert (await client.post("/v1/reports", json=report(), headers=PORTAL)).status_code == 202
            await proxy.restore()
            await eventually(lambda: _none_pending(db), timeout=60, what="both reports published once Kafka is back")
            assert relay.blocked_by is None
    finally:
        undo()
        await proxy.stop()
