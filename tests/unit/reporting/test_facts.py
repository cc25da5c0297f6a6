"""Facts merge the same whatever the order and however often an event comes: the ground of idempotency."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta

from services.reporting import handlers
from services.reporting.domain.facts import AlertAckFact, AlertFact, AlertStageFact, DeadlineFact, FactBatch
from shared.events import CloudEvent
from shared.events import alerts as al
from shared.events import deadlines as dl
from tests.support.cases import reported

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
CASE = uuid.uuid4()
DEADLINE = uuid.uuid4()


def _deadline_event(
    model: type[dl.DeadlineData], due: datetime = T0 + timedelta(hours=24), **extra: object
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
        assert handlers.add_event(batch, event.meta, event.payload())
    return batch


def test_a_deadline_comes_out_the_same_in_any_order_and_with_repeats() -> None:
    life = _life()
    expected = _fold(life).of_type(DeadlineFact)
    for order in itertools.permutations(life):
        assert _fold([*order, *order[:2]]).of_type(DeadlineFact) == expected
    fact = expected[0]
    assert fact.due_at == T0 + timedelta(hours=48)  # the citizen's later time is the newest word
    assert fact.rescheduled and fact.met_late is False and fact.window_seconds == 86400.0


def test_a_breach_withdrawn_leaves_no_breach_in_any_order_and_with_repeats() -> None:
    # Issue 14: breached at the due time, then the on_scene of 23:40 h arrived; withdrawn, then met in time.
    due, on_scene = T0 + timedelta(hours=24), T0 + timedelta(hours=23, minutes=40)
    life = [
        _deadline_event(dl.DeadlineStarted, window_seconds=86400.0, rules_version=1),
        _deadline_event(dl.DeadlineBreached, breached_at=due),
        _deadline_event(dl.DeadlineBreachWithdrawn, breached_at=due, action="on_scene", action_at=on_scene),
        _deadline_event(
            dl.DeadlineMet,
            met_at=on_scene,
            action="on_scene",
            late=False,
            response_seconds=(on_scene - T0).total_seconds(),
        ),
    ]
    expected = _fold(life).of_type(DeadlineFact)
    for order in itertools.permutations(life):
        assert _fold([*order, *order[1:3]]).of_type(DeadlineFact) == expected
    [fact] = expected
    assert (fact.breached_at, fact.breach_withdrawn) == (None, True)
    assert (fact.met_at, fact.met_late, fact.response_seconds) == (on_scene, False, (on_scene - T0).total_seconds())
    # Without the withdrawal the breach stands (a deadline met late keeps its breach).
    kept = _fold([life[0], life[1], _deadline_event(dl.DeadlineMet, met_at=due + timedelta(hours=1), action="on_scene",
                                                    late=True, response_seconds=90000.0)]).of_type(DeadlineFact)  # fmt: skip
    assert kept[0].breached_at == due and kept[0].breach_withdrawn is False


def test_an_alert_keeps_every_acknowledgement_and_its_highest_escalation() -> None:
    alert, case = uuid.uuid4(), uuid.uuid4()

    def env(data: al.AlertData) -> CloudEvent:
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
        batch = _fold(order)
        (fact,) = batch.of_type(AlertFact)
        assert sorted(a.acknowledged_at for a in batch.of_type(AlertAckFact)) == [
            T0 + timedelta(minutes=7),
            T0 + timedelta(minutes=9),
        ]
        assert fact.escalation_level == 2
        assert fact.raised_at == T0 and fact.severity == "critical"


def test_an_updated_alert_has_the_latest_severity_in_any_order_and_a_supersede_starts_a_stage() -> None:
    alert, case = uuid.uuid4(), uuid.uuid4()
    breach = T0 + timedelta(hours=2)

    def env(data: al.AlertData) -> CloudEvent:
        return CloudEvent.of(data, source="/mvsj/notify", subject=str(case), kommune="0253", time=T0)

    events = [
        env(al.AlertRaised(alert_id=alert, case_id=case, reason="deadline_warning", severity="warning",
                           title="Frist", recipients=["lokalbetjent:0253"], raised_at=T0)),
        env(al.AlertUpdated(alert_id=alert, case_id=case, reason="deadline_warning", severity="warning",
                            updated_at=T0 + timedelta(hours=1))),
        env(al.AlertUpdated(alert_id=alert, case_id=case, reason="deadline_breached", severity="critical",
                            superseded="deadline_warning", updated_at=breach)),
    ]  # fmt: skip
    for order in itertools.permutations(events):
        batch = _fold([*order, order[0]])
        (fact,) = batch.of_type(AlertFact)
        assert (fact.severity, fact.reason, fact.severity_as_of) == ("critical", "deadline_breached", breach)
        assert fact.raised_at == T0
        # The raising and the supersede start stages; the later warning does not.
        assert sorted(s.started_at for s in batch.of_type(AlertStageFact)) == [T0, breach]


def test_freshness_is_the_newest_event_time_per_topic() -> None:
    first = reported(uuid.uuid4(), "violence", T0, acute=True)
    second = reported(uuid.uuid4(), "violence", T0 + timedelta(hours=1), acute=True)
    batch = _fold([second, first])
    assert batch.last_event_at == {"cases.v1": T0 + timedelta(hours=1)}
    assert len(batch) == 2
