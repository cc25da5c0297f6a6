"""The timer on its own, against a real schema: one deadline that cannot fire never stops the others."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from services.deadlines.adapters import repository
from services.deadlines.adapters.repository import PostgresDeadlinesRepository
from services.deadlines.adapters.rules_file import load_rules
from services.deadlines.domain.deadline import Deadline
from services.deadlines.entrypoints.timers import DeadlineScheduler
from shared.clock import SystemClock
from shared.db import create_pool
from tests.support.infra import Namespace
from tests.testdata import SECONDS_RULES_FILE


async def caught_up_scheduler(ns: Namespace, pool: asyncpg.Pool, schema: str) -> DeadlineScheduler:
    """A timer whose breach gate is open: every partition of cases.v1 consumed as of now."""
    now = await pool.fetchval("SELECT now()")
    await repository.record_progress(pool, ns.topics.cases, range(3), dict.fromkeys(range(3), now))
    return DeadlineScheduler(pool, SystemClock(), topic=ns.topics.deadlines, cases_topic=ns.topics.cases, schema=schema)


def due_deadline(rule_id: str = "violence_acute") -> Deadline:
    rule = load_rules(SECONDS_RULES_FILE).get(rule_id)
    deadline, _ = Deadline.start(
        rule, rules_version=1, case_id=uuid.uuid4(), kommune="0265", category="violence",
        focus_area="kriminalitetsforebyggelse", started_at=datetime.now(UTC) - timedelta(minutes=1),
    )  # fmt: skip
    return deadline


async def test_an_unreadable_deadline_is_parked_and_the_rest_still_fire(ns: Namespace, deadlines_schema: str) -> None:
    pool = await create_pool(ns.database_url, deadlines_schema, application="tests")
    good, bad = due_deadline(), due_deadline()
    try:
        async with pool.acquire() as conn, conn.transaction():
            repo = PostgresDeadlinesRepository(conn, topic=ns.topics.deadlines)
            for d in (good, bad):
                await repo.lock_case(d.case_id, d.kommune)
            await repo.save_deadlines([good, bad])
            # A rule snapshot this version cannot read (say, written by a newer release, then rolled back).
            await conn.execute("UPDATE deadlines SET rule = rule - 'window' WHERE id = $1", bad.id)
        scheduler = await caught_up_scheduler(ns, pool, deadlines_schema)
        assert await scheduler.fire_due() == 2
        rows = {r["id"]: r for r in await pool.fetch("SELECT id, state, next_fire_at, fire_error FROM deadlines")}
        assert rows[good.id]["state"] == "breached"  # its breach went out regardless
        assert rows[bad.id]["next_fire_at"] is None and "window" in rows[bad.id]["fire_error"]
        assert await scheduler.fire_due() == 0  # parked: not claimed again, no busy loop
        breaches = await pool.fetch("SELECT type FROM deadline_timeline WHERE deadline_id = $1", good.id)
        assert [b["type"] for b in breaches] == ["dk.politi.deadline.breached"]
    finally:
        await pool.close()


async def test_rows_that_fail_in_envelope_building_or_writing_are_parked_and_the_rest_fire(
    ns: Namespace, deadlines_schema: str
) -> None:
    """Hardening 20: each row isolated in a savepoint; without it every round rolls back and nothing fires."""
    pool = await create_pool(ns.database_url, deadlines_schema, application="tests")
    good, no_envelope, refused = due_deadline(), due_deadline(), due_deadline()
    try:
        async with pool.acquire() as conn, conn.transaction():
            repo = PostgresDeadlinesRepository(conn, topic=ns.topics.deadlines)
            for d in (good, no_envelope, refused):
                await repo.lock_case(d.case_id, d.kommune)
            await repo.save_deadlines([good, no_envelope, refused])
            # A kommune outside the district: the row reads and fires, its CloudEvent cannot be built.
            await conn.execute("UPDATE deadlines SET kommune = '9999' WHERE id = $1", no_envelope.id)
            # Postgres refuses to store this one as breached: the write itself fails.
            await conn.execute(
                "ALTER TABLE deadlines ADD CONSTRAINT test_refuse_breach"
                f" CHECK (id <> '{refused.id}' OR state <> 'breached')"
            )
        scheduler = await caught_up_scheduler(ns, pool, deadlines_schema)
        assert await scheduler.fire_due() == 3
        rows = {r["id"]: r for r in await pool.fetch("SELECT id, state, next_fire_at, fire_error FROM deadlines")}
        assert rows[good.id]["state"] == "breached"
        assert rows[no_envelope.id]["next_fire_at"] is None and "9999" in rows[no_envelope.id]["fire_error"]
        assert rows[refused.id]["next_fire_at"] is None and "test_refuse_breach" in rows[refused.id]["fire_error"]
        assert {r["state"] for r in rows.values() if r["id"] != good.id} == {"pending"}
        timeline = await pool.fetch("SELECT deadline_id, type FROM deadline_timeline")
        assert [(t["deadline_id"], t["type"]) for t in timeline] == [(good.id, "dk.politi.deadline.breached")]
        outbox = await pool.fetch("SELECT event_id FROM outbox")
        assert len(outbox) == 1
        assert await scheduler.fire_due() == 0  # parked: not claimed again, no busy loop
    finally:
        await pool.close()
