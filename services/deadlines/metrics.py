"""Prometheus metrics of the deadlines service: open deadlines, outcomes and detection lag."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

import asyncpg
from prometheus_client import Counter, Gauge, Histogram

from services.deadlines.domain.deadline import WITHDRAWAL_LIMIT
from shared.events import CloudEvent
from shared.events import deadlines as ev

# `basis` (guarantee = law, local_target = the district's own) lets every figure keep the two apart.
OPEN = Gauge(
    "deadlines_open",
    "Deadlines not yet met or cancelled (pending or breached)",
    ["rule", "basis", "kommune", "state"],
)
TRANSITIONS = Counter(
    "deadline_events_total",
    "Deadline events committed, by kind (started, warning, breached, breach_withdrawn, met_on_time, met_late,"
    " cancelled, rescheduled)",
    ["kind", "rule", "basis", "kommune"],
)
DETECTION_LAG = Histogram(
    "deadline_detection_lag_seconds",
    "From a warning's or breach's due time to its event being published on Kafka",
    ["kind"],
    buckets=(0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0),
)
WITHDRAWALS_REFUSED = Counter(
    "deadline_breach_withdrawals_refused_total",
    "Breaches that stand although the stop action happened by the due time: it was recorded more than"
    " WITHDRAWAL_LIMIT (7 days) after the due time (counted as met late)",
    ["rule", "basis", "kommune"],
)
FIRED = Counter("deadline_timer_fired_total", "Deadlines the timer claimed and fired", [])
PARKED = Counter(
    "deadline_timer_parked_total",
    "Deadlines the timer could not fire and took off the timer (see deadlines.fire_error); each needs a person",
    [],
)
BREACH_GATE_LAG = Gauge(
    "deadlines_breach_gate_lag_seconds",
    "Now minus the breach gate: the time up to which every partition of cases.v1 has been consumed."
    " Warnings and breaches due after the gate wait for it (+Inf while a partition has never caught up)",
    [],
)

log = logging.getLogger(__name__)

_KIND = {
    ev.STARTED: "started",
    ev.WARNING: "warning",
    ev.BREACHED: "breached",
    ev.CANCELLED: "cancelled",
    ev.RESCHEDULED: "rescheduled",
    ev.BREACH_WITHDRAWN: "breach_withdrawn",
}


def count_committed(envelopes: Sequence[CloudEvent]) -> None:
    """Counts events after their transaction committed (never for a rolled-back attempt)."""
    for env in envelopes:
        if env.type == ev.MET:
            kind = "met_late" if env.data.get("late") else "met_on_time"
            if env.data.get("late") and _in_time(env.data["met_at"], env.data["due_at"]):
                # Met in time, but recorded too long after the due time to withdraw the breach.
                WITHDRAWALS_REFUSED.labels(env.data.get("rule_id", "?"), env.data.get("basis", "?"), env.kommune).inc()
                log.warning(
                    "late breach withdrawal refused: deadline %s (rule %s) was met at %s, by its due time %s,"
                    " but recorded more than %s days after it; the breach stands",
                    env.data.get("deadline_id"), env.data.get("rule_id"), env.data["met_at"], env.data["due_at"],
                    WITHDRAWAL_LIMIT.days,
                )  # fmt: skip
        else:
            kind = _KIND.get(env.type, "other")
        TRANSITIONS.labels(kind, env.data.get("rule_id", "?"), env.data.get("basis", "?"), env.kommune).inc()


def _in_time(met_at: str, due_at: str) -> bool:
    return datetime.fromisoformat(met_at) <= datetime.fromisoformat(due_at)


def observe_published(rows: Sequence[asyncpg.Record], published_at: datetime) -> None:
    """Relay hook: rows carrying a `due-at` header were timer events; measure due -> published."""
    for row in rows:
        due = (row["headers"] or {}).get("due-at")
        if due:
            kind = "breached" if row["headers"].get("event-type") == ev.BREACHED else "warning"
            DETECTION_LAG.labels(kind).observe(max(0.0, (published_at - datetime.fromisoformat(due)).total_seconds()))


class OpenDeadlineGauges:
    """Open deadlines by rule, basis, kommune and state, as counted in the table (true across instances)."""

    def __init__(self) -> None:
        self._seen: set[tuple[str, str, str, str]] = set()

    def set(self, current: dict[tuple[str, str, str, str], int]) -> None:
        # A label set that vanished from the count goes to 0 rather than keeping its last value.
        for labels in self._seen - set(current):
            OPEN.labels(*labels).set(0)
        for labels, n in current.items():
            OPEN.labels(*labels).set(n)
        self._seen |= set(current)
