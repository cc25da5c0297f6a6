"""CaseDeadlines: one case's deadlines and the police actions seen on it, the unit the service changes."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from services.deadlines.domain.deadline import Deadline, DeadlineEvent, PoliceAction
from services.deadlines.domain.rules import RuleSet
from shared.events.cases import ActionRecorded
from shared.events.envelope import EventData
from shared.reference import categories


class CaseDeadlines:
    """The deadlines of one case (sag), keyed by rule id, and every police action recorded on it.

    Kafka keeps a case's events in order on one partition, but intake may publish an action before
    the report that starts a deadline (two requests racing, a report keyed in after the patrol
    arrived). So actions are remembered whether or not a deadline exists yet, and a deadline that
    starts later replays them in the order they happened: an on_scene seen before the report
    meets the 24-hour guarantee the moment it starts. An event for a case never seen before is
    therefore not an error: the case simply starts with that event.

    apply() is idempotent: a deadline is found again by case and rule (a duplicate report starts
    nothing), and an action by its action_id (a duplicate action changes nothing).
    """

    def __init__(
        self,
        case_id: uuid.UUID,
        deadlines: Iterable[Deadline] = (),
        actions: Iterable[PoliceAction] = (),
    ) -> None:
        self.case_id = case_id
        self._deadlines: dict[str, Deadline] = {}
        for deadline in deadlines:
            if deadline.case_id != case_id:
                raise ValueError(f"deadline {deadline.id} belongs to case {deadline.case_id}, not {case_id}")
            self._deadlines[deadline.rule.id] = deadline
        self._actions: list[PoliceAction] = sorted(actions, key=_in_time_order)

    @property
    def deadlines(self) -> dict[str, Deadline]:
        """The case's deadlines by rule id (a copy: change them through apply and fire)."""
        return dict(self._deadlines)

    @property
    def actions(self) -> list[PoliceAction]:
        """Police actions seen on the case, in the order they happened."""
        return list(self._actions)

    @property
    def next_fire_at(self) -> datetime | None:
        times = [d.next_fire_at for d in self._deadlines.values() if d.next_fire_at is not None]
        return min(times, default=None)

    def apply(self, payload: EventData, kommune: str, rules: RuleSet) -> list[DeadlineEvent]:
        """Takes one event's payload from cases.v1 (and the kommune its envelope names) and returns the
        deadline events it causes, in order.

        Raises ValueError for another case's event.
        """
        case_id = getattr(payload, "case_id", None)
        if case_id != self.case_id:
            raise ValueError(f"{payload.event_type} is for case {case_id}, not {self.case_id}")
        emitted: list[DeadlineEvent] = []

        action: PoliceAction | None = None
        if isinstance(payload, ActionRecorded):
            if any(seen.action_id == payload.action_id for seen in self._actions):
                return []
            action = PoliceAction.of(payload)
            self._actions.append(action)
            self._actions.sort(key=_in_time_order)

        started_now: set[str] = set()
        for rule in rules.match(payload.event_type, payload):
            if rule.id in self._deadlines:
                continue
            category = str(getattr(payload, "category", ""))
            deadline, events = Deadline.start(
                rule,
                rules_version=rules.version,
                case_id=self.case_id,
                kommune=kommune,
                category=category,
                focus_area=_focus_area(payload, category),
                started_at=rule.start_time(payload),
                reference=getattr(payload, "reference", None),
            )
            # Actions that came first (this one included, if an action started the rule) are replayed
            # in the order they happened, as if they had arrived after the start.
            for seen in self._actions:
                deadline, more = deadline.apply_action(seen)
                events.extend(more)
            self._deadlines[rule.id] = deadline
            started_now.add(rule.id)
            emitted.extend(events)

        if action is not None:
            for rule_id, deadline in list(self._deadlines.items()):
                if rule_id in started_now:
                    continue
                self._deadlines[rule_id], events = deadline.apply_action(action)
                emitted.extend(events)
        return emitted

    def fire(self, now: datetime) -> list[DeadlineEvent]:
        """Fires whatever is due by `now` on every deadline of the case (see Deadline.fire)."""
        emitted: list[DeadlineEvent] = []
        for rule_id, deadline in list(self._deadlines.items()):
            self._deadlines[rule_id], events = deadline.fire(now)
            emitted.extend(events)
        return emitted


def _in_time_order(action: PoliceAction) -> tuple[datetime, str]:
    # The action id breaks ties, so a reload replays equal-time actions in the same order.
    return action.occurred_at, str(action.action_id)


def _focus_area(payload: EventData, category: str) -> str:
    # Reports, tips and requests state their focus area; an action only its category.
    stated = getattr(payload, "focus_area", None)
    if isinstance(stated, str):
        return stated
    return categories()[category].focus_area
