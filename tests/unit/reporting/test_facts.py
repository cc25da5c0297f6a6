"""Facts merge the same whatever the order and however often an event comes: the ground of idempotency."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta

from services.reporting import handlers
from services.reporting.domain.facts import AlertFact, DeadlineFact, FactBatch
from shared.events import CloudEvent
from shared.events import alerts as al
from shared.events import deadlines as dl
from tests.support.cases import reported

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
CASE = uuid.uuid4()
DEADLINE = uuid.uuid4()


def _deadline_event(
    model: type[dl._DeadlineData], due: datetime = T0 + timedelta(hours=24), **extra: object
) -> CloudEvent:
    data = model(
        deadline_id=DEADLINE, case_id=CASE, rule_id="burglary_home_24h", basis="guarantee", window_set_by="law",
        title="Indbrud", category="burglary_home", focus_area="indbrud", started_at=T0, due_at=due, **extra,
    )  # fmt: skip
    return CloudEvent.of(data, source="/mvsj/deadlines", subject=str(CASE), kommune="0265", time=T0)


def _life() -> list[CloudEvent]:
    later = T0 + timedelta(hours=48)
    return [
        _deadline_event(dl.DeadlineStarted, window_seconds=86400.0, rules_version=1),
        _deadline_event(
            dl.DeadlineRescheduled,
            due=later,
            previous_due_at=T0 + timedelta(hours=24),
            rescheduled_at=T0 + timedelta(hours=1),
        ),
        _deadline_event(
            dl.DeadlineMet,
            due=later,
            met_at=T0 + timedelta(hours=30),
            action="on_scene",
            late=False,
            response_seconds=30 * 3600.0,
        ),
    ]


def _fold(events: list[CloudEvent]) -> FactBatch:
    batch = FactBatch()
    for event in events:
        assert handlers.add_event(batch, event, event.payload())
    return batch


def test_a_deadline_comes_out_the_same_in_any_order_and_with_repeats() -> None:
    life = _life()
    expected = _fold(life).of_type(DeadlineFact)
    for order in itertools.permutations(life):
        assert _fold([*order, *order[:2]]).of_type(DeadlineFact) == expected
    fact = expected[0]
    assert fact.due_at == T0 + timedelta(hours=48)  # the citizen's later time is the newest word
    assert fact.rescheduled and fact.met_late is False and fact.window_seconds == 86400.0


def test_an_alert_keeps_its_first_acknowledgement_and_highest_escalation() -> None:
    alert, case = uuid.uuid4(), uuid.uuid4()

    def env(data: al._AlertData) -> CloudEvent:
        return CloudEvent.of(data, source="/mvsj/notify", subject=str(case), kommune="0253", time=T0)

    events = [
        env(
            al.AlertRaised(
                alert_id=alert,
                case_id=case,
                reason="deadline_breached",
                severity="critical",
                title="Brudt",
                recipients=["vagtchef"],
                raised_at=T0,
            )
        ),
        env(
            al.AlertEscalated(
                alert_id=alert, case_id=case, to="vagtchef", level=2, escalated_at=T0 + timedelta(minutes=5)
            )
        ),
        env(
            al.AlertEscalated(
                alert_id=alert, case_id=case, to="vagtchef", level=1, escalated_at=T0 + timedelta(minutes=2)
            )
        ),
        env(al.AlertAcknowledged(alert_id=alert, case_id=case, by="v1", acknowledged_at=T0 + timedelta(minutes=7))),
        env(al.AlertAcknowledged(alert_id=alert, case_id=case, by="v2", acknowledged_at=T0 + timedelta(minutes=9))),
    ]
    for order in (events, list(reversed(events))):
        (fact,) = _fold(order).of_type(AlertFact)
        assert fact.acknowledged_at == T0 + timedelta(minutes=7)
        assert fact.escalation_level == 2
        assert fact.raised_at == T0 and fact.severity == "critical"


def test_freshness_is_the_newest_event_time_per_topic() -> None:
    first = reported(uuid.uuid4(), "violence", T0, acute=True)
    second = reported(uuid.uuid4(), "violence", T0 + timedelta(hours=1), acute=True)
    batch = _fold([second, first])
    assert batch.last_event_at == {"cases.v1": T0 + timedelta(hours=1)}
    assert len(batch) == 2
