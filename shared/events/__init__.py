"""Event models, one module per topic; importing this package registers every event type."""

from shared.events import alerts, cases, deadlines
from shared.events.envelope import CloudEvent, EventData, UnknownEventType, utc_rfc3339

__all__ = ["CloudEvent", "EventData", "UnknownEventType", "alerts", "cases", "deadlines", "utc_rfc3339"]
