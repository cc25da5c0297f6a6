"""Notify benchmark: from a breach's due time to the vagtchef's webhook receiving it, steady and in a burst.

The whole chain runs for real: a deadlines service process (scheduler, outbox relay) breaches
deadlines loaded straight into its table; the breach goes over Kafka (deadlines.v1) to a notify
service process, which raises a critical alert and sends a signed webhook to the vagtchef on duty,
received by an HTTP server in this process (the lokalbetjente are on the console, so there is one
webhook per alert). Latency = webhook received minus the deadline's due time; a Kafka consumer here
also notes when each breach was on the topic, which splits it into the deadlines part and notify's.
  0. Single: 20 deadlines fall due half a second apart (each alone in the system).
  1. Steady: 50 deadlines a second fall due for 20 seconds (1,000 alerts).
  2. Burst: 1,000 deadlines already overdue are added at once; time from the insert to the last
     webhook, and the latency of each from the insert.
Peak RSS of the notify process (VmHWM) at the end.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from bench.deadlines import BreachListener, load, make_deadlines
from bench.harness import RESULTS, namespace, percentile
from services.deadlines.bootstrap import migrations as deadlines_migrations
from services.notify.bootstrap import migrations as notify_migrations
from shared.db import migrate
from tests.support.notify import new_secret, roster_document, write_roster
from tests.support.receivers import WebhookReceiver
from tests.support.services import ServiceProcess, service_env

RATE = 50  # alerts a second
STEADY_SECONDS = 20
BURST = 1_000
SINGLE = 20
SINGLE_GAP = 0.5  # seconds between single alerts: each is through before the next
LEAD = timedelta(seconds=4)  # the first steady deadline falls due this long after loading


class Arrivals:
    """Wall-clock arrival of each alert's first webhook, by case id (the receiver keeps monotonic times)."""

    def __init__(self, receiver: WebhookReceiver) -> None:
        self.receiver = receiver
        self._offset = time.time() - time.monotonic()

    def by_case(self) -> dict[uuid.UUID, datetime]:
        found: dict[uuid.UUID, datetime] = {}
        for hit in self.receiver.delivered("/vagtchef"):
            body = json.loads(hit.body)
            if body["stage"] != "raised":
                continue
            case_id = uuid.UUID(body["alert"]["case_id"])
            at = datetime.fromtimestamp(hit.at + self._offset, UTC)
            found[case_id] = min(at, found.get(case_id, at))
        return found

    async def wait_for(self, n: int, timeout: float) -> None:
        end = time.monotonic() + timeout
        while len(self.receiver.delivered("/vagtchef")) < n and time.monotonic() < end:
            await asyncio.sleep(0.1)


def _ms(values: list[float], p: float) -> float:
    return round(percentile(values, p) * 1000, 1)


def _roster(path: Path, receiver: WebhookReceiver) -> Path:
    hook = {"type": "webhook", "url": receiver.url("/vagtchef"), "secret": new_secret()}
    # Both vagtchefer on the webhook, so whoever is on duty when the bench runs gets it; everyone else: the console.
    return write_roster(path, roster_document(officer_channels={"vc-a": [hook], "vc-b": [hook]}))


async def _stages(
    conn: asyncpg.Connection, schema: str, on_topic: dict[str, tuple[datetime, datetime]]
) -> dict[str, list[float]]:
    """Where notify's part of the time goes: from the breach on the topic to the alert's row (the consumer),
    and from the row to the webhook recorded as delivered (the delivery worker)."""
    rows = await conn.fetch(
        f"SELECT a.deadline_id, a.raised_at, min(d.delivered_at) AS delivered_at FROM {schema}.alerts a"
        f" JOIN {schema}.deliveries d ON d.alert_id = a.id AND d.channel = 'webhook' AND d.stage = 'raised'"
        " GROUP BY a.deadline_id, a.raised_at"
    )
    consumed, delivered = [], []
    for row in rows:
        seen = on_topic.get(str(row["deadline_id"]))
        if seen is not None:
            consumed.append((row["raised_at"] - seen[1]).total_seconds())
        if row["delivered_at"] is not None:
            delivered.append((row["delivered_at"] - row["raised_at"]).total_seconds())
    return {
        "breach_on_topic_to_alert_row": [_ms(consumed, 50), _ms(consumed, 99)],
        "alert_row_to_webhook_delivered": [_ms(delivered, 50), _ms(delivered, 99)],
    }


