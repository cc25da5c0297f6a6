"""Prometheus metrics of the intake service: accepted submissions by event type and kommune.

Requests by route and status come from shared.http.MetricsMiddleware; outbox backlog and the
age of its oldest row from the shared relay (label service="intake").
"""

from __future__ import annotations

from prometheus_client import Counter

from shared.events import CloudEvent
from shared.events.envelope import TYPE_PREFIX

ACCEPTED = Counter(
    "intake_accepted_total",
    "Submissions accepted and committed (with their event in the outbox), by event type and kommune",
    ["type", "kommune"],
)
REPLAYED = Counter(
    "intake_idempotent_replays_total", "Requests answered from an earlier answer to the same Idempotency-Key", ["route"]
)


def count_accepted(event: CloudEvent) -> None:
    """Counts after the transaction committed; a replay or a rolled-back attempt is never counted."""
    ACCEPTED.labels(event.type.removeprefix(TYPE_PREFIX), event.kommune).inc()
