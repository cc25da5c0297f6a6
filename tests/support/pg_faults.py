"""Postgres faults a test can cause for one service's pool, while the shared Postgres keeps running."""

from __future__ import annotations

import time

import asyncpg

from shared.runtime import ServiceRuntime
from tests.support.waiting import eventually


async def terminate_backends(pool: asyncpg.Pool, database_url: str) -> int:
    """Ends, from another connection, the server side of every connection the pool holds (LISTEN ones
    included): what a service sees when Postgres restarts or an operator runs pg_terminate_backend."""
    # asyncpg does not list a pool's connections publicly; its holders do (a test may look inside).
    holders = pool._holders  # type: ignore[attr-defined]  # private, so not in asyncpg-stubs
    pids = [h._con.get_server_pid() for h in holders if h._con is not None and not h._con.is_closed()]
    conn = await asyncpg.connect(database_url)
    try:
        ended = await conn.fetchval(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(p)) FROM unnest($1::int[]) p", pids
        )
    finally:
        await conn.close()
    return int(ended)


async def every_loop_resumes(runtime: ServiceRuntime, *, after: float, timeout: float = 30.0) -> None:
    """Waits until every timer-like loop of the service completed a round that began after `after`
    (time.monotonic()); consumers, which may be idle, only must not be failing."""

    def resumed() -> bool:
        for progress in runtime.health.loops:
            if progress.idle_ok:
                if progress.failing_since is not None:
                    return False
            elif progress.last_round is None or progress.last_round <= after:
                return False
        return True

    await eventually(
        resumed, timeout=timeout, what=f"every loop of {runtime.service} ran a round again: {_state(runtime)}"
    )


def _state(runtime: ServiceRuntime) -> dict[str, float]:
    now = time.monotonic()
    return {p.name: round(now - (p.last_round or p.started), 1) for p in runtime.health.loops}
