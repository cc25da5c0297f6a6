"""The hourly purge of every service with pages: ended sessions and sign-ins never finished go, live ones stay."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
from prometheus_client import REGISTRY

from shared.websession import purge_web_sessions


def purged(kind: str) -> float:
    return REGISTRY.get_sample_value("web_sessions_purged_total", {"service": "testsvc", "kind": kind}) or 0.0


async def test_ended_sessions_and_stale_sign_ins_go_in_batches_live_ones_stay(
    platform_schema: tuple[str, asyncpg.Pool],
) -> None:
    _, pool = platform_schema
    now = datetime.now(UTC)
    sessions = [(f"ended-{i}", now - timedelta(minutes=1 + i)) for i in range(5)] + [("live", now + timedelta(hours=8))]
    for name, expires in sessions:
        await pool.execute(
            "INSERT INTO web_sessions (id_sha256, subject, username, name, roles, csrf, id_token, created_at,"
            " expires_at, checked_at, vouched_at) VALUES ($1, $1, $1, $1, '{}', 'c', 't', $2, $3, $2, $2)",
            name, expires - timedelta(hours=12), expires,
        )  # fmt: skip
    await pool.execute(
        "INSERT INTO web_sign_ins (state, binding_sha256, nonce, code_verifier, return_to, created_at)"
        " VALUES ('abandoned', 'b', 'n', 'v', '/console', $1), ('under-way', 'b', 'n', 'v', '/console', $2)",
        now - timedelta(minutes=11),
        now - timedelta(minutes=1),
    )
    counted = (purged("session"), purged("sign_in"))
    # Two instances at once, in batches of two: each row goes once.
    rounds = await asyncio.gather(*(purge_web_sessions(pool, now, service="testsvc", batch_size=2) for _ in range(2)))
    assert (sum(r[0] for r in rounds), sum(r[1] for r in rounds)) == (5, 1)
    assert [r[0] for r in await pool.fetch("SELECT id_sha256 FROM web_sessions")] == ["live"]
    assert [r[0] for r in await pool.fetch("SELECT state FROM web_sign_ins")] == ["under-way"]
    assert (purged("session") - counted[0], purged("sign_in") - counted[1]) == (5, 1)
