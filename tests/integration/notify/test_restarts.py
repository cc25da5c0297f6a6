"""Postgres ends every connection of notify (a restart, a failover): delivery, escalation and the console feed resume."""

from __future__ import annotations

import time

import httpx
from fastapi import FastAPI

from tests.support.infra import Namespace
from tests.support.pg_faults import every_loop_resumes, terminate_backends
from tests.support.waiting import eventually


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

    bound = runtime.settings.loop_ready_bound_seconds
    await every_loop_resumes(runtime, after=cut, timeout=bound)
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text

    # Each of them listens again on a new connection, within the readiness bound. Not at once: a loop may
    # have finished a quiet round between `cut` and the end of its connection, and then waits out its
    # reconnect backoff (the console feed's 0.5 s) before it listens again.
    async def listening() -> bool:
        async with runtime.db.acquire() as conn:
            pids = [
                h._con.get_server_pid() for h in runtime.db._holders if h._con is not None and not h._con.is_closed()
            ]
            count = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1::int[]) AND query LIKE 'LISTEN%'", pids
            )
        return int(count) >= 4

    await eventually(listening, timeout=bound, what="four loops listening again on new connections")
