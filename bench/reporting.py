"""Reporting benchmark: rebuild ingest rate over a year of events, and council report times.

A year (2026) of the district's traffic at ten times its volume is about 500,000 cases with their
police actions, deadline events and alerts. `REPORTING_BENCH_CASES` sets the size (default 500,000);
the result records what ran.
  1. The events are put on the bench namespace's cases.v1, deadlines.v1 and alerts.v1.
  2. `python -m services.reporting rebuild` (a real process, as an operator runs it) reads them from
     offset 0 into a fresh schema and swaps it in: ingest rate = events / its own reported seconds;
     peak memory = its max RSS.
  3. A reporting service process serves that schema (its consumer pointed at empty topics, so no
     ingest competes with the reports): the kreds council report for the year and for Q1 as JSON,
     HTML and PDF, timed over HTTP (median of 3 after one warm-up), and the service's peak RSS.
  4. A reporting service with an empty schema consumes the same topics live (one event per
     transaction, as in production) for 20 s: its rate, beside the rebuild's batched one.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from bench.harness import RESULTS, ROOT, namespace
from services.reporting.bootstrap import migrations
from shared.db import migrate
from shared.events import CloudEvent
from shared.kafka import EventProducer, OutgoingMessage, delete_topics
from shared.reference import categories
from shared.settings import Topics
from tests.support.services import ServiceProcess, service_env

CASES = int(os.environ.get("REPORTING_BENCH_CASES", "500000"))
LIVE_SECONDS = 20.0
KOMMUNER = ["0253", "0259", "0265", "0269", "0306", "0316", "0326", "0329", "0336", "0350"]
YEAR_START = datetime(2026, 1, 1, tzinfo=UTC)
COUNCIL = {"Authorization": "Bearer dev-council-key"}
# (category, flags, rules it starts: (rule id, basis, window_set_by, window seconds, stop action))
REPORTS = [
    ("burglary_home", {"in_progress": False}, [("burglary_home_24h", "guarantee", "law", 86400, "on_scene"),
                                               ("tryghedsopfoelgning_burglary", "local_target", "district", 14 * 86400,
                                                "followup_done")]),
    ("burglary_home", {"in_progress": True}, [("burglary_home_in_progress", "guarantee", "district", 900, "on_scene")]),
    ("violence", {"acute": True}, [("violence_acute", "guarantee", "district", 900, "on_scene")]),
    ("violence", {"acute": False}, []),
    ("drug_dealing_school", {}, [("drug_dealing_school_response", "guarantee", "district", 900, "on_scene")]),
    ("traffic", {}, []),
    ("youth_party_nuisance", {}, []),
    ("fraud_elderly", {}, []),
    ("other", {}, []),
]  # fmt: skip


def _event(kind: str, case: str, kommune: str, at: datetime, data: dict[str, Any], source: str) -> bytes:
    return json.dumps(
        {"specversion": "1.0", "id": str(uuid.uuid4()), "source": source, "type": f"dk.politi.{kind}",
         "subject": case, "time": at.isoformat().replace("+00:00", "Z"), "datacontenttype": "application/json",
         "kommune": kommune, "data": data},
        separators=(",", ":"),
    ).encode()  # fmt: skip


def _z(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def year_of_events(
    n_cases: int, topics: Topics, seed: int = 2026, chunk: int = 2000
) -> Iterator[list[OutgoingMessage]]:
    """Events of `n_cases` cases spread over 2026, as intake, deadlines and notify would publish them,
    in chunks of the events of `chunk` cases (a year at full size does not fit comfortably in memory)."""
    rng = random.Random(seed)
    out: list[OutgoingMessage] = []
    seconds_in_year = 365 * 86400

    def put(topic: str, case: str, payload: bytes) -> None:
        out.append(OutgoingMessage(topic, case.encode(), payload))

    for i in range(n_cases):
        if out and i % chunk == 0:
            yield out
            out = []
        case = str(uuid.UUID(int=rng.getrandbits(128)))
        kommune = KOMMUNER[i % len(KOMMUNER)]
        received = YEAR_START + timedelta(seconds=rng.randrange(seconds_in_year))
        roll = rng.random()
        if roll < 0.15:
            category = rng.choice(["drug_dealing_street", "drug_dealing_school"])
            put(topics.cases, case, _event("case.tip_received", case, kommune, received, {
                "case_id": case, "reference": "MV-BNCH", "category": category,
                "focus_area": categories()[category].focus_area, "received_at": _z(received), "anonymous": True,
            }, "/mvsj/intake"))  # fmt: skip
            continue
        if roll < 0.22:
            put(topics.cases, case, _event("case.officer_requested", case, kommune, received, {
                "case_id": case, "reference": "MV-BNCH", "request_type": "talk", "category": "traffic",
                "focus_area": "faerdselssikkerhed", "received_at": _z(received),
            }, "/mvsj/intake"))  # fmt: skip
            continue
        category, flags, rules = rng.choice(REPORTS)
        focus = categories()[category].focus_area
        put(topics.cases, case, _event("case.reported", case, kommune, received, {
            "case_id": case, "reference": "MV-BNCH", "category": category, "focus_area": focus,
            "received_at": _z(received), **flags,
        }, "/mvsj/intake"))  # fmt: skip
        on_scene = received + timedelta(seconds=rng.lognormvariate(6.6, 0.9))  # median ~12 min
        actions = [("dispatched", received + timedelta(seconds=30)), ("on_scene", on_scene),
                   ("followup_done", received + timedelta(days=rng.uniform(1, 20))),
                   ("closed", received + timedelta(days=21))]  # fmt: skip
        for action, at in actions if rules else actions[-1:]:
            data = {"case_id": case, "reference": "MV-BNCH", "action_id": str(uuid.UUID(int=rng.getrandbits(128))),
                    "action": action, "category": category, "occurred_at": _z(at), "recorded_at": _z(at)}  # fmt: skip
            if action == "closed":
                data["outcome"] = "afsluttet"
            put(topics.cases, case, _event("case.action_recorded", case, kommune, at, data, "/mvsj/intake"))
        for rule_id, basis, set_by, window, stop in rules:
            deadline = str(uuid.UUID(int=rng.getrandbits(128)))
            due = received + timedelta(seconds=window)
            common = {"deadline_id": deadline, "case_id": case, "rule_id": rule_id, "basis": basis,
                      "window_set_by": set_by, "title": rule_id.replace("_", " "), "category": category,
                      "focus_area": focus, "started_at": _z(received), "due_at": _z(due)}  # fmt: skip
            put(topics.deadlines, case, _event("deadline.started", case, kommune, received,
                {**common, "window_seconds": float(window), "rules_version": 1}, "/mvsj/deadlines"))  # fmt: skip
            met_at = dict(actions)[stop]
            if met_at > due:
                put(topics.deadlines, case, _event("deadline.breached", case, kommune, due,
                    {**common, "breached_at": _z(due)}, "/mvsj/deadlines"))  # fmt: skip
                alert = str(uuid.UUID(int=rng.getrandbits(128)))
                put(topics.alerts, case, _event("alert.raised", case, kommune, due, {
                    "alert_id": alert, "case_id": case, "deadline_id": deadline, "rule_id": rule_id,
                    "reason": "deadline_breached", "severity": "critical", "title": "Frist brudt",
                    "recipients": ["vagtchef"], "raised_at": _z(due),
                }, "/mvsj/notify"))  # fmt: skip
                ack = due + timedelta(seconds=rng.expovariate(1 / 120))
                put(topics.alerts, case, _event("alert.acknowledged", case, kommune, ack, {
                    "alert_id": alert, "case_id": case, "by": "vagtchef-1", "acknowledged_at": _z(ack),
                }, "/mvsj/notify"))  # fmt: skip
            put(topics.deadlines, case, _event("deadline.met", case, kommune, met_at, {
                **common, "met_at": _z(met_at), "action": stop, "late": met_at > due,
                "response_seconds": (met_at - received).total_seconds(),
            }, "/mvsj/deadlines"))  # fmt: skip
    if out:
        yield out


def _timed_get(client: httpx.Client, path: str, runs: int = 3) -> dict[str, Any]:
    client.get(path, headers=COUNCIL).raise_for_status()  # warm-up: imports, fonts, plans
    times, size = [], 0
    for _ in range(runs):
        t = time.perf_counter()
        response = client.get(path, headers=COUNCIL)
        times.append(time.perf_counter() - t)
        response.raise_for_status()
        size = len(response.content)
    return {"median_s": round(statistics.median(times), 3), "max_s": round(max(times), 3), "bytes": size}


async def run() -> dict[str, Any]:
    async with namespace() as ctx:
        print(f"[bench] reporting: putting a year of events for {CASES:,} cases on Kafka ...", flush=True)
        producer = EventProducer(ctx.kafka, client_id="bench-reporting", send_timeout=60)
        by_topic: dict[str, int] = {}
        t = time.monotonic()
        checked = False
        for messages in year_of_events(CASES, ctx.topics):
            if not checked:
                for m in messages[:200]:
                    CloudEvent.from_bytes(m.value).payload()  # the generator speaks the contract
                checked = True
            for m in messages:
                by_topic[m.topic] = by_topic.get(m.topic, 0) + 1
            await producer.send_batch(messages)
        await producer.stop()
        produced = time.monotonic() - t
        n_events = sum(by_topic.values())

        schema = ctx.schema("reporting")
        ctx.schema("reporting_rebuild")
        await migrate(ctx.database_url, schema, migrations())
        env = os.environ | service_env(ctx, "reporting", LOG_LEVEL="WARNING")
        print("[bench] reporting: rebuild ...", flush=True)
        t = time.monotonic()
        done = subprocess.run(  # noqa: ASYNC221 - the bench waits for it; nothing else runs meanwhile
            [sys.executable, "-m", "services.reporting", "rebuild"], cwd=ROOT, env=env, capture_output=True,
            text=True, check=True,
        )  # fmt: skip
        rebuild_wall = time.monotonic() - t
        rebuild_rss_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        found = re.search(r"done: ([\d,]+) events in ([\d.]+) s; ingest ([\d.]+) s", done.stderr)
        assert found, done.stderr
        read, total_seconds, seconds = int(found[1].replace(",", "")), float(found[2]), float(found[3])

        idle = Topics(ctx.topics.prefix + "idle.")
        serve_env = service_env(ctx, "reporting", LOG_LEVEL="WARNING", KAFKA_TOPIC_PREFIX=idle.prefix)
        proc = ServiceProcess("reporting", serve_env, RESULTS / "reporting-service.log").start()
        try:
            proc.wait_ready(timeout=120)
            with httpx.Client(base_url=proc.url, timeout=120) as client:
                timings = {
                    path: _timed_get(client, path)
                    for path in (
                        "/v1/council-reports/kreds/2026.json",
                        "/v1/council-reports/kreds/2026.pdf",
                        "/v1/council-reports/kreds/2026-Q1.json",
                        "/v1/council-reports/kreds/2026-Q1.pdf",
                        "/v1/council-reports/kreds/2026-Q1.html",
                        "/v1/council-reports/0265/2026-Q1.pdf",
                        "/v1/kpis?scope=kreds&period=2026",
                    )
                }
                year = client.get("/v1/council-reports/kreds/2026.json", headers=COUNCIL).json()  # noqa: ASYNC212
            service_rss = proc.memory_kib()["VmHWM"]
        finally:
            proc.stop()
            await delete_topics(ctx.kafka, idle.all())

        # The live consumer (one event per transaction, inbox row included) on the same topics,
        # into a schema of its own, for LIVE_SECONDS: its rate, for comparison with the rebuild's.
        live_schema = ctx.schema("reporting_live")
        await migrate(ctx.database_url, live_schema, migrations())
        live_env = service_env(ctx, "reporting", LOG_LEVEL="WARNING", REPORTING_DB_SCHEMA=live_schema)
        live = ServiceProcess("reporting", live_env, RESULTS / "reporting-live.log").start()
        try:
            live.wait_ready(timeout=120)
            conn = await asyncpg.connect(ctx.database_url)
            try:
                count = f"SELECT count(*) FROM {live_schema}.processed_events"
                joined_by = time.monotonic() + 60
                while await conn.fetchval(count) == 0 and time.monotonic() < joined_by:
                    await asyncio.sleep(0.2)  # the consumer group is still joining
                first, t0 = await conn.fetchval(count), time.monotonic()
                await asyncio.sleep(LIVE_SECONDS)
                live_rate = (await conn.fetchval(count) - first) / (time.monotonic() - t0)
            finally:
                await conn.close()
        finally:
            live.stop()

    current = year["current"]
    summary = {
        "cases": CASES,
        "events": n_events,
        "rebuild_events_read": read,
        "ingest_events_per_s": round(read / seconds, 1),
        "ingest_target_met": read / seconds >= 10_000,
        "rebuild_ingest_seconds": seconds,
        "rebuild_total_seconds_with_vacuum_and_swap": total_seconds,
        "kreds_year_json_s": timings["/v1/council-reports/kreds/2026.json"]["median_s"],
        "kreds_year_pdf_s": timings["/v1/council-reports/kreds/2026.pdf"]["median_s"],
        "kreds_q1_json_s": timings["/v1/council-reports/kreds/2026-Q1.json"]["median_s"],
        "kreds_q1_pdf_s": timings["/v1/council-reports/kreds/2026-Q1.pdf"]["median_s"],
        "json_under_1s": timings["/v1/council-reports/kreds/2026.json"]["max_s"] < 1.0,
        "pdf_under_5s": timings["/v1/council-reports/kreds/2026.pdf"]["max_s"] < 5.0,
        "live_consumer_events_per_s": round(live_rate, 1),
        "rebuild_peak_rss_mib": round(rebuild_rss_kib / 1024, 1),
        "service_peak_rss_mib": round(service_rss / 1024, 1),
    }
    return {
        "summary": summary,
        "details": {
            "events_by_topic": by_topic,
            "generate_and_produce_seconds": round(produced, 1),
            "generate_and_produce_events_per_s": round(n_events / produced, 1),
            "rebuild_wall_seconds_with_start_and_migrate": round(rebuild_wall, 1),
            "http": timings,
            "year_figures": {
                "reports": current["reports"],
                "tips": current["tips"],
                "officer_requests": current["officer_requests"],
                "guarantees": current["compliance"]["guarantees"],
                "response_time_seconds": {
                    k: v for k, v in current["response_time_seconds"].items() if k != "by_category"
                },
                "alerts": current["alerts"]["raised"],
            },
            "method": __doc__,
        },
    }
