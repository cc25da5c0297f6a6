"""The Deadline state machine: warnings, breach, met (late or not), cancel, reschedule, downtime, DST."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.deadlines.adapters.repository import deadline_from_record, deadline_to_record
from services.deadlines.domain.deadline import (
    WITHDRAWAL_LIMIT,
    Deadline,
    DeadlineState,
    NextFire,
    PoliceAction,
    breach_withdrawable,
    deadline_id,
    emitted_event_id,
)
from services.deadlines.domain.rules import Rule, Trigger
from shared.clock import ManualClock
from shared.events.deadlines import (
    DeadlineBreached,
    DeadlineBreachWithdrawn,
    DeadlineCancelled,
    DeadlineMet,
    DeadlineRescheduled,
    DeadlineStarted,
    DeadlineWarning,
)

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
H = timedelta(hours=1)
CASE = uuid.UUID("2b6f0c1e-8f5e-4c1a-9d55-3c2f1a9e7b10")
COPENHAGEN = ZoneInfo("Europe/Copenhagen")

BURGLARY = Rule(
    id="burglary_home_24h",
    title="Indbrud i privat hjem: politiet på stedet inden for 24 timer",
    basis="guarantee",
    when=Trigger(event="dk.politi.case.reported", conditions=(("category", ("burglary_home",)),)),
    start="received_at",
    stop_on=("on_scene",),
    window=timedelta(hours=24),
    warn_at=(0.5, 0.75, 0.9),
    reschedule_on="citizen_requested_later",
    window_set_by="law",
    law_says="inden for 24 timer",
)
AT_ONCE = Rule(
    id="violence_acute",
    title="Akut vold",
    basis="guarantee",
    when=Trigger(event="dk.politi.case.reported"),
    start="received_at",
    stop_on=("on_scene",),
    window=timedelta(minutes=15),
    warn_at=(0.5, 0.8),
    window_set_by="district",
    law_says="med det samme",
)


def started(rule: Rule = BURGLARY, at: datetime = T0) -> Deadline:
    deadline, _ = Deadline.start(
        rule,
        rules_version=7,
        case_id=CASE,
        kommune="0265",
        category="burglary_home",
        focus_area="indbrud",
        started_at=at,
    )
    return deadline


# -- start ----------------------------------------------------------------------------------------


def test_start_sets_the_due_time_and_announces_it() -> None:
    deadline, events = Deadline.start(
        BURGLARY,
        rules_version=7,
        case_id=CASE,
        kommune="0265",
        category="burglary_home",
        focus_area="indbrud",
        started_at=T0,
    )
    assert deadline.state is DeadlineState.PENDING
    assert deadline.due_at == T0 + 24 * H
    assert deadline.next_fire == NextFire(at=T0 + 12 * H, fraction=0.5)
    assert events == [
        DeadlineStarted(
            deadline_id=deadline_id(CASE, "burglary_home_24h"),
            case_id=CASE,
            rule_id="burglary_home_24h",
            basis="guarantee",
            window_set_by="law",
            title=BURGLARY.title,
            category="burglary_home",
            focus_area="indbrud",
            started_at=T0,
            due_at=T0 + 24 * H,
            window_seconds=86_400.0,
            rules_version=7,
        )
    ]


def test_the_same_case_and_rule_always_give_the_same_deadline_id() -> None:
    assert started().id == started(at=T0 + H).id == deadline_id(CASE, BURGLARY.id)
    assert deadline_id(CASE, "violence_acute") != deadline_id(CASE, BURGLARY.id)
    assert deadline_id(uuid.uuid4(), BURGLARY.id) != deadline_id(CASE, BURGLARY.id)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        started(at=datetime(2026, 3, 2, 8, 0))
    with pytest.raises(ValueError, match="no time zone"):
        started().fire(datetime(2026, 3, 2, 20, 0))


# -- fire: warnings and breach --------------------------------------------------------------------


def test_warnings_fire_once_each_at_their_fraction_then_the_breach() -> None:
    clock = ManualClock(T0)
    deadline = started()
    fired: list[tuple[timedelta, object]] = []
    # Step through the day as a timer would, including early and repeated wake-ups.
    for offset in [
        12 * H - timedelta(seconds=1),
        12 * H,
        12 * H,
        18 * H,
        21.6 * H,
        24 * H - timedelta(microseconds=1),
        24 * H,
        24 * H,
        30 * H,
    ]:
        clock.set(T0 + offset)
        deadline, events = deadline.fire(clock.now())
        fired.extend((offset, e) for e in events)
    kinds = [(offset, type(e).__name__, e.fraction if isinstance(e, DeadlineWarning) else None) for offset, e in fired]
    assert kinds == [
        (12 * H, "DeadlineWarning", 0.5),
        (18 * H, "DeadlineWarning", 0.75),
        (21.6 * H, "DeadlineWarning", 0.9),
        (24 * H, "DeadlineBreached", None),
    ]
    warning = fired[1][1]
    assert isinstance(warning, DeadlineWarning)
    assert warning.warned_at == T0 + 18 * H
    assert warning.remaining_seconds == 6 * 3600
    breach = fired[-1][1]
    assert isinstance(breach, DeadlineBreached) and breach.breached_at == T0 + 24 * H
    assert deadline.state is DeadlineState.BREACHED
    assert deadline.warnings_sent == (0.5, 0.75, 0.9)
    assert deadline.next_fire is None


def test_after_downtime_only_the_latest_due_warning_is_sent() -> None:
    deadline, events = started().fire(T0 + 20 * H)
    assert [(type(e), getattr(e, "fraction", None)) for e in events] == [(DeadlineWarning, 0.75)]
    assert deadline.warnings_sent == (0.75,)
    assert deadline.warnings_skipped == (0.5,)
    assert deadline.next_fire == NextFire(at=T0 + 21.6 * H, fraction=0.9)


def test_after_downtime_past_the_due_time_only_the_breach_is_sent() -> None:
    deadline, events = started().fire(T0 + 30 * H)
    assert events == [
        DeadlineBreached(
            deadline_id=deadline.id,
            case_id=CASE,
            rule_id=BURGLARY.id,
            basis="guarantee",
            window_set_by="law",
            title=BURGLARY.title,
            category="burglary_home",
            focus_area="indbrud",
            started_at=T0,
            due_at=T0 + 24 * H,
            breached_at=T0 + 24 * H,
        )
    ]
    assert deadline.warnings_skipped == (0.5, 0.75, 0.9)
    assert deadline.fire(T0 + 31 * H).events == []


def test_a_window_of_minutes_warns_and_breaches_on_time() -> None:
    deadline = started(AT_ONCE)
    deadline, events = deadline.fire(T0 + timedelta(minutes=7, seconds=30))
    assert [getattr(e, "fraction", None) for e in events] == [0.5]
    deadline, events = deadline.fire(T0 + timedelta(minutes=12))
    assert [getattr(e, "fraction", None) for e in events] == [0.8]
    deadline, events = deadline.fire(T0 + timedelta(minutes=15))
    assert [type(e) for e in events] == [DeadlineBreached]


# -- stop -----------------------------------------------------------------------------------------


def test_stop_in_time_meets_the_deadline_once() -> None:
    deadline, events = started().stop("on_scene", T0 + 3 * H)
    assert deadline.state is DeadlineState.MET
    assert len(events) == 1 and isinstance(events[0], DeadlineMet)
    assert (events[0].late, events[0].response_seconds, events[0].action) == (False, 3 * 3600, "on_scene")
    assert events[0].met_at == T0 + 3 * H
    assert deadline.next_fire is None
    assert deadline.stop("on_scene", T0 + 4 * H) == (deadline, [])
    assert deadline.fire(T0 + 30 * H) == (deadline, [])
    assert deadline.cancel("henlagt", T0 + 5 * H) == (deadline, [])


def test_stop_exactly_at_the_due_time_is_in_time() -> None:
    _, events = started().stop("on_scene", T0 + 24 * H)
    assert isinstance(events[0], DeadlineMet) and events[0].late is False


def test_stop_after_the_breach_is_met_late() -> None:
    breached, _ = started().fire(T0 + 24 * H)
    deadline, events = breached.stop("on_scene", T0 + 26 * H)
    assert deadline.state is DeadlineState.MET
    assert [(type(e), getattr(e, "late", None)) for e in events] == [(DeadlineMet, True)]
    assert isinstance(events[0], DeadlineMet) and events[0].response_seconds == 26 * 3600


def test_an_arrival_in_time_recorded_after_the_breach_is_not_late() -> None:
    # The patrol arrived at 23 h; the officer typed it in at 25 h, after the breach alert went out:
    # the breach is withdrawn first, then the deadline is met in time.
    breached, _ = started().fire(T0 + 24 * H)
    deadline, events = breached.stop("on_scene", T0 + 23 * H, recorded_at=T0 + 25 * H)
    assert [type(e) for e in events] == [DeadlineBreachWithdrawn, DeadlineMet]
    assert isinstance(events[1], DeadlineMet) and events[1].late is False
    assert deadline.late is False


# -- a breach withdrawn: the action's own time shows the promise was kept ---------------------------


def test_an_action_before_the_due_time_that_arrives_after_the_breach_withdraws_it() -> None:
    # On scene at 23:40 h, recorded at once, held in intake's outbox until after the breach fired.
    breached, _ = started().fire(T0 + 24 * H)
    on_scene = T0 + 23 * H + timedelta(minutes=40)
    deadline, events = breached.apply_action(_act("on_scene", on_scene, recorded_at=on_scene + timedelta(minutes=1)))
    withdrawn, met = events
    assert isinstance(withdrawn, DeadlineBreachWithdrawn) and isinstance(met, DeadlineMet)
    assert (withdrawn.deadline_id, withdrawn.case_id, withdrawn.rule_id) == (deadline.id, CASE, BURGLARY.id)
    assert (withdrawn.due_at, withdrawn.breached_at) == (T0 + 24 * H, T0 + 24 * H)
    assert (withdrawn.action, withdrawn.action_at, withdrawn.reason) == ("on_scene", on_scene, "action_in_time")
    assert withdrawn.action_recorded_at == on_scene + timedelta(minutes=1)
    assert (met.late, met.met_at, met.response_seconds) == (False, on_scene, (on_scene - T0).total_seconds())
    # No breach stands: the deadline is met in time, and nothing is left for the timer.
    assert (deadline.state, deadline.breached_at, deadline.late, deadline.breach_stands) == (
        DeadlineState.MET, None, False, False,
    )  # fmt: skip
    assert deadline.next_fire is None
    # Its time: when the action was recorded, but never before the breach it takes back.
    assert withdrawn.occurred == T0 + 24 * H
    recorded_late = breached.stop("on_scene", on_scene, recorded_at=T0 + 26 * H).events[0]
    assert recorded_late.occurred == T0 + 26 * H


def test_an_action_exactly_at_the_due_time_withdraws_the_breach() -> None:
    # At the due time is in time (met_late is strictly after), so a breach fired at that instant goes.
    breached, _ = started().fire(T0 + 24 * H)
    deadline, events = breached.stop("on_scene", T0 + 24 * H, recorded_at=T0 + 24 * H)
    assert [type(e) for e in events] == [DeadlineBreachWithdrawn, DeadlineMet]
    assert deadline.late is False


def test_an_action_after_the_due_time_is_met_late_and_withdraws_nothing() -> None:
    breached, _ = started().fire(T0 + 24 * H)
    deadline, events = breached.stop("on_scene", T0 + 24 * H + timedelta(seconds=1), recorded_at=T0 + 25 * H)
    assert [type(e) for e in events] == [DeadlineMet]
    assert isinstance(events[0], DeadlineMet) and events[0].late is True
    assert deadline.breached_at == T0 + 24 * H


def test_a_withdrawal_is_made_once_and_a_second_stop_changes_nothing() -> None:
    breached, fired = started().fire(T0 + 24 * H)
    deadline, events = breached.stop("on_scene", T0 + 20 * H, recorded_at=T0 + 21 * H)
    assert len(events) == 2
    assert deadline.stop("on_scene", T0 + 19 * H, recorded_at=T0 + 21 * H) == (deadline, [])
    assert deadline.fire(T0 + 48 * H) == (deadline, [])
    # Computed again (a retry after a crash), it is the same event: consumers' inboxes drop the copy.
    again = breached.stop("on_scene", T0 + 20 * H, recorded_at=T0 + 21 * H).events
    assert [emitted_event_id(e) for e in again] == [emitted_event_id(e) for e in events]
    # Its id is not the breach's, though both are keyed by the due time.
    assert emitted_event_id(events[0]) != emitted_event_id(fired[0])


def test_a_record_typed_in_within_a_week_of_the_due_time_still_withdraws_the_breach() -> None:
    breached, _ = started().fire(T0 + 24 * H)
    _, events = breached.stop("on_scene", T0 + 23 * H, recorded_at=T0 + 24 * H + WITHDRAWAL_LIMIT)
    assert [type(e) for e in events] == [DeadlineBreachWithdrawn, DeadlineMet]


def test_a_record_typed_in_more_than_a_week_after_the_due_time_leaves_the_breach_standing() -> None:
    breached, _ = started().fire(T0 + 24 * H)
    recorded = T0 + 24 * H + WITHDRAWAL_LIMIT + timedelta(seconds=1)
    deadline, events = breached.stop("on_scene", T0 + 23 * H, recorded_at=recorded)
    assert [type(e) for e in events] == [DeadlineMet]
    assert isinstance(events[0], DeadlineMet) and events[0].late is True  # counted as met late
    assert (deadline.breached_at, deadline.breach_stands, deadline.late) == (T0 + 24 * H, True, True)
    assert deadline_from_record(deadline_to_record(deadline)) == deadline


def test_an_action_in_time_on_a_deadline_not_yet_breached_is_simply_met() -> None:
    deadline, events = started().fire(T0 + 22 * H)[0].stop("on_scene", T0 + 23 * H, recorded_at=T0 + 30 * H)
    assert [type(e) for e in events] == [DeadlineMet] and deadline.late is False


def test_breach_withdrawable_is_the_one_decision() -> None:
    due = T0 + 24 * H
    assert breach_withdrawable(due, due - H, due + H)
    assert breach_withdrawable(due, due, due)
    assert breach_withdrawable(due, due - H, None)  # recorded time unknown: judged by the action's time
    assert not breach_withdrawable(due, due + timedelta(microseconds=1), due + H)
    assert breach_withdrawable(due, due - H, due + WITHDRAWAL_LIMIT)
    assert not breach_withdrawable(due, due - H, due + WITHDRAWAL_LIMIT + timedelta(microseconds=1))


def test_a_withdrawal_after_a_reopened_and_breached_again_window_is_keyed_by_that_window() -> None:
    breached, _ = started().fire(T0 + 24 * H)
    reopened, _ = breached.reschedule(T0 + 30 * H, at=T0 + 20 * H)
    again, events = reopened.fire(T0 + 30 * H)
    assert isinstance(events[0], DeadlineBreached) and events[0].reschedules == 1
    deadline, events = again.stop("on_scene", T0 + 29 * H, recorded_at=T0 + 29 * H)
    withdrawn = events[0]
    assert isinstance(withdrawn, DeadlineBreachWithdrawn)
    assert (withdrawn.reschedules, withdrawn.breached_at) == (1, T0 + 30 * H)
    assert deadline.late is False


def test_a_late_stop_before_the_timer_fired_records_the_breach_first() -> None:
    deadline, events = started().stop("on_scene", T0 + 25 * H)
    assert [type(e) for e in events] == [DeadlineBreached, DeadlineMet]
    assert isinstance(events[1], DeadlineMet) and events[1].late is True
    assert deadline.breached_at == T0 + 24 * H


def test_a_patrol_there_before_the_report_responds_in_zero_seconds() -> None:
    _, events = started().stop("on_scene", T0 - timedelta(minutes=5))
    assert isinstance(events[0], DeadlineMet)
    assert (events[0].late, events[0].response_seconds) == (False, 0.0)


def test_stop_refuses_an_action_the_rule_does_not_stop_on() -> None:
    with pytest.raises(ValueError, match="'dispatched' does not meet rule"):
        started().stop("dispatched", T0 + H)


# -- cancel ---------------------------------------------------------------------------------------


def test_closing_the_case_cancels_a_pending_deadline() -> None:
    deadline, events = started().cancel("henlagt", T0 + 2 * H)
    assert deadline.state is DeadlineState.CANCELLED
    assert len(events) == 1 and isinstance(events[0], DeadlineCancelled)
    assert (events[0].outcome, events[0].cancelled_at) == ("henlagt", T0 + 2 * H)
    assert events[0].breached_at is None  # kept: councils count it as neither kept nor broken
    assert deadline.next_fire is None
    assert deadline.cancel("henlagt", T0 + 3 * H) == (deadline, [])
    assert deadline.stop("on_scene", T0 + 3 * H) == (deadline, [])


def test_closing_after_the_breach_cancels_but_the_breach_stands_in_the_record() -> None:
    breached, _ = started().fire(T0 + 25 * H)
    deadline, events = breached.cancel("henlagt", T0 + 26 * H)
    assert [type(e) for e in events] == [DeadlineCancelled]
    assert deadline.state is DeadlineState.CANCELLED
    assert deadline.breached_at == T0 + 24 * H
    cancelled = events[0]
    assert isinstance(cancelled, DeadlineCancelled)
    assert cancelled.breached_at == T0 + 24 * H  # the event tells reporting it was broken first


def test_closing_after_the_due_time_before_the_timer_fired_records_the_breach() -> None:
    deadline, events = started().cancel("henlagt", T0 + 30 * H)
    assert [type(e) for e in events] == [DeadlineBreached, DeadlineCancelled]
    assert deadline.state is DeadlineState.CANCELLED


# -- reschedule -----------------------------------------------------------------------------------


def test_citizen_asking_for_later_moves_the_due_time_and_the_warnings() -> None:
    deadline, events = started().reschedule(T0 + 48 * H, at=T0 + 2 * H)
    assert events == [
        DeadlineRescheduled(
            deadline_id=deadline.id,
            case_id=CASE,
            rule_id=BURGLARY.id,
            basis="guarantee",
            window_set_by="law",
            title=BURGLARY.title,
            category="burglary_home",
            focus_area="indbrud",
            started_at=T0,
            due_at=T0 + 48 * H,
            previous_due_at=T0 + 24 * H,
            rescheduled_at=T0 + 2 * H,
            reschedules=1,
        )
    ]
    assert deadline.window == 48 * H
    assert deadline.next_fire == NextFire(at=T0 + 24 * H, fraction=0.5)
    # The old due time passes with a warning, not a breach.
    deadline, events = deadline.fire(T0 + 24 * H)
    assert [(type(e), getattr(e, "fraction", None)) for e in events] == [(DeadlineWarning, 0.5)]
    deadline, events = deadline.fire(T0 + 48 * H)
    assert [type(e) for e in events] == [DeadlineBreached]


def test_warnings_whose_moment_had_passed_when_asked_are_skipped_not_sent() -> None:
    deadline, _ = started().fire(T0 + 12 * H)  # 0.5 sent
    deadline, _ = deadline.reschedule(T0 + 30 * H, at=T0 + 20 * H)
    # New window 30 h: 0.5 at 15 h has passed; 0.75 at 22.5 h is next.
    assert deadline.warnings_sent == ()
    assert deadline.warnings_skipped == (0.5,)
    assert deadline.next_fire == NextFire(at=T0 + 22.5 * H, fraction=0.75)
    assert deadline.fire(T0 + 20 * H).events == []


def test_a_wish_for_sooner_does_not_shorten_the_guarantee() -> None:
    deadline = started()
    assert deadline.reschedule(T0 + 10 * H, at=T0 + H) == (deadline, [])


def test_asking_twice_for_the_same_time_moves_once_and_a_new_time_moves_again() -> None:
    once, events = started().reschedule(T0 + 40 * H, at=T0 + H)
    assert len(events) == 1
    assert once.reschedule(T0 + 40 * H, at=T0 + 2 * H) == (once, [])
    # Back to a time still later than the rule allows: moves again, never below the rule's 24 h.
    sooner, events = once.reschedule(T0 + 30 * H, at=T0 + 3 * H)
    assert sooner.due_at == T0 + 30 * H
    assert isinstance(events[0], DeadlineRescheduled) and events[0].previous_due_at == T0 + 40 * H
    lowest, _ = sooner.reschedule(T0 + 5 * H, at=T0 + 4 * H)
    assert lowest.due_at == T0 + 24 * H


def test_a_requested_time_already_past_when_asked_moves_nothing() -> None:
    deadline = started()
    assert deadline.reschedule(T0 + 2 * H, at=T0 + 3 * H) == (deadline, [])


def test_asking_after_the_window_ran_out_does_not_undo_the_breach() -> None:
    deadline, events = started().reschedule(T0 + 48 * H, at=T0 + 25 * H)
    assert [type(e) for e in events] == [DeadlineBreached]
    assert deadline.state is DeadlineState.BREACHED and deadline.due_at == T0 + 24 * H
    assert deadline.reschedule(T0 + 48 * H, at=T0 + 26 * H) == (deadline, [])


def test_a_request_made_in_time_but_recorded_after_the_breach_reopens_the_deadline() -> None:
    breached, _ = started().fire(T0 + 25 * H)
    deadline, events = breached.reschedule(T0 + 40 * H, at=T0 + 2 * H)
    assert [type(e) for e in events] == [DeadlineRescheduled]
    assert deadline.state is DeadlineState.PENDING
    assert (deadline.due_at, deadline.breached_at) == (T0 + 40 * H, None)
    # Processed at 25 h: the 0.5 mark of the new window (20 h) is due now; 0.75 (30 h) is not.
    deadline, events = deadline.fire(T0 + 25 * H)
    assert [getattr(e, "fraction", None) for e in events] == [0.5]


def test_a_second_breach_after_a_reopening_and_a_clamped_request_gets_its_own_id() -> None:
    """Hardening 17: breach; a request made in time but recorded late re-opens the deadline; an
    earlier request is clamped back to the rule's due time; the second breach is a new event."""
    first, events = started().fire(T0 + 25 * H)
    (first_breach,) = events
    reopened, _ = first.reschedule(T0 + 40 * H, at=T0 + 2 * H)
    clamped, events = reopened.reschedule(T0 + 10 * H, at=T0 + 3 * H)
    assert [type(e) for e in events] == [DeadlineRescheduled]
    assert clamped.due_at == first.due_at == T0 + 24 * H  # back to the rule's own due time
    second, events = clamped.fire(T0 + 26 * H)
    (second_breach,) = events
    assert isinstance(second_breach, DeadlineBreached) and second.state is DeadlineState.BREACHED
    assert second_breach.due_at == first_breach.due_at
    assert emitted_event_id(second_breach) != emitted_event_id(first_breach)
    # Computed again (a retry after a crash), the second breach keeps its id.
    assert emitted_event_id(clamped.fire(T0 + 27 * H).events[0]) == emitted_event_id(second_breach)
    assert deadline_from_record(deadline_to_record(second)) == second  # the generation is stored


