"""Service connections to Postgres: a frozen process's transaction cannot hold its locks for hours."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys

import asyncpg

from shared.db import Listener
from shared.kafka import EventProducer
from shared.outbox import OutboxRelay
from tests.support.infra import ROOT, Namespace
from tests.support.platform import enqueue_reports
from tests.support.waiting import eventually


async def test_a_frozen_relays_locks_are_freed_and_another_relay_takes_over(
    ns: Namespace, platform_schema: tuple[str, asyncpg.Pool]
) -> None:
    schema, pool = platform_schema
    await enqueue_reports(pool, ns.topics, 5)
    frozen = subprocess.Popen(
        [sys.executable, "-m", "tests.support.crash", "relay-freeze", ns.kafka, ns.database_url, schema, "2"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    producer = EventProducer(ns.kafka, client_id="test")
    try:
        assert frozen.stdout is not None
        line = await asyncio.to_thread(frozen.stdout.readline)
        assert line.strip() == "published 5"  # stopped with its transaction open, rows locked
        relay = OutboxRelay(pool, producer, service="testsvc", schema=schema)
        assert await relay.relay_once() == 0  # the frozen relay still holds the lock

        async def taken_over() -> bool:
            return await relay.relay_once() == 5

        # Postgres ends the frozen session after its 2 s idle-in-transaction timeout; without it
        # the locks would stay until the kernel's keepalive gives up (about two hours).
        await eventually(taken_over, timeout=20, what="another relay publishes the frozen relay's rows")
        assert await pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0
    finally:
        frozen.kill()  # SIGKILL ends a stopped process too
        frozen.wait(10)
        with contextlib.suppress(Exception):
            await producer.stop()


async def test_service_connections_carry_keepalives_and_an_idle_in_transaction_timeout(
    platform_schema: tuple[str, asyncpg.Pool],
) -> None:
    _, pool = platform_schema
    async with pool.acquire() as conn:
        assert await conn.fetchval("SHOW idle_in_transaction_session_timeout") == "1min"
        assert await conn.fetchval("SHOW tcp_keepalives_idle") == "30"
        assert await conn.fetchval("SHOW tcp_keepalives_interval") == "10"
        assert await conn.fetchval("SHOW tcp_keepalives_count") == "3"
        assert await conn.fetchval("SHOW tcp_user_timeout") == "60000"  # milliseconds


async def test_a_released_connection_costs_no_reset_round_trip_and_an_open_transaction_is_still_rolled_back(
    ns: Namespace,
) -> None:
    from shared.db import create_pool

    pool = await create_pool(ns.database_url, "public", application="tests", min_size=1, max_size=1)
    sent: list[str] = []
    try:
        async with pool.acquire() as conn:
            conn.add_query_logger(lambda q: sent.append(q.query))
            async with conn.transaction():
                await conn.execute("SELECT 1")
        assert sent == ["BEGIN;", "SELECT 1", "COMMIT;"]  # no pg_advisory_unlock_all(); ... RESET ALL
        async with pool.acquire() as conn:
            await conn.execute("BEGIN")  # left open, as a bug or a cancellation would leave it
        async with pool.acquire() as conn:
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SELECT 1") == 1
    finally:
        await pool.close()


async def test_a_listeners_connection_goes_back_to_the_pool_listening_to_nothing(ns: Namespace) -> None:
    from shared.db import create_pool

    pool = await create_pool(ns.database_url, "public", application="tests", min_size=1, max_size=1)
    try:
        listener = Listener(pool, "burst_wake_test", asyncio.Event())
        await listener.ensure()
        await listener.close()
        async with pool.acquire() as conn:
            assert await conn.fetch("SELECT pg_listening_channels()") == []
    finally:
        await pool.close()
