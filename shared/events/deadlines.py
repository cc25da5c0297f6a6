"""Events on `deadlines.v1`: the life of one deadline (a guarantee or a local target) of one case."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar, Literal

from pydantic import AwareDatetime, Field

from shared.events.envelope import EventData

TOPIC = "deadlines.v1"

STARTED = "dk.politi.deadline.started"
WARNING = "dk.politi.deadline.warning"
MET = "dk.politi.deadline.met"
BREACHED = "dk.politi.deadline.breached"
CANCELLED = "dk.politi.deadline.cancelled"
RESCHEDULED = "dk.politi.deadline.rescheduled"
BREACH_WITHDRAWN = "dk.politi.deadline.breach_withdrawn"

Basis = Literal["guarantee", "local_target"]


class DeadlineData(EventData):
    """What every event of a deadline's life carries: the deadline, its case, its rule and its window."""

    topic: ClassVar[str] = TOPIC

    deadline_id: uuid.UUID
    case_id: uuid.UUID
    rule_id: str
    basis: Basis = Field(description="guarantee = law (politigaranti); local_target = the district's own target")
    window_set_by: Literal["law", "district"] = Field(
        description="Whose number the window is: the law's, or the district's target for an 'at once' guarantee"
    )
    title: str
    category: str
    focus_area: str
    started_at: AwareDatetime
    due_at: AwareDatetime
    reschedules: int = Field(
        0, ge=0, description="How often the due time has moved; a breach in a later window is a new breach"
    )
    reference: str | None = Field(
        None,
        min_length=4,
        max_length=16,
        description="The case's reference (e.g. MV-7K3Q-9FX), so an alert names the case even before its "
        "cases.v1 event arrives; absent on events written before the field existed",
    )


class DeadlineStarted(DeadlineData):
    event_type: ClassVar[str] = STARTED
    time_field: ClassVar[str] = "started_at"

    window_seconds: float
    rules_version: int


class DeadlineWarning(DeadlineData):
    event_type: ClassVar[str] = WARNING
    time_field: ClassVar[str] = "warned_at"

    fraction: float = Field(gt=0, lt=1, description="Share of the window that has passed")
    warned_at: AwareDatetime
    remaining_seconds: float


class DeadlineMet(DeadlineData):
    event_type: ClassVar[str] = MET
    time_field: ClassVar[str] = "met_at"

    met_at: AwareDatetime
    action: str
    late: bool = Field(description="The stop action came after the due time")
    response_seconds: float = Field(description="From start to the stop action, as councils measure it")


class DeadlineBreached(DeadlineData):
    event_type: ClassVar[str] = BREACHED
    time_field: ClassVar[str] = "breached_at"

    breached_at: AwareDatetime


class DeadlineCancelled(DeadlineData):
    event_type: ClassVar[str] = CANCELLED
    time_field: ClassVar[str] = "cancelled_at"

    cancelled_at: AwareDatetime
    outcome: str | None = None
    breached_at: AwareDatetime | None = Field(None, description="Set when the deadline was broken before it ended")


class DeadlineBreachWithdrawn(DeadlineData):
    """A breach already published was no breach: the stop action happened by the due time but reached the
    service after the breach fired (held in intake's outbox while Kafka or the relay was down, or typed in
    late). Followed by `deadline.met` with late=false. Consumers undo what the breach did: notify resolves
    its alert, reporting counts the deadline met within the window, not breached."""

    event_type: ClassVar[str] = BREACH_WITHDRAWN

    breached_at: AwareDatetime = Field(description="The breach withdrawn (its due time), as deadline.breached had it")
    action: str = Field(description="The stop action that kept the promise, e.g. on_scene")
    action_at: AwareDatetime = Field(description="When the action happened (its occurred_at), at or before due_at")
    action_recorded_at: AwareDatetime | None = Field(
        None, description="When the police recorded the action in intake (null if unknown)"
    )
    reason: Literal["action_in_time"] = Field(
        "action_in_time", description="Why: the action's own time shows the deadline was met within the window"
    )

    @property
    def occurred(self) -> datetime:
        """When the police recorded the action that showed the promise kept (the moment the withdrawal
        became knowable; its arrival may be much later, after an outage), but never before the breach
        it takes back."""
        return max(self.action_recorded_at or self.action_at, self.breached_at)


class DeadlineRescheduled(DeadlineData):
    event_type: ClassVar[str] = RESCHEDULED
    time_field: ClassVar[str] = "rescheduled_at"

    previous_due_at: AwareDatetime
    rescheduled_at: AwareDatetime
