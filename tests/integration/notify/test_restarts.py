"""Postgres ends every connection of notify (a restart, a failover): delivery, escalation and the console feed resume."""

from __future__ import annotations

import time

import httpx
from fastapi import FastAPI

from tests.support.infra import Namespace
from tests.support.pg_faults import every_loop_resumes, terminate_backends


async def test_after_every_connection_is_ended_every_loop_resumes_without_a_restart(
    ns: Namespace, notify_service: tuple[FastAPI, httpx.AsyncClient]
) -> None:
    app, client = notify_service
    runtime = app.state.runtime
    assert {p.name for p in runtime.health.loops} >= {
        "outbox relay", "delivery worker", "escalation timer", "console feed"
    }  # fmt: skip
    await every_loop_resumes(runtime, after=0.0)
    cut = time.monotonic()
    # Four LISTEN connections (relay, delivery worker, escalation timer, console feed) at least.
    assert await terminate_backends(runtime.db, ns.database_url) >= 4

    await every_loop_resumes(runtime, after=cut, timeout=runtime.settings.loop_ready_bound_seconds)
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    async with runtime.db.acquire() as conn:
        listening = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1::int[]) AND query LIKE 'LISTEN%'",
            [h._con.get_server_pid() for h in runtime.db._holders if h._con is not None and not h._con.is_closed()],
        )
    assert listening >= 4  # each of them listens again on a new connection
