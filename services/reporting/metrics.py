"""Prometheus metrics of the reporting service: reports rendered, how long they take, how fresh the data is."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
from prometheus_client import Counter, Gauge, Histogram

from services.reporting.adapters import repository

RENDERED = Counter("reporting_reports_rendered_total", "Council reports and KPI answers served, by format", ["format"])
RENDER_SECONDS = Histogram(
    "reporting_report_seconds",
    "Time to compute and render a council report, by format",
    ["format"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0),
)
LAST_EVENT = Gauge(
    "reporting_last_event_timestamp_seconds", "Time of the newest event applied to the read model, per topic", ["topic"]
)


async def refresh_freshness(pool: asyncpg.Pool, interval: float) -> None:
    while True:
        try:
            async with pool.acquire() as conn:
                for topic, at in (await repository.PostgresReadModel(conn).freshness()).items():
                    LAST_EVENT.labels(topic).set(at.timestamp())
        except Exception as exc:  # a gauge must never take the service down
            logging.getLogger(__name__).warning("freshness gauge not refreshed: %r", exc)
        await asyncio.sleep(interval)
