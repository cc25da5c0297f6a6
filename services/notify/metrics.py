"""Prometheus metrics of notify: alerts raised, deliveries, latency, time to ack, open alerts, rows purged."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg
from prometheus_client import Counter, Gauge, Histogram

from services.notify.domain.delivery import Delivery
from services.notify.domain.messages import stage_kind
from services.notify.domain.retention import PURGED_TABLES
from shared.events import CloudEvent
from shared.events import alerts as ev

RAISED = Counter("notify_alerts_raised_total", "Alerts raised", ["reason", "severity", "kommune"])
TIMER_PARKED = Counter(
    "notify_timer_parked_total",
    "Alerts the escalation timer could not fire and took off the timer (see alerts.timer_error); each needs a person",
    [],
)
DELIVERIES = Counter(
    "notify_deliveries_total",
    "Delivery attempts by channel and outcome (delivered, retry, failed, cancelled)",
    ["channel", "outcome"],
)
for _channel in ("webhook", "email", "console"):
    # Declared up front, so dashboards and alert rules see every series before the first failure.
    for _outcome in ("delivered", "retry", "failed", "cancelled"):
        DELIVERIES.labels(_channel, _outcome)
DELIVERY_LATENCY = Histogram(
    "notify_delivery_latency_seconds",
    "From the cause (the deadline event's time, e.g. the breach; an escalation's or ack's moment) to delivered",
    ["channel", "kind"],
    buckets=(0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0),
)
TIME_TO_ACK = Histogram(
    "notify_time_to_acknowledge_seconds",
    "From an alert raised to its acknowledgement",
    ["severity"],
    buckets=(5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200),
)
ESCALATIONS = Counter("notify_escalations_total", "Alerts escalated to the next step of their chain", ["level"])
OPEN_UNACKED = Gauge("notify_alerts_open_unacknowledged", "Alerts open or escalated, not acknowledged",
                     ["kommune", "severity"])  # fmt: skip
PAST_CHAIN = Gauge(
    "notify_alerts_past_chain", "Unacknowledged alerts that have gone through their whole escalation chain", []
)
PURGED = Counter(
    "notify_purged_total",
    "Rows deleted by the retention purge, by table (docs/privacy.md): deliveries, alerts, audit, used ack links, ...",
    ["table"],
)
for _table in PURGED_TABLES:
    PURGED.labels(_table)
PURGE_LAST_DONE = Gauge(
    "notify_purge_last_done_timestamp_seconds",
    "When this instance last finished a retention purge round (or found another instance purging);"
    " its start time until the first round: the alert NotifyPurgeBehind reads its age",
    [],
)
PURGE_LAST_DONE.set_to_current_time()
HEARTBEAT_FAILURES = Counter("notify_heartbeat_failures_total", "Heartbeats the external monitor did not take", [])


def count_events(envelopes: Sequence[CloudEvent], shown: Sequence[Delivery] = (), now: datetime | None = None) -> None:
    """Counts committed lifecycle events (never for a rolled-back attempt).

    Console deliveries are delivered in the transaction that writes them, so they are counted
    from their events; `shown` (those deliveries) adds their latency.
    """
    for delivery in shown:
        assert now is not None
        DELIVERY_LATENCY.labels("console", stage_kind(delivery.stage)).observe(
            max(0.0, (now - delivery.happened_at).total_seconds())
        )
    for env in envelopes:
        if env.type == ev.DELIVERED and env.data["channel"] == "console":
            DELIVERIES.labels("console", "delivered").inc()
        elif env.type == ev.RAISED:
            RAISED.labels(env.data["reason"], env.data["severity"], env.kommune).inc()
        elif env.type == ev.ESCALATED:
            ESCALATIONS.labels(str(env.data["level"])).inc()


def observe_delivery(channel: str, stage: str, outcome: str, happened_at: datetime, now: datetime) -> None:
    DELIVERIES.labels(channel, outcome).inc()
    if outcome == "delivered":
        kind = stage_kind(stage)
        DELIVERY_LATENCY.labels(channel, kind).observe(max(0.0, (now - happened_at).total_seconds()))


def observe_ack(severity: str, raised_at: datetime, acknowledged_at: datetime) -> None:
    TIME_TO_ACK.labels(severity).observe(max(0.0, (acknowledged_at - raised_at).total_seconds()))


class OpenAlertGauges:
    """Open unacknowledged alerts by kommune and severity, and those past their chain, as counted in the table."""

    def __init__(self) -> None:
        self._seen: set[tuple[str, str]] = set()

    def set(self, rows: Sequence[asyncpg.Record]) -> None:
        """`rows`: `adapters.repository.open_unacknowledged`'s (kommune, severity, n, past_chain)."""
        current = {(r["kommune"], r["severity"]): r["n"] for r in rows}
        # A label set that vanished from the count goes to 0 rather than keeping its last value.
        for labels in self._seen - set(current):
            OPEN_UNACKED.labels(*labels).set(0)
        for labels, n in current.items():
            OPEN_UNACKED.labels(*labels).set(n)
        self._seen |= set(current)
        PAST_CHAIN.set(sum(r["past_chain"] for r in rows))