def test_reschedule_does_nothing_to_a_closed_deadline_and_refuses_rules_without_it() -> None:
    met, _ = started().stop("on_scene", T0 + H)
    assert met.reschedule(T0 + 48 * H, at=T0 + 2 * H) == (met, [])
    with pytest.raises(ValueError, match="cannot be rescheduled"):
        started(AT_ONCE).reschedule(T0 + H, at=T0)


# -- actions by rule ------------------------------------------------------------------------------


def _act(name: str, at: datetime, **extra: object) -> PoliceAction:
    return PoliceAction(action_id=uuid.uuid4(), action=name, occurred_at=at, **extra)  # type: ignore[arg-type]


def test_apply_action_meets_cancels_moves_or_ignores_by_the_rule() -> None:
    deadline = started()
    assert deadline.apply_action(_act("dispatched", T0 + H)) == (deadline, [])
    assert [type(e) for e in deadline.apply_action(_act("on_scene", T0 + H)).events] == [DeadlineMet]
    assert [type(e) for e in deadline.apply_action(_act("closed", T0 + H, outcome="x")).events] == [DeadlineCancelled]
    moved = deadline.apply_action(_act("citizen_requested_later", T0 + H, requested_time=T0 + 30 * H))
    assert moved.deadline.due_at == T0 + 30 * H


