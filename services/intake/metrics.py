"""Prometheus metrics of the intake service: accepted submissions, reads and erasures of personal content.

Requests by route and status come from shared.http.MetricsMiddleware; outbox backlog and the
age of its oldest row from the shared relay (label service="intake").
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

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


DETAILS_READ = Counter(
    "intake_details_reads_total",
    "Reads of a report's personal content, each on record in the access log, by purpose and by how the reader came",
    ["purpose", "via"],
)
ERASED = Counter(
    "intake_erased_total",
    "Cases whose personal data was erased: part contact (name, phone, e-mail, client address) or report"
    " (everything personal); basis retention (the erasure job) or request (the data-protection role)",
    ["part", "basis"],
)
ERASURE_OVERDUE = Gauge(
    "intake_erasure_overdue_seconds",
    "How far past its retention the oldest personal data still kept is (0 when nothing is overdue);"
    " set by the erasure job each round",
)
ACCESS_LOG_PURGED = Counter("intake_access_log_purged_total", "Access-log entries deleted past their retention")


def count_read(purpose: str, via: str) -> None:
    DETAILS_READ.labels(purpose, via).inc()


def count_erased(part: str, basis: str, cases: int = 1) -> None:
    if cases:
        ERASED.labels(part, basis).inc(cases)
