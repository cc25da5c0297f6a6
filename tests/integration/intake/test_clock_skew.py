"""Hardening 19: an intake host whose clock runs an hour ahead stamps received_at by Postgres's clock."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from services.intake.bootstrap import build_app
from tests.integration.intake.conftest import PORTAL, report, running, settings_for
from tests.support.infra import Namespace

AHEAD = timedelta(hours=1)


class AheadClock:
    """The host's clock, running an hour fast."""

    def now(self) -> datetime:
        return datetime.now(UTC) + AHEAD


async def test_intake_whose_clock_runs_ahead_stamps_received_at_by_postgres(
    ns: Namespace, intake_schema: str, db: asyncpg.Pool
) -> None:
    app = build_app(settings_for(ns), clock=AheadClock())
    async with running(app) as client:
        r = await client.post("/v1/reports", json=report(), headers=PORTAL | {"Idempotency-Key": str(uuid.uuid4())})
        assert r.status_code == 202, r.text
    row = await db.fetchrow(
        "SELECT received_at, clock_timestamp() - received_at AS age FROM cases WHERE case_id = $1",
        uuid.UUID(r.json()["case_id"]),
    )
    # Stamped an hour in the future without the correction; by Postgres's clock it is seconds old.
    assert row is not None
    assert timedelta(0) <= row["age"] < timedelta(seconds=30)