# -- elapsed time across summer time --------------------------------------------------------------


def test_24_hours_across_the_spring_change_are_24_elapsed_hours() -> None:
    # 29 March 2026, 02:00 CET becomes 03:00 CEST: the local day has 23 hours.
    reported_local = datetime(2026, 3, 29, 1, 30, tzinfo=COPENHAGEN)
    deadline = started(at=reported_local)
    assert deadline.due_at == datetime(2026, 3, 30, 0, 30, tzinfo=UTC)
    assert deadline.due_at.astimezone(COPENHAGEN).hour == 2  # 02:30 local, not 01:30
    # Wall-clock arithmetic would have cut an hour off the guarantee.
    assert reported_local + timedelta(hours=24) != deadline.due_at
    # 01:30 local the next day is only 23 elapsed hours: a warning, not yet a breach.
    deadline, events = deadline.fire(datetime(2026, 3, 30, 1, 30, tzinfo=COPENHAGEN))
    assert [type(e) for e in events] == [DeadlineWarning]
    deadline, events = deadline.fire(datetime(2026, 3, 30, 2, 30, tzinfo=COPENHAGEN))
    assert [type(e) for e in events] == [DeadlineBreached]


def test_24_hours_across_the_autumn_change_are_24_elapsed_hours() -> None:
    # 25 October 2026, 03:00 CEST becomes 02:00 CET: the local day has 25 hours.
    reported_local = datetime(2026, 10, 25, 1, 30, tzinfo=COPENHAGEN)
    deadline = started(at=reported_local)
    assert deadline.due_at == datetime(2026, 10, 25, 23, 30, tzinfo=UTC)
    assert deadline.due_at.astimezone(COPENHAGEN) == datetime(2026, 10, 26, 0, 30, tzinfo=COPENHAGEN)
    assert deadline.warning_at(0.5) == reported_local.astimezone(UTC) + 12 * H
    deadline, events = deadline.fire(datetime(2026, 10, 26, 0, 30, tzinfo=COPENHAGEN))
    assert [type(e) for e in events] == [DeadlineBreached]


