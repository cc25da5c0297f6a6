"""The Deadline state machine: one rule's clock on one case, from started to met, breached or cancelled.

    pending ──stop──────────────▶ met (late=False)
       │ ├──cancel──────────────▶ cancelled
       │ └──reschedule──▶ pending (new due time)
       └──fire at due──▶ breached ──stop──▶ met (late=True when the action came after the due time)
                            │ └──stop in time──▶ breach withdrawn + met (late=False): the action happened by
                            │                    the due time but reached us after the breach fired
                            ├──cancel──▶ cancelled
                            └──reschedule asked in time, recorded late──▶ pending

Every transition is a pure function of the deadline and a time: the timer's `now` for fire(), the
police action's own time for stop/cancel/reschedule. It returns the new deadline and the events
to publish; a transition that does not apply returns the deadline unchanged and no events, so a
redelivered event is harmless. All times are aware UTC and all arithmetic is elapsed time, so a
change to or from summer time (sommertid) neither shortens nor lengthens a window.

A breach is only a breach when it is one. A stop action whose own time (occurred_at) is at or before
the due time meets the deadline in time, however late it reaches this service: if the breach had
already fired, it is withdrawn (`deadline.breach_withdrawn`, then `deadline.met` with late=False).
"At the due time" counts as in time, as `met_late` has it. The one bound: the police must have
recorded the action (intake's recorded_at) within WITHDRAWAL_LIMIT of the due time; a record typed in
later than that cannot take a published breach back, so the breach stands and the deadline is met
late (`breach_stands`). How long Kafka or a relay held the action never counts against it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final, NamedTuple

from services.deadlines.domain.rules import Rule
from shared.events.cases import ActionRecorded
from shared.events.deadlines import (
    DeadlineBreached,
    DeadlineBreachWithdrawn,
    DeadlineCancelled,
    DeadlineMet,
    DeadlineRescheduled,
    DeadlineStarted,
    DeadlineWarning,
)

# Fixed for good: deadline ids and emitted event ids derive from it, so changing it would make
# a redelivered report start a second deadline.
DEADLINES_NAMESPACE: Final = uuid.UUID("6f1c2a3e-4b7d-5e8f-9a0b-1c2d3e4f5a6b")

DeadlineEvent = (
    DeadlineStarted
    | DeadlineWarning
    | DeadlineMet
    | DeadlineBreached
    | DeadlineCancelled
    | DeadlineRescheduled
    | DeadlineBreachWithdrawn
)

# How long after the due time the police may record an action that happened in time and still have a
# published breach withdrawn. A week covers an officer who types the visit in after a weekend or a
# holiday; a record typed in later is too far from the event for a council to take on trust, and the
# alert it would withdraw has long been dealt with. Measured on the action's recorded_at (stamped by
# intake), never on when it reached this service: an outage of Kafka or a relay is no one's lateness.
WITHDRAWAL_LIMIT: Final = timedelta(days=7)


class DeadlineState(StrEnum):
    """Met late is MET with late=True; a breached deadline stays open until met or cancelled."""

    PENDING = "pending"
    MET = "met"
    BREACHED = "breached"
    CANCELLED = "cancelled"


OPEN_STATES: Final = frozenset({DeadlineState.PENDING, DeadlineState.BREACHED})


def deadline_id(case_id: uuid.UUID, rule_id: str) -> uuid.UUID:
    """Same case and rule, same id: a duplicate start event finds the deadline it made."""
    return uuid.uuid5(DEADLINES_NAMESPACE, f"{case_id}/{rule_id}")


def met_late(met_at: datetime | None, due_at: datetime) -> bool | None:
    """Met after the due time; None while not met (the one formula; the police API uses it on stored rows)."""
    return None if met_at is None else met_at > due_at


def breach_withdrawable(due_at: datetime, action_at: datetime, recorded_at: datetime | None) -> bool:
    """May a stop action withdraw the breach of a deadline due at `due_at`?

    Yes when it happened at or before the due time (not met late) and was recorded within
    WITHDRAWAL_LIMIT of it; an action whose recording time is unknown is judged by its own time alone.
    """
    if met_late(action_at, due_at):
        return False
    return recorded_at is None or recorded_at <= due_at + WITHDRAWAL_LIMIT


def response_seconds(started_at: datetime, met_at: datetime | None) -> float | None:
    """Start to stop action; 0 when the action came first (a patrol there before the report)."""
    return None if met_at is None else max(0.0, (met_at - started_at).total_seconds())


def warning_due_at(started_at: datetime, due_at: datetime, fraction: float) -> datetime:
    """When the warning at `fraction` of the window falls due (the one formula; the relay's lag metric uses it too)."""
    return started_at + (due_at - started_at) * fraction


def utc(value: datetime) -> datetime:
    """`value` in UTC; naive times are refused, because their meaning depends on the machine's zone."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{value!r} has no time zone; deadlines need aware times")
    return value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class PoliceAction:
    """A police action recorded on a case (dispatched, on scene, closed, ...), as deadlines need it."""

    action_id: uuid.UUID
    action: str
    occurred_at: datetime
    requested_time: datetime | None = None
    outcome: str | None = None
    # When intake recorded it (police typed it in); None for actions stored before it was kept.
    recorded_at: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "occurred_at", utc(self.occurred_at))
        for name in ("requested_time", "recorded_at"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, utc(value))

    @classmethod
    def of(cls, payload: ActionRecorded) -> PoliceAction:
        # occurred_at, not recorded_at: the guarantee is met when the patrol arrived, even if the
        # officer typed it in an hour later.
        return cls(
            action_id=payload.action_id,
            action=payload.action,
            occurred_at=payload.occurred_at,
            requested_time=payload.requested_time,
            outcome=payload.outcome,
            recorded_at=payload.recorded_at,
        )


@dataclass(frozen=True, slots=True)
class NextFire:
    """What the timer must do next for a pending deadline: a warning at `fraction`, or the breach."""

    at: datetime
    fraction: float | None


class Transition(NamedTuple):
    """A transition's result: the deadline after it, and the events to publish (none if nothing changed)."""

    deadline: Deadline
    events: list[DeadlineEvent]


@dataclass(frozen=True, slots=True)
class Deadline:
    """A frist (deadline) that one rule set on one case.

    `warnings_sent` and `warnings_skipped` hold the fractions of the current window already dealt
    with; a reschedule starts them afresh. Everything a repository must store is a field here
    (see adapters/repository.py); next_fire_at is derived and stored only to index the timer.
    """

    id: uuid.UUID
    case_id: uuid.UUID
    rule: Rule
    rules_version: int
    kommune: str
    category: str
    focus_area: str
    started_at: datetime
    due_at: datetime
    state: DeadlineState = DeadlineState.PENDING
    warnings_sent: tuple[float, ...] = ()
    warnings_skipped: tuple[float, ...] = ()
    breached_at: datetime | None = None
    met_at: datetime | None = None
    met_action: str | None = None
    cancelled_at: datetime | None = None
    outcome: str | None = None
    # How often the due time moved: the generation of the window, so a breach or warning in a
    # later window is a new fact with its own event id even when the due time comes back.
    reschedules: int = 0
    # The case's reference (from the event that started the deadline), carried on every event so
    # notify can name the case without waiting for cases.v1; None for deadlines started before it.
    reference: str | None = None
    # Met in time, but recorded too long after the due time to withdraw the published breach
    # (WITHDRAWAL_LIMIT): the breach stands and the deadline counts as met late.
    breach_stands: bool = False

    def __post_init__(self) -> None:
        for name in ("started_at", "due_at", "breached_at", "met_at", "cancelled_at"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, utc(value))
        object.__setattr__(self, "state", DeadlineState(self.state))
        if self.due_at < self.started_at:
            raise ValueError(f"deadline {self.id}: due {self.due_at} before start {self.started_at}")

    # -- derived ---------------------------------------------------------------------------------

    @property
    def window(self) -> timedelta:
        """The current window: the rule's, or longer after a citizen asked police to come later."""
        return self.due_at - self.started_at

    @property
    def base_due_at(self) -> datetime:
        """The due time the rule alone sets; a reschedule never moves the deadline before it."""
        return self.started_at + self.rule.window

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def late(self) -> bool | None:
        """Met after the due time (or met in time with a breach that stands); None while not met."""
        late = met_late(self.met_at, self.due_at)
        return late if late is None else late or self.breach_stands

    @property
    def response_seconds(self) -> float | None:
        """Start to stop action; 0 when the action came first (a patrol there before the report)."""
        return response_seconds(self.started_at, self.met_at)

    def warning_at(self, fraction: float) -> datetime:
        return warning_due_at(self.started_at, self.due_at, fraction)

    @property
    def next_fire(self) -> NextFire | None:
        """The next warning or the breach; None once the timer has nothing left to do."""
        if self.state is not DeadlineState.PENDING:
            return None
        for fraction in self._warnings_left():
            return NextFire(at=self.warning_at(fraction), fraction=fraction)
        return NextFire(at=self.due_at, fraction=None)

    @property
    def next_fire_at(self) -> datetime | None:
        upcoming = self.next_fire
        return None if upcoming is None else upcoming.at

    def _warnings_left(self) -> list[float]:
        done = set(self.warnings_sent) | set(self.warnings_skipped)
        return [f for f in self.rule.warn_at if f not in done]

    # -- transitions -----------------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        rule: Rule,
        *,
        rules_version: int,
        case_id: uuid.UUID,
        kommune: str,
        category: str,
        focus_area: str,
        started_at: datetime,
        reference: str | None = None,
    ) -> Transition:
        started = utc(started_at)
        deadline = cls(
            id=deadline_id(case_id, rule.id),
            case_id=case_id,
            rule=rule,
            rules_version=rules_version,
            kommune=kommune,
            category=category,
            focus_area=focus_area,
            started_at=started,
            due_at=started + rule.window,
            reference=reference,
        )
        return Transition(
            deadline,
            [
                DeadlineStarted(
                    **deadline._common(),
                    window_seconds=rule.window.total_seconds(),
                    rules_version=rules_version,
                )
            ],
        )

    def fire(self, now: datetime) -> Transition:
        """Emits what has fallen due by `now`: the breach, or the latest due warning.

        After downtime several marks may be due at once. Only the most meaningful fires, once:
        the breach makes every unsent warning pointless, and of several due warnings the latest
        ("90 % gone") says all the earlier ones would. The passed-over fractions are kept in
        warnings_skipped, so they never fire later either.
        """
        now = utc(now)
        if self.state is not DeadlineState.PENDING:
            return Transition(self, [])
        if now >= self.due_at:
            return self._breach()
        due = [f for f in self._warnings_left() if self.warning_at(f) <= now]
        if not due:
            return Transition(self, [])
        fraction = due[-1]
        warned = replace(
            self,
            warnings_sent=(*self.warnings_sent, fraction),
            warnings_skipped=(*self.warnings_skipped, *due[:-1]),
        )
        return Transition(
            warned,
            [
                DeadlineWarning(
                    **warned._common(),
                    fraction=fraction,
                    warned_at=now,
                    remaining_seconds=(self.due_at - now).total_seconds(),
                )
            ],
        )

    def stop(self, action: str, at: datetime, recorded_at: datetime | None = None) -> Transition:
        """A stop action happened at `at` (recorded at `recorded_at`): met, late if after the due time.

        Breached already, but the action happened by the due time: the breach is withdrawn first
        (see the module's docstring for the one bound). A second stop changes nothing.
        """
        if action not in self.rule.stop_on:
            raise ValueError(f"{action!r} does not meet rule {self.rule.id!r}")
        at = utc(at)
        if not self.is_open:
            return Transition(self, [])
        caught_up, events = self._catch_up(at)
        if caught_up.state is DeadlineState.BREACHED and not met_late(at, caught_up.due_at):
            recorded = None if recorded_at is None else utc(recorded_at)
            if breach_withdrawable(caught_up.due_at, at, recorded):
                assert caught_up.breached_at is not None
                events.append(
                    DeadlineBreachWithdrawn(
                        **caught_up._common(),
                        breached_at=caught_up.breached_at,
                        action=action,
                        action_at=at,
                        action_recorded_at=recorded,
                    )
                )
                caught_up = replace(caught_up, breached_at=None)
            else:
                caught_up = replace(caught_up, breach_stands=True)
        met = replace(caught_up, state=DeadlineState.MET, met_at=at, met_action=action)
        assert met.late is not None and met.response_seconds is not None
        events.append(
            DeadlineMet(
                **met._common(),
                met_at=at,
                action=action,
                late=met.late,
                response_seconds=met.response_seconds,
            )
        )
        return Transition(met, events)

    def cancel(self, outcome: str | None, at: datetime) -> Transition:
        """The case was closed at `at` before the deadline was met: nothing more is owed."""
        at = utc(at)
        if not self.is_open:
            return Transition(self, [])
        caught_up, events = self._catch_up(at)
        cancelled = replace(caught_up, state=DeadlineState.CANCELLED, cancelled_at=at, outcome=outcome)
        events.append(
            DeadlineCancelled(
                **cancelled._common(), cancelled_at=at, outcome=outcome, breached_at=cancelled.breached_at
            )
        )
        return Transition(cancelled, events)

    def reschedule(self, requested_time: datetime, at: datetime) -> Transition:
        """The citizen asked at `at` for the police to come by `requested_time`.

        The deadline moves to the requested time, never before the rule's own due time (a wish
        for sooner does not shorten the guarantee). A request made after the deadline ran out,
        or for a time already past when asked, moves nothing: the guarantee was broken or the
        request means nothing. Warnings start afresh in the new window; those whose moment had
        passed when the citizen asked are skipped rather than sent at once.
        """
        if self.rule.reschedule_on is None:
            raise ValueError(f"rule {self.rule.id!r} cannot be rescheduled")
        at, requested = utc(at), utc(requested_time)
        if not self.is_open:
            return Transition(self, [])
        current, events = self._catch_up(at)
        if at > current.due_at or requested <= at:
            return Transition(current, events)
        new_due = max(current.base_due_at, requested)
        if new_due == current.due_at:
            return Transition(current, events)
        moved = replace(
            current,
            due_at=new_due,
            state=DeadlineState.PENDING,
            breached_at=None,
            warnings_sent=(),
            warnings_skipped=(),
            reschedules=current.reschedules + 1,
        )
        moved = replace(moved, warnings_skipped=tuple(f for f in self.rule.warn_at if moved.warning_at(f) <= at))
        events.append(DeadlineRescheduled(**moved._common(), previous_due_at=current.due_at, rescheduled_at=at))
        return Transition(moved, events)

    def apply_action(self, action: PoliceAction) -> Transition:
        """What `action` does to this deadline under its rule: meet, cancel, move or nothing."""
        if action.action in self.rule.stop_on:
            return self.stop(action.action, action.occurred_at, action.recorded_at)
        if action.action in self.rule.cancel_on:
            return self.cancel(action.outcome, action.occurred_at)
        if action.action == self.rule.reschedule_on and action.requested_time is not None:
            return self.reschedule(action.requested_time, action.occurred_at)
        return Transition(self, [])

    def _breach(self) -> Transition:
        # breached_at is the due time, the moment the promise was broken, not when the timer ran.
        breached = replace(
            self,
            state=DeadlineState.BREACHED,
            breached_at=self.due_at,
            warnings_skipped=(*self.warnings_skipped, *self._warnings_left()),
        )
        return Transition(breached, [DeadlineBreached(**breached._common(), breached_at=self.due_at)])

    def _catch_up(self, at: datetime) -> tuple[Deadline, list[DeadlineEvent]]:
        """Records a breach the timer has not fired yet when an action shows the due time has passed,
        so every broken deadline has its DeadlineBreached, whichever arrives first."""
        if self.state is DeadlineState.PENDING and at > self.due_at:
            deadline, events = self._breach()
            return deadline, list(events)
        return self, []

    def _common(self) -> dict[str, Any]:
        return {
            "deadline_id": self.id,
            "case_id": self.case_id,
            "rule_id": self.rule.id,
            "basis": self.rule.basis,
            "window_set_by": self.rule.window_set_by,
            "title": self.rule.title,
            "category": self.category,
            "focus_area": self.focus_area,
            "started_at": self.started_at,
            "due_at": self.due_at,
            "reschedules": self.reschedules,
            "reference": self.reference,
        }


def emitted_event_id(event: DeadlineEvent) -> uuid.UUID:
    """A deterministic envelope id: computing the same fact twice (a retry after a crash before the
    commit, two timer workers racing) gives the same id, so consumers' inboxes drop the copy."""
    # The window's generation joins the key once the deadline has moved (ids of unmoved deadlines
    # stay as they were): breached, re-opened by a late-recorded request and clamped back to the
    # same due time, the second breach is a new fact, not a copy for the outbox to drop.
    generation = f"/{event.reschedules}" if event.reschedules else ""
    match event:
        case DeadlineWarning():
            key = f"{event.fraction}/{utc(event.started_at).isoformat()}/{utc(event.due_at).isoformat()}{generation}"
        case DeadlineBreached() | DeadlineBreachWithdrawn():
            # A breach is withdrawn at most once: the same key as the breach, under its own type.
            key = f"{utc(event.due_at).isoformat()}{generation}"
        case DeadlineRescheduled():
            key = "/".join(utc(t).isoformat() for t in (event.previous_due_at, event.due_at, event.rescheduled_at))
        case _:
            # started, met, cancelled happen at most once in a deadline's life.
            key = ""
    return uuid.uuid5(event.deadline_id, f"{event.event_type}/{key}")
