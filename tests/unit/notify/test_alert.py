"""The alert state machine: one alert per deadline, supersede, escalation steps, reminders, ack, resolve, races."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.notify.adapters.policy_file import DEFAULT_POLICY_FILE, load_policy
from services.notify.adapters.roster_file import parse_roster
from services.notify.domain import alert as a
from shared.events import alerts as ev
from shared.events import deadlines as d
from shared.reference import kommuner
from tests.support.notify import roster_document

T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)  # 12:00 local: vc-a is on duty
POLICY = load_policy(DEFAULT_POLICY_FILE)
ROSTER = parse_roster(roster_document(), "r.yaml", kommuner=kommuner(), secrets={})
CASE = uuid.uuid4()
DEADLINE = uuid.uuid4()


def fact(event_type: str, at: datetime = T0, rule: str = "burglary_home_24h", fraction: float | None = None,
         reschedules: int = 0) -> a.DeadlineFact:  # fmt: skip
    return a.DeadlineFact(
        event_type=event_type, deadline_id=DEADLINE, case_id=CASE, deadline_rule=rule, title="Indbrud: 24 timer",
        category="burglary_home", kommune="0265", due_at=T0 + timedelta(hours=12), happened_at=at, fraction=fraction,
        reschedules=reschedules,
    )  # fmt: skip


def raise_(event_type: str, existing: a.Alert | None = None, at: datetime = T0, **kw: Any) -> a.Decision:
    f = fact(event_type, at, **kw)
    rule = POLICY.rule_for(event_type, f.deadline_rule)
    assert rule is not None
    return a.on_deadline(existing, f, rule, ROSTER, at)


def test_a_warning_raises_one_alert_to_the_kommunes_lokalbetjente() -> None:
    decision = raise_(d.WARNING, fraction=0.5)
    alert = decision.alert
    assert alert is not None and alert.state == "open" and alert.severity == "warning"
    assert alert.id == a.alert_id_for(CASE, "burglary_home_24h")
    assert [n.recipients for n in decision.notices] == [("lb-roskilde-1", "lb-roskilde-2")]
    assert [type(e) for e in decision.events] == [ev.AlertRaised]
    assert alert.next_timer_at == T0 + timedelta(minutes=30)


def test_a_second_warning_updates_the_same_alert_and_messages_nobody() -> None:
    first = raise_(d.WARNING, fraction=0.5).alert
    second = raise_(d.WARNING, first, T0 + timedelta(hours=3), fraction=0.75)
    assert second.alert is not None and second.alert.id == first.id  # type: ignore[union-attr]
    assert second.notices == [] and [type(e) for e in second.events] == [ev.AlertUpdated]
    assert second.alert.fraction == 0.75 and second.alert.raised_at == T0


def test_a_breach_supersedes_the_warning_reaches_the_vagtchef_and_reopens_an_acked_alert() -> None:
    warned = raise_(d.WARNING, fraction=0.5).alert
    assert warned is not None
    acked = a.acknowledge(warned, "lb-roskilde-1", T0 + timedelta(minutes=1), "link").alert
    assert acked is not None and acked.state == "acknowledged"
    breach = raise_(d.BREACHED, acked, T0 + timedelta(hours=12))
    alert = breach.alert
    assert alert is not None and alert.id == warned.id
    assert (alert.state, alert.severity, alert.reason, alert.level) == ("open", "critical", "deadline_breached", 0)
    assert breach.notices[0].stage == "breached"
    # Breached at midnight local time: the night's vagtchef (vc-b) is told, with the lokalbetjente.
    assert set(breach.notices[0].recipients) == {"vc-b", "lb-roskilde-1", "lb-roskilde-2"}
    update = breach.events[0]
    assert isinstance(update, ev.AlertUpdated) and update.superseded == "deadline_warning"
    # A warning arriving late, after the breach, changes nothing.
    late = raise_(d.WARNING, alert, T0 + timedelta(hours=13), fraction=0.9)
    assert late.changed is False and late.events == [] and late.notices == []


def test_a_resolved_alert_is_never_reopened_by_a_late_event() -> None:
    alert = raise_(d.WARNING, fraction=0.5).alert
    assert alert is not None
    resolved = a.resolve(alert, "met", T0 + timedelta(minutes=5))
    assert resolved.alert is not None and resolved.alert.state == "resolved"
    assert resolved.notices[0].recipients == ("lb-roskilde-1", "lb-roskilde-2")  # everyone who was notified
    late = raise_(d.BREACHED, resolved.alert, T0 + timedelta(hours=12))
    assert late.changed is False and late.alert.state == "resolved"  # type: ignore[union-attr]


def test_unacknowledged_it_escalates_step_by_step_then_reminds_the_last_step() -> None:
    alert = raise_(d.WARNING, fraction=0.5).alert  # chain lokal: 30 min -> vagtchef -> 30 min -> vagtcentral
    assert alert is not None
    early = a.on_timer(alert, ROSTER, T0 + timedelta(minutes=29))
    assert early.changed is False
    first = a.on_timer(alert, ROSTER, T0 + timedelta(minutes=30))
    assert first.alert is not None and (first.alert.state, first.alert.level) == ("escalated", 1)
    assert first.notices[0].recipients == ("vc-a",)
    escalated = first.events[0]
    assert isinstance(escalated, ev.AlertEscalated) and (escalated.to, escalated.level) == ("vagtchef", 1)
    second = a.on_timer(first.alert, ROSTER, T0 + timedelta(minutes=60))
    assert second.alert is not None and second.alert.level == 2
    assert second.notices[0].recipients == ("vagtcentral",)
    reminder = a.on_timer(second.alert, ROSTER, T0 + timedelta(minutes=90))
    assert reminder.alert is not None and reminder.alert.reminders == 1
    assert reminder.notices[0].recipients == ("vagtcentral",) and reminder.notices[0].stoppable
    assert reminder.alert.next_timer_at == T0 + timedelta(minutes=120)
    assert set(reminder.alert.notified) == {"lb-roskilde-1", "lb-roskilde-2", "vc-a", "vagtcentral"}


def test_an_ack_stops_escalation_and_tells_the_others_who_acknowledged() -> None:
    alert = raise_(d.WARNING, fraction=0.5).alert
    assert alert is not None
    acked = a.acknowledge(alert, "lb-roskilde-2", T0 + timedelta(minutes=2), "api")
    assert acked.alert is not None and acked.alert.next_timer_at is None
    assert acked.notices[0].recipients == ("lb-roskilde-1",) and not acked.notices[0].stoppable
    assert a.on_timer(acked.alert, ROSTER, T0 + timedelta(hours=5)).changed is False
    again = a.acknowledge(acked.alert, "lb-roskilde-1", T0 + timedelta(minutes=3), "api")
    assert again.changed is False and again.alert.acknowledged_by == "lb-roskilde-2"  # type: ignore[union-attr]


@pytest.mark.parametrize("order", ["ack-then-resolve", "resolve-then-ack"])
def test_ack_and_resolve_racing_end_in_one_state(order: str) -> None:
    alert = raise_(d.WARNING, fraction=0.5).alert
    assert alert is not None
    later = T0 + timedelta(minutes=1)
    if order == "ack-then-resolve":
        acked = a.acknowledge(alert, "lb-roskilde-1", later, "api").alert
        assert acked is not None
        final = a.resolve(acked, "met", later).alert
    else:
        final = a.resolve(alert, "met", later).alert
        assert final is not None
        with pytest.raises(a.AlreadyResolved):
            a.acknowledge(final, "lb-roskilde-1", later, "api")
    assert final is not None and final.state == "resolved" and final.next_timer_at is None


def test_an_acute_report_goes_to_the_vagtchef_on_duty_or_the_vagtcentral_in_a_gap() -> None:
    decision = raise_(d.STARTED, rule="violence_acute")
    assert decision.alert is not None and decision.alert.severity == "critical"
    assert decision.notices[0].recipients == ("vc-a",)
    gap_roster = parse_roster(roster_document(rota=[{"officer": "vc-a", "rrule": "FREQ=WEEKLY;BYDAY=SA",
                              "from": "2026-01-03", "start": "07:00", "end": "19:00"}]), "r", kommuner=kommuner(),
                              secrets={})  # fmt: skip
    f = fact(d.STARTED, rule="violence_acute")
    rule = POLICY.rule_for(d.STARTED, "violence_acute")
    assert rule is not None
    in_gap = a.on_deadline(None, f, rule, gap_roster, T0)  # a Monday: nobody on the rota
    assert in_gap.notices[0].recipients == ("vagtcentral",)


def test_a_rescheduled_deadline_moves_the_alerts_due_time_but_not_a_resolved_one() -> None:
    alert = raise_(d.WARNING, fraction=0.5).alert
    assert alert is not None
    later = T0 + timedelta(days=2)
    moved = a.reschedule(alert, later, T0 + timedelta(minutes=1))
    assert moved.alert is not None and moved.alert.due_at == later and moved.notices == []
    assert [type(e) for e in moved.events] == [ev.AlertUpdated]
    resolved = a.resolve(alert, "cancelled", T0).alert
    assert resolved is not None and a.reschedule(resolved, later, T0).changed is False


def test_a_second_breach_after_a_reschedule_reopens_and_tells_everyone_again() -> None:
    first = raise_(d.BREACHED).alert
    assert first is not None
    acked = a.acknowledge(first, "vc-a", T0 + timedelta(minutes=1), "api").alert
    assert acked is not None
    second = raise_(d.BREACHED, acked, T0 + timedelta(hours=2), reschedules=1)
    alert = second.alert
    assert alert is not None and alert.state == "open" and alert.generation == 1 and alert.acknowledged_by is None
    assert alert.next_timer_at == T0 + timedelta(hours=2) + alert.chain.ack_timeout
    assert [n.stage for n in second.notices] == ["breached-g1"] and second.notices[0].recipients
    # The first breach's ack link does not acknowledge the second; one for the second does.
    with pytest.raises(a.MovedOn):
        a.acknowledge(alert, "vc-a", T0 + timedelta(hours=3), "link", for_reason="deadline_breached")
    ok = a.acknowledge(alert, "vc-a", T0 + timedelta(hours=3), "link", for_reason="deadline_breached-g1")
    assert ok.alert is not None and ok.alert.state == "acknowledged"
    assert [n.stage for n in ok.notices] == ["acknowledged-deadline_breached-g1"]
    # Escalations of the new window are new messages too, not repeats the deliveries would drop.
    escalated = a.on_timer(alert, ROSTER, alert.next_timer_at)
    assert [n.stage for n in escalated.notices] == ["deadline_breached-g1-escalated-1"]
    # A late event of the earlier window changes nothing.
    late = raise_(d.BREACHED, alert, T0 + timedelta(hours=4), reschedules=0)
    assert late.changed is False and late.audit[0][0] == "ignored"


def test_a_reschedule_restarts_an_unacknowledged_alerts_escalation_timer() -> None:
    alert = raise_(d.BREACHED).alert
    assert alert is not None and alert.next_timer_at == T0 + alert.chain.ack_timeout
    at = T0 + timedelta(minutes=20)
    moved = a.reschedule(alert, T0 + timedelta(days=2), at).alert
    assert moved is not None and moved.next_timer_at == at + alert.chain.ack_timeout
    acked = a.acknowledge(alert, "vc-a", T0, "api").alert
    assert acked is not None
    assert a.reschedule(acked, T0 + timedelta(days=2), at).alert.next_timer_at is None  # type: ignore[union-attr]
