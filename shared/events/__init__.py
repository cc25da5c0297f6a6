"""Event models, one module per topic; importing this package registers every event type."""

from shared.events import alerts, cases, deadlines
from shared.events.envelope import CloudEvent, EventData, EventMeta, UnknownEventType, envelope, utc_rfc3339

__all__ = [
    "CloudEvent",
    "EventData",
    "EventMeta",
    "UnknownEventType",
    "alerts",
    "cases",
    "deadlines",
    "envelope",
    "utc_rfc3339",
]
