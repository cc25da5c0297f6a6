"""Events on `alerts.v1`: an alert to officers, from raised to resolved.

An alert names a case by reference, category, kommune and due time, never the citizen (DOMAIN.md).
Recipients are roster ids (lokalbetjent, vagtchef, `vagtcentral`), never addresses.
"""

from __future__ import annotations

import uuid
from typing import ClassVar, Literal

from pydantic import AwareDatetime, Field

from shared.events.envelope import EventData

TOPIC = "alerts.v1"

RAISED = "dk.politi.alert.raised"
UPDATED = "dk.politi.alert.updated"
DELIVERED = "dk.politi.alert.delivered"
DELIVERY_FAILED = "dk.politi.alert.delivery_failed"
ACKNOWLEDGED = "dk.politi.alert.acknowledged"
ESCALATED = "dk.politi.alert.escalated"
RESOLVED = "dk.politi.alert.resolved"

Severity = Literal["info", "warning", "critical"]
Reason = Literal["deadline_warning", "deadline_breached", "acute_report"]
Channel = Literal["webhook", "email", "console"]


class AlertData(EventData):
    """What every event of an alert's life carries: the alert and its case."""

    topic: ClassVar[str] = TOPIC

    alert_id: uuid.UUID
    case_id: uuid.UUID


class AlertRaised(AlertData):
    event_type: ClassVar[str] = RAISED
    time_field: ClassVar[str] = "raised_at"

    deadline_id: uuid.UUID | None = None
    rule_id: str | None = None
    reason: Reason
    severity: Severity
    title: str
    recipients: list[str] = Field(description="Roster ids, e.g. lokalbetjent:0265 or vagtchef")
    raised_at: AwareDatetime
    due_at: AwareDatetime | None = None
    category: str | None = None
    reference: str | None = Field(None, max_length=16, description="The case's reference, when notify knows it")


class AlertUpdated(AlertData):
    """The same alert (one per deadline) changed: a later warning, or a breach that supersedes warnings."""

    event_type: ClassVar[str] = UPDATED
    time_field: ClassVar[str] = "updated_at"

    reason: Reason
    severity: Severity
    superseded: Reason | None = Field(None, description="The reason this update replaced, e.g. deadline_warning")
    recipients: list[str] = Field(default_factory=list, description="Who is told of this change (may be none)")
    updated_at: AwareDatetime
    due_at: AwareDatetime | None = None


class AlertDelivered(AlertData):
    event_type: ClassVar[str] = DELIVERED
    time_field: ClassVar[str] = "delivered_at"

    channel: str
    recipient: str
    delivered_at: AwareDatetime
    delivery_id: uuid.UUID | None = Field(None, description="Stable per recipient, channel and stage (webhook-id)")
    stage: str | None = Field(None, description="raised, breached, escalated-N, reminder-N, acknowledged, resolved")
    attempts: int | None = None


class AlertDeliveryFailed(AlertData):
    event_type: ClassVar[str] = DELIVERY_FAILED
    time_field: ClassVar[str] = "failed_at"

    channel: str
    recipient: str
    error: str
    attempt: int
    failed_at: AwareDatetime
    delivery_id: uuid.UUID | None = None
    stage: str | None = None
    next_channel: str | None = Field(None, description="The channel tried next for this recipient, if any")


class AlertAcknowledged(AlertData):
    event_type: ClassVar[str] = ACKNOWLEDGED
    time_field: ClassVar[str] = "acknowledged_at"
    added_fields: ClassVar[frozenset[str]] = frozenset({"by_name"})

    by: str = Field(description="The person's stable id: their roster id, or the identity provider's subject")
    by_name: str | None = Field(None, description="The person's name from the identity provider or the roster")
    acknowledged_at: AwareDatetime
    via: Literal["api", "link", "console"] | None = None


class AlertEscalated(AlertData):
    event_type: ClassVar[str] = ESCALATED
    time_field: ClassVar[str] = "escalated_at"

    to: str
    level: int
    escalated_at: AwareDatetime
    recipients: list[str] = Field(default_factory=list)


class AlertResolved(AlertData):
    event_type: ClassVar[str] = RESOLVED
    time_field: ClassVar[str] = "resolved_at"

    resolved_at: AwareDatetime
    reason: str = Field(
        description="met (deadline met), cancelled (case closed), breach_withdrawn (the breach was withdrawn: "
        "the stop action happened by the due time and reached deadlines late)"
    )
