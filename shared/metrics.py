"""Prometheus metrics the shared plumbing reports, labelled by service; services add their own."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

OUTBOX_PUBLISHED = Counter("outbox_published_total", "Outbox rows published to Kafka", ["service", "topic"])
OUTBOX_PUBLISH_FAILURES = Counter(
    "outbox_publish_failures_total", "Relay rounds that failed to publish (rows stay pending)", ["service"]
)
OUTBOX_BACKLOG = Gauge(
    "outbox_backlog_events", "Events waiting in the outbox (rows written, not yet published)", ["service"]
)
OUTBOX_OLDEST_AGE = Gauge(
    "outbox_oldest_pending_age_seconds", "Age of the oldest unpublished outbox row (0 when none)", ["service"]
)
OUTBOX_DELAY = Histogram(
    "outbox_publish_delay_seconds",
    "From outbox row written to published",
    ["service"],
    buckets=LATENCY_BUCKETS,
)

CONSUMED = Counter(
    "consumer_events_total",
    "Events a consumer handled, by outcome (processed, duplicate, skipped, dead_lettered)",
    ["service", "consumer", "topic", "outcome"],
)
CONSUMER_LAG = Gauge(
    "consumer_lag_messages",
    "Messages on a partition this consumer has not read yet (high-water mark - next offset to read),"
    " as of the last message it processed",
    ["service", "consumer", "topic", "partition"],
)
CONSUMER_RETRIES = Counter(
    "consumer_retries_total",
    "Handler attempts that failed and will be retried",
    ["service", "consumer", "kind"],
)

HTTP_REQUESTS = Counter(
    "http_requests_total", "HTTP requests by route and status", ["service", "method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request duration by route",
    ["service", "method", "route"],
    buckets=LATENCY_BUCKETS,
)

CLOCK_SKEW = Gauge(
    "clock_skew_seconds",
    "This host's clock minus Postgres's (positive: the host runs ahead); the service corrects by it",
    ["service"],
)

HTTP_READ_TIMEOUTS = Counter(
    "http_read_timeouts_total",
    "Connections closed because a request's headers or body did not arrive in time",
    ["service", "phase"],
)

# API keys (shared/key_file.py). No service label: every service reads the same API_KEYS_FILE, and
# the scrape's job and instance labels say whose copy it is.
API_KEY_EXPIRY = Gauge(
    "api_key_expiry_timestamp_seconds",
    "When an API key stops being accepted (Unix time), per client and key id; keys without an expiry have no series",
    ["client", "key_id"],
)
API_KEYS_RELOAD_ERRORS = Counter(
    "api_keys_reload_errors_total",
    "Changed versions of API_KEYS_FILE that were refused (malformed or unreadable); the keys read before stay in use",
)
API_KEYS_FILE_REJECTED = Gauge(
    "api_keys_file_rejected",
    "1 while API_KEYS_FILE on disk is refused and the keys read before it stay in use (a restart would refuse to"
    " start), else 0",
)
