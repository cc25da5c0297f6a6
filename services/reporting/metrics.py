"""Prometheus metrics of the reporting service: reports rendered, how long they take, how fresh the data is."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from prometheus_client import Counter, Gauge, Histogram

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


def set_freshness(newest: Mapping[str, datetime]) -> None:
    """`newest`: the time of the newest event applied, per topic (the read model's `freshness()`)."""
    for topic, at in newest.items():
        LAST_EVENT.labels(topic).set(at.timestamp())


# Council report e-mails (the delivery plan), one per recipient and period. Every outcome's series
# exists from the start at 0, so the first failure is an increase Prometheus sees.
COUNCIL_EMAIL_OUTCOMES = ("sent", "retry", "failed", "resent_in_doubt")
COUNCIL_EMAILS = Counter(
    "reporting_council_report_emails_total",
    "Council report e-mails by outcome: sent; retry (a try failed, another follows); failed (no more tries, or"
    " the report could not be made); resent_in_doubt (sent again under the same Message-ID after a try whose"
    " answer was never recorded)",
    ["outcome"],
)
for _outcome in COUNCIL_EMAIL_OUTCOMES:
    COUNCIL_EMAILS.labels(_outcome)