def test_fifteen_minutes_across_the_repeated_autumn_hour() -> None:
    # 02:50 CEST (first 02:xx) + 15 elapsed minutes = 02:05 CET (second 02:xx), local time going back.
    first = datetime(2026, 10, 25, 2, 50, tzinfo=COPENHAGEN, fold=0)
    deadline = started(AT_ONCE, at=first)
    assert deadline.due_at - deadline.started_at == timedelta(minutes=15)
    assert deadline.due_at == datetime(2026, 10, 25, 1, 5, tzinfo=UTC)
    assert deadline.fire(datetime(2026, 10, 25, 2, 55, tzinfo=COPENHAGEN, fold=0)).events == []
    assert [type(e) for e in deadline.fire(datetime(2026, 10, 25, 2, 5, tzinfo=COPENHAGEN, fold=1)).events] == [
        DeadlineBreached
    ]


# -- storage and envelope helpers -----------------------------------------------------------------


def test_a_deadline_survives_a_round_trip_through_its_record() -> None:
    deadline, _ = started().fire(T0 + 20 * H)
    deadline, _ = deadline.reschedule(T0 + 40 * H, at=T0 + 21 * H)
    deadline, _ = deadline.fire(T0 + 31 * H)
    record = deadline_to_record(deadline)
    assert record["next_fire_at"] == deadline.next_fire_at == T0 + 36 * H
    assert record["next_fire_fraction"] == 0.9
    assert record["state"] == "pending" and record["rule_id"] == BURGLARY.id
    assert deadline_from_record(record) == deadline
    finished, _ = deadline.stop("on_scene", T0 + 41 * H)
    assert deadline_from_record(deadline_to_record(finished)) == finished
    assert deadline_to_record(finished)["next_fire_at"] is None


