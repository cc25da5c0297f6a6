"""Events on `cases.v1`: what happens to a case, from the citizen's report to the police's last action.

No event carries a citizen's name, phone, e-mail, address, report text or any other free text a
citizen typed (the school named in a drug-dealing report included; docs/contract.md, Privacy):
those stay in intake's own tables. Every field here is a code, a time, a yes/no or an id.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar, Literal

from pydantic import AwareDatetime, Field, model_validator

from shared.events.envelope import EventData

TOPIC = "cases.v1"

REPORTED = "dk.politi.case.reported"
TIP_RECEIVED = "dk.politi.case.tip_received"
OFFICER_REQUESTED = "dk.politi.case.officer_requested"
ACTION_RECORDED = "dk.politi.case.action_recorded"

Action = Literal[
    "dispatched",
    "on_scene",
    "citizen_requested_later",
    "school_and_ssp_contacted",
    "followup_done",
    "replied",
    "carried_out",
    "closed",
]
ACTIONS: tuple[str, ...] = Action.__args__  # type: ignore[attr-defined]

RequestType = Literal["traffic_control", "talk"]


class CaseData(EventData):
    """What every event of a case carries: its id and reference. The event's time is when intake received
    it, or for an action when it happened."""

    topic: ClassVar[str] = TOPIC
    time_field: ClassVar[str] = "received_at"

    case_id: uuid.UUID
    reference: str = Field(min_length=4, max_length=16, description="Short reference read over the phone")


class CaseReported(CaseData):
    """A citizen's report was accepted (anmeldelse modtaget)."""

    event_type: ClassVar[str] = REPORTED

    category: str
    focus_area: str
    received_at: AwareDatetime = Field(description="When intake accepted the report: the guarantee clock starts here")
    occurred_at: AwareDatetime | None = None
    in_progress: bool | None = Field(None, description="Burglary: the perpetrator is still there")
    acute: bool | None = Field(None, description="Violence, rape: acute need")
    channel: Literal["portal", "phone", "police"] = "portal"

    @model_validator(mode="before")
    @classmethod
    def _drop_legacy_institution(cls, data: Any) -> Any:
        # Events written before the institution left the bus carried the citizen's free text in
        # `institution`; a reader drops it, so replaying an old topic neither fails nor keeps it.
        if isinstance(data, dict) and "institution" in data:
            return {k: v for k, v in data.items() if k != "institution"}
        return data


class TipReceived(CaseData):
    """A tip (tip til politiet) was received; anonymous tips carry nothing that points at the tipster."""

    event_type: ClassVar[str] = TIP_RECEIVED

    category: str
    focus_area: str
    received_at: AwareDatetime
    occurred_at: AwareDatetime | None = None
    anonymous: bool


class OfficerRequested(CaseData):
    """A citizen ordered an officer (Bestil en betjent): a traffic control or a talk."""

    event_type: ClassVar[str] = OFFICER_REQUESTED

    request_type: RequestType
    category: str
    focus_area: str
    received_at: AwareDatetime


class ActionRecorded(CaseData):
    """The police recorded an action on a case (dispatched, on scene, closed, ...)."""

    event_type: ClassVar[str] = ACTION_RECORDED
    time_field: ClassVar[str] = "occurred_at"

    action_id: uuid.UUID
    action: Action
    category: str = Field(description="The case's category, so consumers need not look it up")
    occurred_at: AwareDatetime = Field(description="When it happened, e.g. when the patrol arrived")
    recorded_at: AwareDatetime
    requested_time: AwareDatetime | None = Field(None, description="citizen_requested_later: come by then")
    outcome: str | None = Field(None, max_length=64, description="closed: how the case ended")
    officer_id: str | None = Field(None, max_length=32, description="Police staff id (not citizen data)")

    @model_validator(mode="after")
    def _fields_the_action_needs(self) -> ActionRecorded:
        if self.action == "citizen_requested_later" and self.requested_time is None:
            raise ValueError("citizen_requested_later needs requested_time")
        if self.action == "closed" and not self.outcome:
            raise ValueError("closed needs an outcome")
        return self
