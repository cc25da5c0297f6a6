"""The timer on its own, against a real schema: one unreadable deadline never stops the others."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from services.deadlines.adapters import repository
from services.deadlines.adapters.rules_file import SECONDS_RULES_FILE, load_rules
from services.deadlines.domain.deadline import Deadline
from services.deadlines.entrypoints.timer import DeadlineScheduler
from shared.clock import SystemClock
from shared.db import create_pool


def due_deadline(rule_id: str = "violence_acute") -> Deadline:
    rule = load_rules(SECONDS_RULES_FILE).get(rule_id)
    deadline, _ = Deadline.start(
        rule, rules_version=1, case_id=uuid.uuid4(), kommune="0265", category="violence",
        focus_area="kriminalitetsforebyggelse", started_at=datetime.now(UTC) - timedelta(minutes=1),
    )  # fmt: skip
    return deadline


async def test_an_unreadable_deadline_is_parked_and_the_rest_still_fire(ns, deadlines_schema) -> None:
    pool = await create_pool(ns.database_url, deadlines_schema, application="tests")
    good, bad = due_deadline(), due_deadline()
    try:
        async with pool.acquire() as conn, conn.transaction():
            for d in (good, bad):
                await repository.lock_case(conn, d.case_id, d.kommune)
            await repository.save_deadlines(conn, [good, bad])
            # A rule snapshot this version cannot read (say, written by a newer release, then rolled back).
            await conn.execute("UPDATE deadlines SET rule = rule - 'window' WHERE id = $1", bad.id)
        scheduler = DeadlineScheduler(pool, SystemClock(), topic=ns.topics.deadlines, schema=deadlines_schema)
        assert await scheduler.fire_due() == 2
        rows = {r["id"]: r for r in await pool.fetch("SELECT id, state, next_fire_at, fire_error FROM deadlines")}
        assert rows[good.id]["state"] == "breached"  # its breach went out regardless
        assert rows[bad.id]["next_fire_at"] is None and "window" in rows[bad.id]["fire_error"]
        assert await scheduler.fire_due() == 0  # parked: not claimed again, no busy loop
        breaches = await pool.fetch("SELECT type FROM deadline_timeline WHERE deadline_id = $1", good.id)
        assert [b["type"] for b in breaches] == ["dk.politi.deadline.breached"]
    finally:
        await pool.close()