def test_emitted_event_ids_are_the_same_when_a_fact_is_computed_again() -> None:
    deadline = started()
    # A retry after a crash computes the warning again, a little later: same fact, same id.
    first = deadline.fire(T0 + 12 * H).events[0]
    retry = deadline.fire(T0 + 12 * H + timedelta(seconds=3)).events[0]
    assert emitted_event_id(first) == emitted_event_id(retry)
    later = deadline.fire(T0 + 18 * H).events[0]
    assert emitted_event_id(later) != emitted_event_id(first)
    start = Deadline.start(
        BURGLARY,
        rules_version=7,
        case_id=CASE,
        kommune="0265",
        category="burglary_home",
        focus_area="indbrud",
        started_at=T0,
    ).events[0]
    assert emitted_event_id(start) not in {emitted_event_id(first), emitted_event_id(later)}
    # After a reschedule the same fraction warns again, as a new event.
    moved, _ = deadline.reschedule(T0 + 48 * H, at=T0 + H)
    assert emitted_event_id(moved.fire(T0 + 24 * H).events[0]) != emitted_event_id(first)


def test_event_time_is_when_the_fact_happened() -> None:
    deadline = started()
    warned = deadline.fire(T0 + 13 * H).events[0]
    late = deadline.stop("on_scene", T0 + 25 * H).events
    assert warned.occurred == T0 + 13 * H
    assert [e.occurred for e in late] == [T0 + 24 * H, T0 + 25 * H]
