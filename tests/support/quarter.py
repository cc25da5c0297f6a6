"""A district's quarter of events (2026-Q1, Roskilde and Greve) with its figures worked out by hand.

Used by reporting's integration tests and by the ReadModel contract (tests/support/contracts/reporting.py),
which runs on the in-memory fake too, so it lives here rather than in a conftest.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from shared.events import CloudEvent, EventData
from shared.events import alerts as al
from shared.events import cases as cs
from shared.events import deadlines as dl
from shared.reference import categories

ROSKILDE, GREVE = "0265", "0253"
Q1 = datetime(2026, 2, 2, 8, 0, tzinfo=UTC)
Q3 = Q1 + timedelta(weeks=26)  # Monday 3 August 2026, 08:00 UTC


@dataclass
class Quarter:
    """Events of one quarter (2026-Q1) with figures worked out by hand in the test docstrings."""

    events: list[CloudEvent] = field(default_factory=list)

    def add(self, data: EventData, kommune: str, at: datetime, source: str) -> None:
        subject = str(data.case_id)  # type: ignore[attr-defined]
        self.events.append(CloudEvent.of(data, source=source, subject=subject, kommune=kommune, time=at))

    def report(
        self, kommune: str, category: str, at: datetime, *, acute: bool | None = None, in_progress: bool | None = None
    ) -> uuid.UUID:
        case = uuid.uuid4()
        fa = categories()[category].focus_area
        data = cs.CaseReported(
            case_id=case, reference="MV-TEST", category=category, focus_area=fa, received_at=at, acute=acute,
            in_progress=in_progress,
        )  # fmt: skip
        self.add(data, kommune, at, "/mvsj/intake")
        return case

    def tip(self, kommune: str, at: datetime) -> None:
        case = uuid.uuid4()
        data = cs.TipReceived(
            case_id=case, reference="MV-TIP", category="drug_dealing_street", focus_area="narkotika_gadeplan",
            received_at=at, anonymous=True,
        )  # fmt: skip
        self.add(data, kommune, at, "/mvsj/intake")

    def request(self, kommune: str, at: datetime) -> None:
        case = uuid.uuid4()
        data = cs.OfficerRequested(
            case_id=case, reference="MV-BEB", request_type="talk", category="traffic", focus_area="faerdselssikkerhed",
            received_at=at,
        )  # fmt: skip
        self.add(data, kommune, at, "/mvsj/intake")

    def action(self, case: uuid.UUID, kommune: str, category: str, action: str, at: datetime) -> None:
        data = cs.ActionRecorded(
            case_id=case, reference="MV-TEST", action_id=uuid.uuid4(), action=action, category=category,
            occurred_at=at, recorded_at=at,
        )  # fmt: skip
        self.add(data, kommune, at, "/mvsj/intake")

    def deadline(
        self,
        case: uuid.UUID,
        kommune: str,
        rule_id: str,
        category: str,
        started: datetime,
        window: timedelta,
        *,
        basis: str = "guarantee",
        window_set_by: str = "law",
        title: str | None = None,
        outcome: str,
        at: datetime | None = None,
    ) -> uuid.UUID:
        """outcome: met | late | breached | cancelled | breached_closed | cancelled_late_breach | rescheduled_met |
        breach_withdrawn (breached by the timer, then the on_scene of before the due time arrived) | pending."""
        deadline = uuid.uuid4()
        due = started + window
        common = dict(
            deadline_id=deadline, case_id=case, rule_id=rule_id, basis=basis, window_set_by=window_set_by,
            title=title or rule_id, category=category, focus_area=categories()[category].focus_area, started_at=started,
        )  # fmt: skip
        self.add(
            dl.DeadlineStarted(**common, due_at=due, window_seconds=window.total_seconds(), rules_version=1),
            kommune, started, "/mvsj/deadlines",
        )  # fmt: skip
        if outcome == "rescheduled_met":
            new_due = due + timedelta(days=1)
            self.add(
                dl.DeadlineRescheduled(**common, due_at=new_due, previous_due_at=due, rescheduled_at=started + timedelta(minutes=5)),
                kommune, started, "/mvsj/deadlines",
            )  # fmt: skip
            due = new_due
        if outcome in ("met", "rescheduled_met", "late"):
            met_at = at or started + window / 2
            late = outcome == "late"
            if late:
                self.add(dl.DeadlineBreached(**common, due_at=due, breached_at=due), kommune, due, "/mvsj/deadlines")
            self.add(
                dl.DeadlineMet(**common, due_at=due, met_at=met_at, action="on_scene", late=late,
                               response_seconds=(met_at - started).total_seconds()),
                kommune, met_at, "/mvsj/deadlines",
            )  # fmt: skip
        elif outcome == "breached":
            self.add(dl.DeadlineBreached(**common, due_at=due, breached_at=due), kommune, due, "/mvsj/deadlines")
        elif outcome == "breach_withdrawn":
            met_at = at or due - window / 10
            arrived = due + timedelta(minutes=30)  # held in intake's outbox until after the breach
            self.add(dl.DeadlineBreached(**common, due_at=due, breached_at=due), kommune, due, "/mvsj/deadlines")
            self.add(
                dl.DeadlineBreachWithdrawn(**common, due_at=due, breached_at=due, action="on_scene", action_at=met_at,
                                           action_recorded_at=met_at),
                kommune, arrived, "/mvsj/deadlines",
            )  # fmt: skip
            self.add(
                dl.DeadlineMet(**common, due_at=due, met_at=met_at, action="on_scene", late=False,
                               response_seconds=(met_at - started).total_seconds()),
                kommune, met_at, "/mvsj/deadlines",
            )  # fmt: skip
        elif outcome == "cancelled":
            when = started + window / 3
            self.add(
                dl.DeadlineCancelled(**common, due_at=due, cancelled_at=when, outcome="anholdt"),
                kommune, when, "/mvsj/deadlines",
            )  # fmt: skip
        elif outcome == "breached_closed":  # broke, then the case was closed
            when = due + window
            self.add(dl.DeadlineBreached(**common, due_at=due, breached_at=due), kommune, due, "/mvsj/deadlines")
            self.add(
                dl.DeadlineCancelled(**common, due_at=due, cancelled_at=when, outcome="henlagt", breached_at=due),
                kommune, when, "/mvsj/deadlines",
            )  # fmt: skip
        elif outcome == "cancelled_late_breach":  # closed in time; a breach word still came after it
            when = started + window / 3
            self.add(
                dl.DeadlineCancelled(**common, due_at=due, cancelled_at=when, outcome="anholdt"),
                kommune, when, "/mvsj/deadlines",
            )  # fmt: skip
            self.add(dl.DeadlineBreached(**common, due_at=due, breached_at=due), kommune, due, "/mvsj/deadlines")
        return deadline

    def alert(self, case: uuid.UUID, kommune: str, raised: datetime, ack_after: timedelta | None) -> None:
        alert = uuid.uuid4()
        self.add(
            al.AlertRaised(
                alert_id=alert,
                case_id=case,
                reason="deadline_warning",
                severity="warning",
                title="Frist nærmer sig",
                recipients=["vagtchef"],
                raised_at=raised,
            ),
            kommune,
            raised,
            "/mvsj/notify",
        )
        if ack_after is not None:
            self.add(
                al.AlertAcknowledged(alert_id=alert, case_id=case, by="vagtchef-1", acknowledged_at=raised + ack_after),
                kommune, raised + ack_after, "/mvsj/notify",
            )  # fmt: skip


def district_quarter(start: datetime = Q1) -> Quarter:
    """2026-Q1 in Roskilde and Greve, plus one report in December 2025 (the previous quarter); with `start` (Q3:
    the same weekdays and hours in 2026-Q3) the same events that much later, the December report in June.

    Roskilde: 12 burglaries (not in progress); patrol on scene after 10, 20, ..., 100 minutes for
      ten, after 25 hours for one, never for the last. Their 24-hour guarantee: 10 met (the first
      after the citizen asked for later), 1 met late, 1 breached and never met -> 10 of 12.
      3 tips and 1 Bestil-en-betjent request.
    Greve: 2 acute violence reports; on scene after 2 minutes for one; the "at once" target
      (15 min, the district's): 1 met, 1 closed before met and before breach -> 1 of 1 concluded.
    One alert, acknowledged after 90 s.
    """
    q = Quarter()
    shift = start - Q1
    for i in range(12):
        received = start + timedelta(days=i)
        case = q.report(ROSKILDE, "burglary_home", received, in_progress=False)
        outcome = "rescheduled_met" if i == 0 else "met" if i < 10 else "late" if i == 10 else "breached"
        on_scene = received + (timedelta(hours=25) if outcome == "late" else timedelta(minutes=10 * (i + 1)))
        if outcome != "breached":  # the breached one never saw a patrol
            q.action(case, ROSKILDE, "burglary_home", "on_scene", on_scene)
        q.deadline(case, ROSKILDE, "burglary_home_24h", "burglary_home", received, timedelta(hours=24),
                   outcome=outcome, at=on_scene)  # fmt: skip
        if i == 11:
            q.alert(case, ROSKILDE, received + timedelta(hours=12), timedelta(seconds=90))
    for i in range(3):
        q.tip(ROSKILDE, start + timedelta(days=i, hours=3))
    q.request(ROSKILDE, start + timedelta(days=5))
    for i, outcome in enumerate(("met", "cancelled")):
        received = start + timedelta(days=20 + i)
        case = q.report(GREVE, "violence", received, acute=True)
        if outcome == "met":
            q.action(case, GREVE, "violence", "on_scene", received + timedelta(minutes=2))
        q.deadline(case, GREVE, "violence_acute", "violence", received, timedelta(minutes=15),
                   window_set_by="district", outcome=outcome, at=received + timedelta(minutes=2))  # fmt: skip
    q.report(ROSKILDE, "traffic", datetime(2025, 12, 15, 10, 0, tzinfo=UTC) + shift)
    return q


def council_quarter() -> Quarter:
    """The district's quarter moved to 2026-Q3 (Roskilde's 24-hour guarantee 10 of 12, Greve's "at once" 1 of 1),
    and three burglaries in Greve in September: its 24-hour guarantee met twice and breached once, a cell of
    3 concluded, too few for a percentage (threshold 10) and, in public, for any figure."""
    q = district_quarter(Q3)
    for i, outcome in enumerate(("met", "met", "breached")):
        received = Q3 + timedelta(days=30 + i)
        case = q.report(GREVE, "burglary_home", received, in_progress=False)
        q.deadline(case, GREVE, "burglary_home_24h", "burglary_home", received, timedelta(hours=24), outcome=outcome)
    return q