async def _burst_stages(
    conn: asyncpg.Connection,
    schema: str,
    on_topic: dict[str, tuple[datetime, datetime]],
    cases: set[uuid.UUID],
    received: dict[uuid.UUID, datetime],
    inserted_at: datetime,
) -> dict[str, list[float]]:
    """When the burst's alerts passed each stage, in seconds from the insert: [p50, last].

    The last one through a stage is what the burst waits for: the stage whose "last" jumps most
    from the one before it is where the time goes. Stages: breach on the topic (deadlines: scheduler,
    outbox relay, Kafka), the alert's row (notify's consumer), the webhook recorded as delivered (the
    delivery worker, after the receiver answered), and the receiver's own clock.
    """
    rows = await conn.fetch(
        f"SELECT a.case_id, a.deadline_id, a.raised_at, min(d.delivered_at) AS delivered_at FROM {schema}.alerts a"
        f" JOIN {schema}.deliveries d ON d.alert_id = a.id AND d.channel = 'webhook' AND d.stage = 'raised'"
        " WHERE a.case_id = ANY($1::uuid[]) GROUP BY a.case_id, a.deadline_id, a.raised_at",
        list(cases),
    )
    marks: dict[str, list[float]] = {"breach_on_topic": [], "alert_row": [], "webhook_delivered": []}
    for row in rows:
        seen = on_topic.get(str(row["deadline_id"]))
        if seen is not None:
            marks["breach_on_topic"].append((seen[1] - inserted_at).total_seconds())
        marks["alert_row"].append((row["raised_at"] - inserted_at).total_seconds())
        if row["delivered_at"] is not None:
            marks["webhook_delivered"].append((row["delivered_at"] - inserted_at).total_seconds())
    marks["webhook_received"] = [(at - inserted_at).total_seconds() for c, at in received.items() if c in cases]
    return {name: [round(percentile(v, 50), 2), round(max(v, default=0.0), 2)] for name, v in marks.items()}


