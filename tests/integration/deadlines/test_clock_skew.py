"""Hardening 19: a scheduler host whose clock runs an hour ahead does not breach early.

The service is given a clock one hour ahead of the real one (a host with broken NTP); Postgres's
clock is the reference every instance agrees on.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from services.deadlines.bootstrap import build_app
from shared.db import create_pool
from shared.events import deadlines as ev
from tests.integration.deadlines.conftest import CasesTopic, settings_for
from tests.support.cases import reported
from tests.support.infra import Namespace
from tests.support.services import in_process
from tests.support.waiting import eventually

AHEAD = timedelta(hours=1)


class AheadClock:
    """The host's clock, running an hour fast."""

    def now(self) -> datetime:
        return datetime.now(UTC) + AHEAD


async def test_a_scheduler_whose_clock_runs_ahead_does_not_breach_early(
    ns: Namespace, deadlines_schema: str, cases_topic: CasesTopic
) -> None:
    app = build_app(settings_for(ns), clock=AheadClock())
    pool = await create_pool(ns.database_url, deadlines_schema, application="tests")
    try:
        async with in_process(app):
            await app.state.runtime.consuming.wait()
            received = await pool.fetchval("SELECT clock_timestamp()")
            await cases_topic.publish(reported(uuid.uuid4(), "burglary_home", received, in_progress=False))

            async def breached() -> bool:
                return bool(await pool.fetchval("SELECT count(*) FROM deadlines WHERE state = 'breached'"))

            await eventually(breached, timeout=30, what="the burglary deadline breached")
            timeline = await pool.fetch(
                "SELECT t.type, t.recorded_at, d.due_at FROM deadline_timeline t JOIN deadlines d ON d.id = t.deadline_id"
                " WHERE d.rule_id = 'burglary_home_24h' ORDER BY t.recorded_at"
            )
    finally:
        await pool.close()
    # An hour-fast clock would have skipped the warning and breached at once, ~4 s early.
    assert [t["type"] for t in timeline] == [ev.STARTED, ev.WARNING, ev.BREACHED]
    breach = timeline[-1]
    assert breach["recorded_at"] >= breach["due_at"], "breached before its due time by Postgres's clock"
    skew = app.state.runtime.clock.offset
    assert abs(skew + AHEAD) < timedelta(seconds=5)  # measured: the host runs an hour ahead
