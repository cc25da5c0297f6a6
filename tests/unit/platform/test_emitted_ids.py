"""Envelopes that notify and deadlines build today keep their ids, times and subjects across releases.

The ids are deterministic so that a fact computed again (a redelivery, a retry after a crash) is the
same event and the consumers' inboxes drop the copy. Were the id of an event written before an
upgrade to change after it, a redelivered deadline event would raise a second alert and send a
second delivery. The values below were computed by the code before the envelopes came from one
shared helper; they must never change.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from services.deadlines.adapters import repository as deadlines_repository
from services.notify.adapters import repository as notify_repository
from shared import tracing
from shared.events import CloudEvent, EventData
from shared.events import alerts as al
from shared.events import deadlines as dl
from shared.events.envelope import with_trace_context

ALERT = uuid.UUID("6f1c2b0e-3d4a-4c5b-9e8f-0a1b2c3d4e5f")
CASE = uuid.UUID("0c9d8e7f-6a5b-4c3d-8e1f-2a3b4c5d6e7f")
OTHER = uuid.UUID("1a2b3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d")  # a deadline id, a delivery id
T = datetime(2025, 3, 14, 9, 26, 53, 589793, tzinfo=timezone(timedelta(hours=1)))  # Danish winter time
H = timedelta(hours=1)

ALERT_EVENTS: list[tuple[EventData, str, datetime]] = [
    (
        al.AlertRaised(
            alert_id=ALERT, case_id=CASE, deadline_id=OTHER, rule_id="burglary_in_progress",
            reason="deadline_warning", severity="warning", title="Indbrud i beboelse – Roskilde Ø",
            recipients=["lokalbetjent:0265", "vagtchef"], raised_at=T, due_at=T + 24 * H,
            category="burglary_home", reference="MV-7K3Q-9FX",
        ),
        "c07a65e0-e31c-531b-b65b-dd922daf82b5", T,
    ),
    (
        al.AlertRaised(
            alert_id=ALERT, case_id=CASE, reason="acute_report", severity="critical", title="Vold",
            recipients=[], raised_at=T,
        ),
        "109f7c32-2ef1-5e13-b8f6-7c6902798f38", T,
    ),
    (
        al.AlertUpdated(
            alert_id=ALERT, case_id=CASE, reason="deadline_breached", severity="critical",
            superseded="deadline_warning", recipients=["vagtchef"], updated_at=T, due_at=T,
        ),
        "3bc95abc-9937-5262-9874-11f564fb8b83", T,
    ),
    (
        al.AlertDelivered(
            alert_id=ALERT, case_id=CASE, channel="webhook", recipient="vagtchef", delivered_at=T,
            delivery_id=OTHER, stage="escalated-1", attempts=2,
        ),
        "290018f7-f3de-5ff8-98b4-84a02a8b3456", T,
    ),
    (
        al.AlertDeliveryFailed(
            alert_id=ALERT, case_id=CASE, channel="email", recipient="lokalbetjent:0265", error="550 æøå",
            attempt=3, failed_at=T, delivery_id=OTHER, stage="raised", next_channel="console",
        ),
        "c789a142-bc04-5416-a603-89a991e63e75", T,
    ),
    (
        al.AlertAcknowledged(alert_id=ALERT, case_id=CASE, by="b1234", acknowledged_at=T, via="link"),
        "a30cded1-32ca-54a9-b360-1434752c14d3", T,
    ),
    (
        al.AlertEscalated(alert_id=ALERT, case_id=CASE, to="vagtchef", level=1, escalated_at=T, recipients=["vagtchef"]),
        "33126715-14bc-566c-897b-f221e820ecb8", T,
    ),
    (
        al.AlertResolved(alert_id=ALERT, case_id=CASE, resolved_at=T, reason="breach_withdrawn"),
        "9f49fa7d-6df9-5ef4-885c-d09a3c167052", T,
    ),
]  # fmt: skip

_DEADLINE = dict(
    deadline_id=OTHER, case_id=CASE, rule_id="burglary_in_progress", basis="guarantee", window_set_by="law",
    title="Indbrud", category="burglary_home", focus_area="indbrud", started_at=T, due_at=T + 24 * H,
    reference="MV-7K3Q-9FX",
)  # fmt: skip

DEADLINE_EVENTS: list[tuple[EventData, str, datetime]] = [
    (
        dl.DeadlineStarted(**_DEADLINE, window_seconds=86400.0, rules_version=3),
        "9b5713b8-36b6-505b-8ea2-5a92dd48f03b", T,
    ),
    (
        dl.DeadlineWarning(**_DEADLINE, fraction=0.5, warned_at=T + 12 * H, remaining_seconds=43200.0),
        "29e011a1-a99d-5524-89e8-e9c450e584bc", T + 12 * H,
    ),
    (
        dl.DeadlineMet(**_DEADLINE, met_at=T + 2 * H, action="on_scene", late=False, response_seconds=7200.0),
        "27e5f4a5-3516-51e1-80c3-965ff35e7003", T + 2 * H,
    ),
    (
        dl.DeadlineBreached(**_DEADLINE, breached_at=T + 24 * H),
        "91dcc431-31f7-5e4d-bd16-96848f6b2f45", T + 24 * H,
    ),
    (
        dl.DeadlineCancelled(**_DEADLINE, cancelled_at=T + 30 * H, outcome="solved", breached_at=T + 24 * H),
        "b82d7949-dc01-54f1-804a-031420faf5bd", T + 30 * H,
    ),
    (
        dl.DeadlineBreachWithdrawn(
            **_DEADLINE, breached_at=T + 24 * H, action="on_scene", action_at=T + 23 * H,
            action_recorded_at=T + 26 * H,
        ),
        "08d29bf3-855d-50d8-809d-0ca7b5223cbe", T + 26 * H,  # recorded after the breach: when it was recorded
    ),
    (
        dl.DeadlineBreachWithdrawn(**_DEADLINE, breached_at=T + 24 * H, action="on_scene", action_at=T + 23 * H),
        "08d29bf3-855d-50d8-809d-0ca7b5223cbe", T + 24 * H,  # recording time unknown: never before the breach
    ),
    (
        dl.DeadlineRescheduled(
            **(_DEADLINE | {"reschedules": 1}), previous_due_at=T + 24 * H, rescheduled_at=T + 5 * H
        ),
        "3823af0f-bfb7-5817-8f33-2f758f2c4925", T + 5 * H,
    ),
]  # fmt: skip


@pytest.mark.parametrize(("data", "event_id", "time"), ALERT_EVENTS, ids=lambda v: type(v).__name__)
def test_notify_envelopes_keep_the_ids_and_times_of_earlier_releases(
    data: EventData, event_id: str, time: datetime
) -> None:
    [envelope] = notify_repository.to_cloud_events([data], "0265")

    assert (envelope.id, envelope.time, envelope.subject, envelope.kommune) == (
        uuid.UUID(event_id), time, str(CASE), "0265"
    )  # fmt: skip
    assert (envelope.source, envelope.type, envelope.payload()) == ("/mvsj/notify", data.event_type, data)


@pytest.mark.parametrize(("data", "event_id", "time"), DEADLINE_EVENTS, ids=lambda v: type(v).__name__)
def test_deadline_envelopes_keep_the_ids_and_times_of_earlier_releases(
    data: EventData, event_id: str, time: datetime
) -> None:
    [envelope] = deadlines_repository.to_cloud_events([data], {OTHER: "0265"})  # type: ignore[list-item]

    assert (envelope.id, envelope.time, envelope.subject, envelope.kommune) == (
        uuid.UUID(event_id), time, str(CASE), "0265"
    )  # fmt: skip
    assert (envelope.source, envelope.type, envelope.payload()) == ("/mvsj/deadlines", data.event_type, data)


def test_the_tracing_extension_never_feeds_an_id() -> None:
    """Computed inside a trace and published with the CloudEvents tracing attributes (shared/outbox.py), an
    event has the id it has outside any trace: a redelivered cause in another trace is the same event."""
    (warning, warning_id, _), (raised, raised_id, _) = DEADLINE_EVENTS[1], ALERT_EVENTS[0]
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    with tracing.span("a consumed event", parent=tracing.extract({"traceparent": traceparent})):
        [deadline_event] = deadlines_repository.to_cloud_events([warning], {OTHER: "0265"})  # type: ignore[list-item]
        [alert_event] = notify_repository.to_cloud_events([raised], "0265")
    for built, expected in ((deadline_event, warning_id), (alert_event, raised_id)):
        published = CloudEvent.from_bytes(with_trace_context(built.to_bytes(), {"traceparent": traceparent}))
        assert (built.id, published.id, published.traceparent) == (uuid.UUID(expected),) * 2 + (traceparent,)