def _busy_cpu_seconds() -> float:
    """CPU time the whole machine has spent busy (all processes, all cores), from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


async def run() -> dict[str, Any]:
    receiver = WebhookReceiver().start()
    arrivals = Arrivals(receiver)
    async with namespace() as ctx:
        deadlines_schema, notify_schema = ctx.schema("deadlines"), ctx.schema("notify")
        await migrate(ctx.database_url, deadlines_schema, deadlines_migrations())
        await migrate(ctx.database_url, notify_schema, notify_migrations())
        RESULTS.mkdir(parents=True, exist_ok=True)
        roster = _roster(Path(tempfile.mkdtemp(prefix="notify-bench-")) / "roster.yaml", receiver)
        deadlines = ServiceProcess("deadlines", service_env(ctx, "deadlines", LOG_LEVEL="WARNING"),
                                   RESULTS / "notify-bench-deadlines.log")  # fmt: skip
        notify = ServiceProcess("notify", service_env(ctx, "notify", LOG_LEVEL="WARNING", ROSTER_FILE=str(roster)),
                                RESULTS / "notify-bench-notify.log")  # fmt: skip
        conn = await asyncpg.connect(ctx.database_url)
        listener = BreachListener(ctx)
        try:
            deadlines.start()
            notify.start()
            deadlines.wait_ready()
            notify.wait_ready()
            await listener.start()

            # Warm-up: /readyz does not wait for the consumer group's first assignment; one alert through does.
            rows, cases = make_deadlines(1, [datetime.now(UTC)], timedelta(minutes=15))
            await load(conn, deadlines_schema, rows, cases)
            await arrivals.wait_for(1, timeout=90)
            warm = len(receiver.delivered("/vagtchef"))
            listener.arrivals.clear()

            # Phase 0: single alerts, one at a time (the target: p99 under 1 s for a single alert).
            print(f"[bench] notify: {SINGLE} single breaches, {SINGLE_GAP}s apart ...", flush=True)
            first_due = datetime.now(UTC) + LEAD
            dues = [first_due + timedelta(seconds=SINGLE_GAP * i) for i in range(SINGLE)]
            rows, cases = make_deadlines(SINGLE, dues, timedelta(minutes=15))
            due_of = {case_id: due for (case_id, _), due in zip(cases, dues, strict=True)}
            await load(conn, deadlines_schema, rows, cases)
            await arrivals.wait_for(warm + SINGLE, timeout=SINGLE * SINGLE_GAP + 30)
            got = arrivals.by_case()
            single = [(got[c] - due_of[c]).total_seconds() for c in due_of if c in got]
            listener.arrivals.clear()
            before = len(receiver.delivered("/vagtchef"))

            # Phase 1: 50 a second fall due for STEADY_SECONDS.
            steady_n = RATE * STEADY_SECONDS
            print(f"[bench] notify: {steady_n:,} breaches at {RATE}/s ...", flush=True)
            first_due = datetime.now(UTC) + LEAD
            dues = [first_due + timedelta(seconds=i / RATE) for i in range(steady_n)]
            rows, cases = make_deadlines(steady_n, dues, timedelta(minutes=15))
            due_of = {case_id: due for (case_id, _), due in zip(cases, dues, strict=True)}
            await load(conn, deadlines_schema, rows, cases)
            await arrivals.wait_for(before + steady_n, timeout=STEADY_SECONDS + 90)
            got = arrivals.by_case()
            steady = [(got[c] - due_of[c]).total_seconds() for c in due_of if c in got]
            deadline_part = [(at - due).total_seconds() for due, at in listener.arrivals.values()]
            steady_received = len(steady)
            last = max((got[c] for c in due_of if c in got), default=first_due)
            steady_rate = steady_received / max((last - first_due).total_seconds(), 1e-3)
            stages = await _stages(conn, notify_schema, listener.arrivals)

            # Phase 2: BURST overdue deadlines at once.
            print(f"[bench] notify: a burst of {BURST:,} breaches at once ...", flush=True)
            before = len(receiver.delivered("/vagtchef"))
            overdue = datetime.now(UTC) - timedelta(seconds=1)
            rows, cases = make_deadlines(BURST, [overdue] * BURST, timedelta(minutes=15))
            burst_cases = {case_id for case_id, _ in cases}
            cpu_before = (notify.cpu_seconds(), deadlines.cpu_seconds(), _busy_cpu_seconds())
            inserted_at = datetime.now(UTC)
            t0 = time.monotonic()
            await load(conn, deadlines_schema, rows, cases)
            await arrivals.wait_for(before + BURST, timeout=120)
            got = arrivals.by_case()
            burst = [(got[c] - inserted_at).total_seconds() for c in burst_cases if c in got]
            burst_seconds = max(burst, default=time.monotonic() - t0)
            cpu_after = (notify.cpu_seconds(), deadlines.cpu_seconds(), _busy_cpu_seconds())
            burst_cpu = {
                name: round(after - before, 1)
                for name, before, after in zip(("notify", "deadlines", "machine_busy"), cpu_before, cpu_after,
                                               strict=True)
            }  # fmt: skip
            burst_stages = await _burst_stages(conn, notify_schema, listener.arrivals, burst_cases, got, inserted_at)
            rss = notify.memory_kib()["VmHWM"]
            cpu = notify.cpu_seconds()
        finally:
            await listener.stop()
            await conn.close()
            notify.stop()
            deadlines.stop()
            receiver.stop()

    summary = {
        "single_alerts": SINGLE,
        "single_received": len(single),
        "single_due_to_webhook_p50_ms": _ms(single, 50),
        "single_due_to_webhook_p99_ms": _ms(single, 99),
        "single_p99_under_1s": len(single) == SINGLE and percentile(single, 99) < 1.0,
        "steady_rate_per_s": RATE,
        "steady_alerts": RATE * STEADY_SECONDS,
        "steady_received": steady_received,
        "due_to_webhook_p50_ms": _ms(steady, 50),
        "due_to_webhook_p99_ms": _ms(steady, 99),
        "due_to_webhook_max_ms": _ms(steady, 100),
        "steady_p99_under_1s": percentile(steady, 99) < 1.0,
        "steady_delivered_per_s": round(steady_rate, 1),
        "burst": BURST,
        "burst_received": len(burst),
        "burst_all_delivered_seconds": round(burst_seconds, 2),
        "burst_within_10s": len(burst) == BURST and burst_seconds < 10.0,
        "notify_peak_rss_mib": round(rss / 1024, 1),
    }
    return {
        "summary": summary,
        "details": {
            "steady_p90_ms": _ms(steady, 90),
            "steady_due_to_breach_on_topic_p50_ms": _ms(deadline_part, 50),
            "steady_due_to_breach_on_topic_p99_ms": _ms(deadline_part, 99),
            "burst_p50_seconds": round(percentile(burst, 50), 2),
            "burst_p99_seconds": round(percentile(burst, 99), 2),
            "steady_stages_p50_p99_ms": stages,
            "burst_stages_p50_last_seconds_from_insert": burst_stages,
            "burst_cpu_seconds": burst_cpu,
            "notify_cpu_seconds": round(cpu, 1),
            "method": __doc__,
        },
    }
