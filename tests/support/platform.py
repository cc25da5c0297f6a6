"""A tiny consumer with a visible effect, used to prove the outbox, inbox and DLQ on real parts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg

from shared.consumer import ConsumerSpec
from shared.db import Conn
from shared.events import CloudEvent, EventData, EventMeta
from shared.events.cases import CaseReported
from shared.outbox import enqueue
from shared.settings import Topics

# No unique constraint on purpose: a second application of one event shows up as a second row.
EFFECTS_SQL = "CREATE TABLE IF NOT EXISTS effects (event_id uuid NOT NULL, subject text NOT NULL)"


async def record_effect(conn: Conn, meta: EventMeta, payload: EventData) -> None:
    await conn.execute(EFFECTS_SQL)
    await conn.execute("INSERT INTO effects (event_id, subject) VALUES ($1, $2)", meta.id, meta.subject)


def effect_consumer(topics: Topics, group: str, **overrides: object) -> ConsumerSpec:
    spec = ConsumerSpec(
        service="testsvc",
        name="effects",
        group_id=group,
        topics=[topics.cases],
        handler=record_effect,
        dlq_topic=topics.dlq("testsvc"),
        retry_base_seconds=0.05,
    )
    for key, value in overrides.items():
        setattr(spec, key, value)
    return spec


def sample_report(i: int = 0, kommune: str = "0265") -> CloudEvent:
    case_id = uuid.uuid4()
    now = datetime.now(UTC)
    data = CaseReported(
        case_id=case_id,
        reference=f"MV-TEST-{i:04d}"[:16],
        category="burglary_home",
        focus_area="indbrud",
        received_at=now,
        in_progress=False,
    )
    return CloudEvent.of(data, source="/mvsj/tests", subject=str(case_id), kommune=kommune, time=now)


async def enqueue_reports(pool: asyncpg.Pool, topics: Topics, n: int) -> list[CloudEvent]:
    """Writes `n` reports to the outbox, a few per transaction, as a service would."""
    events = [sample_report(i) for i in range(n)]
    async with pool.acquire() as conn:
        for start in range(0, n, 7):
            async with conn.transaction():
                for event in events[start : start + 7]:
                    await enqueue(conn, event, topic=topics.cases)
    return events
