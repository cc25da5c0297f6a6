"""Deadlines benchmark: detection lag with 100,000 open deadlines while 1,000 fall due, and fire rate.

One real deadlines service process (scheduler + outbox relay) runs against a bench schema:
  1. 100,000 open deadlines, due in a day, are loaded straight into its table (the load it carries).
  2. 1,000 more are added, falling due evenly over 3 seconds starting 4 seconds later; a Kafka
     consumer in this process records when each breach arrives on deadlines.v1. Lag = arrival
     minus due time (so it includes the relay and Kafka delivery: an upper bound on "published").
  3. 20,000 deadlines already overdue are added at once; fire rate = how fast the one instance
     claims, fires and publishes them (from the insert to the last breach on the topic).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer

from bench.harness import RESULTS, BenchContext, namespace, percentile
from services.deadlines.adapters.repository import _DEADLINE_COLUMNS, _deadline_args
from services.deadlines.adapters.rules_file import DEFAULT_RULES_FILE, load_rules
from services.deadlines.bootstrap import migrations
from services.deadlines.domain.deadline import Deadline
from shared.db import migrate
from shared.events import CloudEvent
from shared.events import deadlines as ev
from tests.support.services import ServiceProcess, service_env

OPEN_LOAD = 100_000
FALLING_DUE = 1_000
SPREAD_SECONDS = 3.0
BURST = 20_000
RULE = _DEADLINE_COLUMNS.index("rule")
KOMMUNER = ["0253", "0259", "0265", "0269", "0306", "0316", "0326", "0329", "0336", "0350"]


def make_deadlines(
    n: int, due_at: list[datetime], window: timedelta
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Rows for `deadlines` and `cases`, made by the domain itself (no warnings left: the breach is next)."""
    base = load_rules(DEFAULT_RULES_FILE).get("violence_acute")
    rule = replace(base, window=window, warn_at=())
    deadline_rows, case_rows = [], []
    for i in range(n):
        case_id = uuid.uuid4()
        kommune = KOMMUNER[i % len(KOMMUNER)]
        deadline, _ = Deadline.start(
            rule, rules_version=1, case_id=case_id, kommune=kommune, category="violence",
            focus_area="kriminalitetsforebyggelse", started_at=due_at[i] - window,
        )  # fmt: skip
        args = list(_deadline_args(deadline))
        args[RULE] = json.dumps(args[RULE])
        deadline_rows.append(tuple(args))
        case_rows.append((case_id, kommune))
    return deadline_rows, case_rows


async def load(
    conn: asyncpg.Connection, schema: str, deadline_rows: list[tuple[Any, ...]], case_rows: list[tuple[Any, ...]]
) -> None:
    await conn.copy_records_to_table("cases", records=case_rows, columns=["case_id", "kommune"], schema_name=schema)
    await conn.copy_records_to_table(
        "deadlines", records=deadline_rows, columns=list(_DEADLINE_COLUMNS), schema_name=schema
    )
    await conn.execute(f"NOTIFY deadlines_{schema}")  # COPY fires no statement trigger; wake the scheduler


class BreachListener:
    """Records when each breach event arrives on the topic."""

    def __init__(self, ctx: BenchContext) -> None:
        self.consumer = AIOKafkaConsumer(
            ctx.topics.deadlines, bootstrap_servers=ctx.kafka, auto_offset_reset="latest", group_id=None,
            enable_auto_commit=False, fetch_max_wait_ms=50,
        )  # fmt: skip
        self.arrivals: dict[str, tuple[datetime, datetime]] = {}  # deadline id -> (due, arrived)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.consumer.start()
        # Make sure our position is fixed before anything is published.
        while not self.consumer.assignment():
            await asyncio.sleep(0.05)
        for tp in self.consumer.assignment():
            await self.consumer.position(tp)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for record in self.consumer:
            arrived = datetime.now(UTC)
            event = CloudEvent.from_bytes(record.value)
            if event.type == ev.BREACHED:
                self.arrivals.setdefault(
                    event.data["deadline_id"], (datetime.fromisoformat(event.data["due_at"]), arrived)
                )

    async def wait_for(self, n: int, timeout: float) -> None:
        end = time.monotonic() + timeout
        while len(self.arrivals) < n and time.monotonic() < end:
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
        await self.consumer.stop()


