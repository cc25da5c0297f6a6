"""The CloudEvents envelope and event models: what crosses a service boundary."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import ClassVar

import pytest
from pydantic import ValidationError

from shared.events import CloudEvent, EventData, EventMeta, UnknownEventType, envelope
from shared.events.cases import ActionRecorded, CaseReported, TipReceived
from shared.events.deadlines import DeadlineMet

CASE = uuid.UUID("6f1c2b1e-8a7d-4a53-9d0e-4a2f1c3b5d7e")
T0 = datetime(2026, 3, 1, 8, 15, tzinfo=UTC)


def reported(**over: object) -> CaseReported:
    fields: dict[str, object] = dict(
        case_id=CASE, reference="MV-7K3Q-9F", category="burglary_home", focus_area="indbrud", received_at=T0
    )
    return CaseReported(**(fields | over))


def test_envelope_is_cloudevents_structured_json_with_utc_times() -> None:
    local = T0.astimezone(timezone(timedelta(hours=1)))  # Danish winter time in, UTC out
    event = CloudEvent.of(
        reported(received_at=local), source="/mvsj/intake", subject=str(CASE), kommune="265", time=local
    )
    body = json.loads(event.to_bytes())
    assert body["specversion"] == "1.0"
    assert body["type"] == "dk.politi.case.reported"
    assert body["datacontenttype"] == "application/json"
    assert body["time"] == "2026-03-01T08:15:00Z"
    assert body["data"]["received_at"] == "2026-03-01T08:15:00Z"
    assert body["kommune"] == "0265"  # canonical four-digit code
    assert body["subject"] == str(CASE)
    uuid.UUID(body["id"])


def test_round_trip_gives_the_typed_payload() -> None:
    event = CloudEvent.of(reported(in_progress=True), source="/mvsj/intake", subject=str(CASE), kommune="0265", time=T0)
    again = CloudEvent.from_bytes(event.to_bytes())
    assert again == event
    payload = again.payload()
    assert isinstance(payload, CaseReported) and payload.in_progress is True


def test_kommune_outside_the_district_is_refused() -> None:
    with pytest.raises(ValidationError, match="kommunekode"):
        CloudEvent.of(reported(), source="/mvsj/intake", subject=str(CASE), kommune="0101", time=T0)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValidationError):
        reported(received_at=datetime(2026, 3, 1, 8, 15))


def test_unknown_type_is_recognisable_for_skipping() -> None:
    event = CloudEvent(
        source="/mvsj/x", type="dk.politi.case.teleported", subject="c", time=T0, kommune="0253", data={}
    )
    with pytest.raises(UnknownEventType):
        event.payload()


def test_action_fields_depend_on_the_action() -> None:
    base = dict(
        case_id=CASE,
        reference="MV-7K3Q-9F",
        action_id=uuid.uuid4(),
        category="burglary_home",
        occurred_at=T0,
        recorded_at=T0,
    )
    with pytest.raises(ValidationError, match="requested_time"):
        ActionRecorded(action="citizen_requested_later", **base)
    with pytest.raises(ValidationError, match="outcome"):
        ActionRecorded(action="closed", **base)
    with pytest.raises(ValidationError):
        ActionRecorded(action="teleported", **base)
    assert ActionRecorded(action="on_scene", **base).action == "on_scene"


def test_every_event_type_of_spec_is_registered() -> None:
    spec = {
        "case.reported", "case.tip_received", "case.officer_requested", "case.action_recorded",
        "deadline.started", "deadline.warning", "deadline.met", "deadline.breached", "deadline.cancelled",
        "deadline.rescheduled", "alert.raised", "alert.delivered", "alert.delivery_failed",
        "alert.acknowledged", "alert.escalated", "alert.resolved",
        # Beyond SPEC's list (a contract extension, see services/notify/README.md): one alert per
        # deadline changes when a later warning comes or a breach supersedes it.
        "alert.updated",
        # Beyond SPEC's list too (docs/contract.md): a breach published before the stop action that
        # shows the deadline was met in time reached the service is taken back as an event of its own.
        "deadline.breach_withdrawn",
    }  # fmt: skip
    assert {t.removeprefix("dk.politi.") for t in EventData.registry} == spec
    for event_type, model in EventData.registry.items():
        assert model.topic == event_type.split(".")[2] + "s.v1"  # case.* on cases.v1, and so on


PERSONAL = {
    "name",
    "phone",
    "email",
    "address",
    "description",
    "text",
    "contact",
    "cpr",
    "ip",
    "client_address",
}


OFFICER_FIELDS = {"dk.politi.alert.acknowledged": {"by_name"}}


@pytest.mark.parametrize("model", [EventData.registry[t] for t in sorted(EventData.registry)])
def test_no_event_has_a_field_for_personal_data(model: type[EventData]) -> None:
    """docs/contract.md, Privacy: events carry a case id, never a name, phone number, e-mail or report text."""
    # The officer who acknowledged is named (an employee acting in office, issue 16), never a citizen.
    fields = set(model.model_fields) - OFFICER_FIELDS.get(model.event_type, set())
    assert not {f for f in fields for p in PERSONAL if p == f or f.startswith(p + "_") or f.endswith("_" + p)}


def test_event_data_refuses_unknown_fields_so_personal_data_cannot_slip_in() -> None:
    with pytest.raises(ValidationError, match="phone"):
        TipReceived(
            case_id=CASE, reference="MV-7K3Q-9F", category="drug_dealing_street", focus_area="narkotika_gadeplan",
            received_at=T0, anonymous=False, phone="12345678",  # type: ignore[call-arg]
        )  # fmt: skip


def test_met_event_carries_lateness_and_response_time() -> None:
    met = DeadlineMet(
        deadline_id=uuid.uuid4(), case_id=CASE, rule_id="burglary_24h", basis="guarantee", window_set_by="law", title="Indbrud",
        category="burglary_home", focus_area="indbrud", started_at=T0, due_at=T0 + timedelta(hours=24),
        met_at=T0 + timedelta(hours=25), action="on_scene", late=True, response_seconds=90000.0,
    )  # fmt: skip
    assert met.model_dump(mode="json")["met_at"] == "2026-03-02T09:15:00Z"


def test_a_case_reported_event_has_no_free_text_field_and_drops_a_legacy_institution() -> None:
    # Every field is a code, a time, a yes/no or an id: no place for what a citizen typed.
    assert "institution" not in CaseReported.model_fields
    old = {
        "case_id": str(uuid.uuid4()),
        "reference": "MV-1234",
        "category": "drug_dealing_school",
        "focus_area": "narkotika",
        "received_at": "2026-03-01T08:00:00Z",
        "institution": "Himmelev Skole, ring 20304050",
    }
    assert "20304050" not in CaseReported.model_validate(old).model_dump_json()


def test_every_event_type_declares_when_its_fact_happened() -> None:
    for model in EventData.registry.values():
        assert model.time_field or model.occurred is not EventData.occurred, model.__name__
    with pytest.raises(TypeError, match="time_field"):

        class Undated(EventData):  # a new type that forgot its time cannot be defined
            event_type: ClassVar[str] = "dk.politi.case.undated"
            at: datetime | None = None

    assert "dk.politi.case.undated" not in EventData.registry


def test_the_shared_envelope_takes_subject_and_time_from_the_payload() -> None:
    data = reported(received_at=T0 + timedelta(minutes=5), occurred_at=T0 - timedelta(days=1))
    event = envelope(data, source="/mvsj/intake", kommune="265")
    assert (event.type, event.subject, event.kommune, event.time) == (
        data.event_type,
        str(CASE),
        "0265",
        data.received_at,
    )
    assert event.payload() == data
    assert event.meta == EventMeta(id=event.id, subject=str(CASE), kommune="0265", time=data.received_at)
