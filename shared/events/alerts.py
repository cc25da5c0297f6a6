"""Events on `alerts.v1`: an alert to officers, from raised to resolved."""

from __future__ import annotations

import uuid
from typing import ClassVar, Literal

from pydantic import AwareDatetime, Field

from shared.events.envelope import EventData

TOPIC = "alerts.v1"

RAISED = "dk.politi.alert.raised"
DELIVERED = "dk.politi.alert.delivered"
DELIVERY_FAILED = "dk.politi.alert.delivery_failed"
ACKNOWLEDGED = "dk.politi.alert.acknowledged"
ESCALATED = "dk.politi.alert.escalated"
RESOLVED = "dk.politi.alert.resolved"

Severity = Literal["info", "warning", "critical"]


class _AlertData(EventData):
    topic: ClassVar[str] = TOPIC

    alert_id: uuid.UUID
    case_id: uuid.UUID


class AlertRaised(_AlertData):
    event_type: ClassVar[str] = RAISED

    deadline_id: uuid.UUID | None = None
    rule_id: str | None = None
    reason: Literal["deadline_warning", "deadline_breached", "acute_report"]
    severity: Severity
    title: str
    recipients: list[str] = Field(description="Roster ids, e.g. lokalbetjent:0265 or vagtchef")
    raised_at: AwareDatetime
    due_at: AwareDatetime | None = None


class AlertDelivered(_AlertData):
    event_type: ClassVar[str] = DELIVERED

    channel: str
    recipient: str
    delivered_at: AwareDatetime


class AlertDeliveryFailed(_AlertData):
    event_type: ClassVar[str] = DELIVERY_FAILED

    channel: str
    recipient: str
    error: str
    attempt: int
    failed_at: AwareDatetime


class AlertAcknowledged(_AlertData):
    event_type: ClassVar[str] = ACKNOWLEDGED

    by: str
    acknowledged_at: AwareDatetime


class AlertEscalated(_AlertData):
    event_type: ClassVar[str] = ESCALATED

    to: str
    level: int
    escalated_at: AwareDatetime


class AlertResolved(_AlertData):
    event_type: ClassVar[str] = RESOLVED

    resolved_at: AwareDatetime
    reason: str