async def run() -> dict[str, Any]:
    async with namespace() as ctx:
        schema = ctx.schema("deadlines")
        await migrate(ctx.database_url, schema, migrations())
        # No JSON codec on this connection: COPY's binary jsonb wants the JSON text itself.
        conn = await asyncpg.connect(ctx.database_url)
        try:
            now = datetime.now(UTC)
            print(f"[bench] deadlines: loading {OPEN_LOAD:,} open deadlines ...", flush=True)
            t = time.monotonic()
            rows, cases = make_deadlines(
                OPEN_LOAD, [now + timedelta(days=1, seconds=i % 3600) for i in range(OPEN_LOAD)], timedelta(hours=24)
            )
            await load(conn, schema, rows, cases)
            await conn.execute(f"ANALYZE {schema}.deadlines")
            load_seconds = time.monotonic() - t

            proc = ServiceProcess(
                "deadlines", service_env(ctx, "deadlines", LOG_LEVEL="WARNING"), RESULTS / "deadlines-service.log"
            ).start()
            try:
                proc.wait_ready()
                listener = BreachListener(ctx)
                await listener.start()

                # Phase 2: 1,000 fall due over 3 s, 4 s from now, on top of the 100,000.
                print(
                    f"[bench] deadlines: {FALLING_DUE:,} deadlines falling due over {SPREAD_SECONDS:.0f}s ...",
                    flush=True,
                )
                first_due = datetime.now(UTC) + timedelta(seconds=4)
                dues = [first_due + timedelta(seconds=SPREAD_SECONDS * i / FALLING_DUE) for i in range(FALLING_DUE)]
                rows, cases = make_deadlines(FALLING_DUE, dues, timedelta(minutes=15))
                await load(conn, schema, rows, cases)
                await listener.wait_for(FALLING_DUE, timeout=60)
                lags = [(arrived - due).total_seconds() for due, arrived in listener.arrivals.values()]
                got_phase2 = len(lags)

                # Phase 3: a burst of overdue deadlines; how fast does one instance fire them?
                print(f"[bench] deadlines: {BURST:,} overdue deadlines at once ...", flush=True)
                listener.arrivals.clear()
                overdue = datetime.now(UTC) - timedelta(seconds=1)
                rows, cases = make_deadlines(BURST, [overdue] * BURST, timedelta(minutes=15))
                t0 = time.monotonic()
                await load(conn, schema, rows, cases)
                inserted = time.monotonic()
                await listener.wait_for(BURST, timeout=300)
                burst_seconds = time.monotonic() - inserted
                got_phase3 = len(listener.arrivals)
                await listener.stop()
                rss = proc.memory_kib()["VmHWM"]
            finally:
                proc.stop()
            open_now = await conn.fetchval(f"SELECT count(*) FROM {schema}.deadlines WHERE next_fire_at IS NOT NULL")
        finally:
            await conn.close()

    summary = {
        "open_deadlines": OPEN_LOAD,
        "falling_due": FALLING_DUE,
        "breaches_seen": got_phase2,
        "lag_p50_ms": round(percentile(lags, 50) * 1000, 1),
        "lag_p99_ms": round(percentile(lags, 99) * 1000, 1),
        "lag_max_ms": round(max(lags, default=0) * 1000, 1),
        "p99_under_1s": percentile(lags, 99) < 1.0,
        "fire_rate_per_s": round(got_phase3 / burst_seconds, 1) if burst_seconds else None,
        "burst": BURST,
        "burst_fired_and_published": got_phase3,
        "burst_seconds": round(burst_seconds, 2),
        "service_peak_rss_mib": round(rss / 1024, 1),
    }
    return {
        "summary": summary,
        "details": {
            "load_100k_seconds": round(load_seconds, 1),
            "burst_insert_seconds": round(inserted - t0, 2),
            "still_open_after": open_now,
            "lag_p90_ms": round(percentile(lags, 90) * 1000, 1),
            "method": __doc__,
        },
    }
