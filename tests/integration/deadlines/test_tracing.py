"""A deadline keeps the trace it started in; its warning or breach, fired by the timer later, is a trace of
its own whose first span links to that one, and its events go out in the new trace."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.deadlines.adapters.repository import PostgresDeadlinesRepository
from services.deadlines.adapters.rules_file import load_rules
from services.deadlines.domain.deadline import Deadline
from shared import tracing
from shared.db import create_pool
from tests.integration.deadlines.test_scheduler import caught_up_scheduler, due_deadline
from tests.support.infra import Namespace
from tests.testdata import SECONDS_RULES_FILE

REPORT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
REPORT = f"00-{REPORT_TRACE}-00f067aa0ba902b7-01"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    before = tracing._provider, tracing.exporting()
    tracing.in_memory(SimpleSpanProcessor(exporter))
    yield exporter
    tracing.use_provider(before[0], exporting=before[1])


def half_way(hours: float = 1.0) -> Deadline:
    """A deadline whose warning (half the window) is due and whose breach is far off."""
    rule = dataclasses.replace(load_rules(SECONDS_RULES_FILE).get("burglary_home_24h"), window=timedelta(hours=hours))
    deadline, _ = Deadline.start(
        rule, rules_version=1, case_id=uuid.uuid4(), kommune="0265", category="burglary_home",
        focus_area="indbrud", started_at=datetime.now(UTC) - timedelta(hours=hours * 0.6), reference="MV-TRCE-AB",
    )  # fmt: skip
    return deadline


async def test_a_timer_firing_is_a_new_trace_linked_to_the_one_that_started_the_deadline(
    ns: Namespace, deadlines_schema: str, spans: InMemorySpanExporter
) -> None:
    pool = await create_pool(ns.database_url, deadlines_schema, application="tests")
    warned, untraced = half_way(), due_deadline()
    try:
        async with pool.acquire() as conn, conn.transaction():
            repo = PostgresDeadlinesRepository(conn, topic=ns.topics.deadlines)
            for d in (warned, untraced):
                await repo.lock_case(d.case_id, d.kommune)
            # As the consumer writes it: inside the handling of the report's event, in the report's trace.
            with tracing.span("handle dk.politi.case.reported", parent=tracing.extract({"traceparent": REPORT})):
                started_in = tracing.current_traceparent()
                await repo.save_deadlines([warned])
            await repo.save_deadlines([untraced])  # outside any trace (or written before the column)
        spans.clear()

        scheduler = await caught_up_scheduler(ns, pool, deadlines_schema)
        assert await scheduler.fire_due() == 2

        fired = {s.name: s for s in spans.get_finished_spans() if s.name.startswith("deadline ")}
        assert set(fired) == {"deadline warning", "deadline breach"}
        warning, breach = fired["deadline warning"], fired["deadline breach"]
        assert warning.parent is None and warning.context is not None  # a trace of its own ...
        assert f"{warning.context.trace_id:032x}" != REPORT_TRACE
        [link] = warning.links  # ... linked to the span that started the deadline
        assert f"00-{link.context.trace_id:032x}-{link.context.span_id:016x}-01" == started_in
        assert f"{link.context.trace_id:032x}" == REPORT_TRACE
        assert dict(warning.attributes or {}) == {
            "mvsj.deadline_id": str(warned.id), "mvsj.case_id": str(warned.case_id),
            "mvsj.rule_id": "burglary_home_24h", "mvsj.event_types": ("dk.politi.deadline.warning",),
            "mvsj.reference": "MV-TRCE-AB",
        }  # fmt: skip
        assert breach.parent is None and not breach.links  # nothing stored: a new trace, linked to nothing
        assert breach.context is not None and breach.context.trace_id != warning.context.trace_id

        # Each firing's events go out in its trace: the outbox row's context is the firing span's.
        rows = await pool.fetch("SELECT key, headers FROM outbox ORDER BY id")
        trace_of = {r["key"]: r["headers"]["traceparent"].split("-")[1] for r in rows}
        assert trace_of == {
            str(warned.case_id): f"{warning.context.trace_id:032x}",
            str(untraced.case_id): f"{breach.context.trace_id:032x}",
        }
        # The row keeps the trace that started it; the timer's update leaves it as it was.
        stored = {r["id"]: r["trace_context"] for r in await pool.fetch("SELECT id, trace_context FROM deadlines")}
        assert stored == {warned.id: started_in, untraced.id: None}
    finally:
        await pool.close()
