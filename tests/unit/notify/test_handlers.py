"""The notify use cases (handlers.py) on an in-memory repository: deadline events, acks, the timer, delivery results."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.notify import handlers
from services.notify.adapters.policy_file import DEFAULT_POLICY_FILE, load_policy
from services.notify.adapters.roster_file import parse_roster
from services.notify.domain.alert import AlreadyResolved, MovedOn, ack_scope, alert_id_for
from services.notify.domain.delivery import Backoff, Delivery, Outcome
from shared import tracing
from shared.events import CloudEvent
from shared.events import alerts as ev
from shared.events import deadlines as d
from shared.events.cases import CaseReported
from shared.reference import kommuner
from tests.support.notify import new_secret, roster_document
from tests.unit.notify.fakes import FakeNotifyRepository

pytestmark = pytest.mark.unit

T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)  # 12:00 in Copenhagen: vc-a is the vagtchef on duty
MIN = timedelta(minutes=1)
ROSKILDE = "0265"
ELSEWHERE = next(code for code in kommuner() if code != ROSKILDE)  # its lokalbetjent has the console only


def _hook(path: str) -> dict[str, str]:
    return {"type": "webhook", "url": f"https://hooks.politi.example{path}", "secret": new_secret()}


# lb-roskilde-1: webhook, then e-mail; lb-roskilde-2: e-mail; the vagtchefer: a webhook; the vagtcentral: a
# webhook, then the console. Officers of the other kommuner: the console.
ROSTER = parse_roster(
    roster_document(
        officer_channels={
            "lb-roskilde-1": [_hook("/lb1"), {"type": "email", "to": "lb1@politi.example"}],
            "lb-roskilde-2": [{"type": "email", "to": "lb2@politi.example"}],
            "vc-a": [_hook("/vagtchef")],
            "vc-b": [_hook("/vagtchef")],
            "vagtcentral": [_hook("/vagtcentral"), {"type": "console"}],
        }
    ),
    "roster.yaml",
    kommuner=kommuner(),
    secrets={},
)
POLICY = load_policy(DEFAULT_POLICY_FILE)  # the real one: a warning's chain waits 30 minutes per step
CTX = handlers.Context(policy=lambda: POLICY, roster=lambda: ROSTER, alerts_topic="alerts.v1")
BACKOFF = Backoff(base=1.0, cap=300.0, max_attempts=3)


class Deadline:
    """One deadline of one case (a home burglary's 24 hours), and the events deadlines publishes about it."""

    def __init__(self, kommune: str = ROSKILDE, *, reference: str | None = "MV-7K3Q-9FX") -> None:
        self.case_id = uuid.uuid4()
        self.deadline_id = uuid.uuid4()
        self.kommune = kommune
        self.reference = reference
        self.started_at = T0 - timedelta(hours=12)
        self.due_at = T0 + timedelta(hours=12)
        self.reschedules = 0
        self.alert_id = alert_id_for(self.case_id, "burglary_home_24h")

    def _common(self) -> dict[str, Any]:
        return {
            "deadline_id": self.deadline_id, "case_id": self.case_id, "rule_id": "burglary_home_24h",
            "basis": "guarantee", "window_set_by": "law", "title": "Indbrud: 24 timer", "category": "burglary_home",
            "focus_area": "indbrud", "started_at": self.started_at, "due_at": self.due_at,
            "reschedules": self.reschedules, "reference": self.reference,
        }  # fmt: skip

    def _wrap(self, data: Any, at: datetime) -> CloudEvent:
        return CloudEvent.of(data, source="/mvsj/deadlines", subject=str(self.case_id), kommune=self.kommune, time=at)

    def reported(self) -> CloudEvent:
        data = CaseReported(case_id=self.case_id, reference="MV-CASE-REF", category="burglary_home",
                            focus_area="indbrud", received_at=self.started_at, in_progress=False)  # fmt: skip
        return CloudEvent.of(data, source="/mvsj/intake", subject=str(self.case_id), kommune=self.kommune,
                             time=self.started_at)  # fmt: skip

    def started(self) -> CloudEvent:
        data = d.DeadlineStarted(**self._common(), window_seconds=86400.0, rules_version=1)
        return self._wrap(data, self.started_at)

    def warning(self, at: datetime = T0, fraction: float = 0.5) -> CloudEvent:
        remaining = (self.due_at - at).total_seconds()
        return self._wrap(d.DeadlineWarning(**self._common(), fraction=fraction, warned_at=at,
                                            remaining_seconds=remaining), at)  # fmt: skip

    def breached(self, at: datetime) -> CloudEvent:
        return self._wrap(d.DeadlineBreached(**self._common(), breached_at=at), at)

    def met(self, at: datetime) -> CloudEvent:
        return self._wrap(d.DeadlineMet(**self._common(), met_at=at, action="on_scene", late=at > self.due_at,
                                        response_seconds=(at - self.started_at).total_seconds()), at)  # fmt: skip

    def breach_withdrawn(self, action_at: datetime, recorded_at: datetime) -> CloudEvent:
        data = d.DeadlineBreachWithdrawn(**self._common(), breached_at=self.due_at, action="on_scene",
                                         action_at=action_at, action_recorded_at=recorded_at)  # fmt: skip
        return self._wrap(data, recorded_at)

    def rescheduled(self, at: datetime, due_at: datetime) -> CloudEvent:
        previous, self.due_at = self.due_at, due_at
        return self._wrap(d.DeadlineRescheduled(**self._common(), previous_due_at=previous, rescheduled_at=at), at)


async def deliver(repo: FakeNotifyRepository, event: CloudEvent, now: datetime | None = None) -> handlers.Applied:
    return await handlers.handle_deadline_event(repo, event.meta, event.payload(), CTX, now or event.time)


async def warned(repo: FakeNotifyRepository, deadline: Deadline | None = None) -> Deadline:
    deadline = deadline or Deadline()
    await deliver(repo, deadline.warning())
    return deadline


def types(repo: FakeNotifyRepository) -> list[str]:
    return [e.type for e in repo.outbox]


def stages(repo: FakeNotifyRepository, alert_id: uuid.UUID, state: str | None = None) -> set[tuple[str, str]]:
    rows = repo.of(alert_id) if state is None else repo.of(alert_id, state=state)
    return {(r["stage"], r["recipient_id"]) for r in rows}


# --- a deadline event raises, updates, supersedes or resolves one alert per deadline ---


async def test_a_warning_raises_one_alert_with_its_deliveries_audit_row_and_event() -> None:
    repo = FakeNotifyRepository()
    deadline = Deadline()
    applied = await deliver(repo, deadline.warning())
    alert = repo.alerts[deadline.alert_id]
    assert applied.alert == alert and applied.deliveries == 2
    assert (alert.state, alert.severity, alert.next_timer_at) == ("open", "warning", T0 + 30 * MIN)
    assert repo.creations_locked == [deadline.alert_id]
    assert stages(repo, alert.id, "pending") == {("raised", "lb-roskilde-1"), ("raised", "lb-roskilde-2")}
    assert {(r["recipient_id"], r["channel"]) for r in repo.of(alert.id)} == {
        ("lb-roskilde-1", "webhook"), ("lb-roskilde-2", "email")}  # fmt: skip
    assert [(r["kind"], r["actor"]) for r in repo.audit_rows] == [("raised", "deadlines")]
    [raised] = repo.outbox
    assert applied.events == [raised]
    assert (raised.type, raised.subject, raised.kommune) == (ev.RAISED, str(deadline.case_id), ROSKILDE)
    assert raised.data["reference"] == "MV-7K3Q-9FX" and raised.data["recipients"] == ["lb-roskilde-1", "lb-roskilde-2"]


async def test_a_second_warning_updates_the_same_alert_and_messages_nobody_again() -> None:
    repo = FakeNotifyRepository()
    deadline = await warned(repo)
    applied = await deliver(repo, deadline.warning(T0 + 60 * MIN, fraction=0.75))
    assert len(repo.alerts) == 1 and repo.alerts[deadline.alert_id].fraction == 0.75
    assert types(repo) == [ev.RAISED, ev.UPDATED] and applied.deliveries == 0
    assert len(repo.deliveries) == 2


async def test_the_same_warning_delivered_twice_writes_its_event_once() -> None:
    # A redelivered event (same time, same numbers) recomputes the same facts: the outbox keeps one of each.
    repo = FakeNotifyRepository()
    deadline = Deadline()
    event = deadline.warning()
    await deliver(repo, event)
    await deliver(repo, event)
    assert types(repo) == [ev.RAISED, ev.UPDATED] and len(repo.deliveries) == 2
    again = await deliver(repo, event)
    assert [e.id for e in again.events] == [repo.outbox[1].id] and len(repo.outbox) == 2


async def test_a_breach_supersedes_the_warning_and_its_unsent_messages() -> None:
    repo = FakeNotifyRepository()
    deadline = await warned(repo)
    breach_at = T0 + 12 * 60 * MIN  # 00:00 in Copenhagen: vc-b is on duty
    await deliver(repo, deadline.breached(breach_at))
    alert = repo.alerts[deadline.alert_id]
    assert (alert.state, alert.severity, alert.reason) == ("open", "critical", "deadline_breached")
    assert alert.next_timer_at == breach_at + 5 * MIN  # the acute chain starts over
    # The warning's messages not yet sent are not sent at all; the breach's go out.
    assert stages(repo, alert.id, "cancelled") == {("raised", "lb-roskilde-1"), ("raised", "lb-roskilde-2")}
    assert stages(repo, alert.id, "pending") == {("breached", "vc-b"), ("breached", "lb-roskilde-1"),
                                                 ("breached", "lb-roskilde-2")}  # fmt: skip
    updated = repo.outbox[-1]
    assert updated.type == ev.UPDATED and updated.data["superseded"] == "deadline_warning"


async def test_a_breach_withdrawn_resolves_the_alert_and_tells_everyone_who_was_told_of_the_breach() -> None:
    # Issue 14: the patrol was there 10 minutes before the due time; the action reached deadlines after
    # the breach had paged the vagtchef. Everyone told of the breach is told it is taken back, and why.
    repo = FakeNotifyRepository()
    deadline = await warned(repo)
    breach_at = deadline.due_at
    await deliver(repo, deadline.breached(breach_at))
    on_scene, now = deadline.due_at - 10 * MIN, deadline.due_at + 20 * MIN
    applied = await deliver(repo, deadline.breach_withdrawn(on_scene, on_scene), now)
    alert = repo.alerts[deadline.alert_id]
    assert (alert.state, alert.resolved_reason, alert.next_timer_at) == ("resolved", "breach_withdrawn", None)
    assert (alert.resolved_action, alert.resolved_action_at, alert.resolved_at) == ("on_scene", on_scene, now)
    told = {"vc-b", "lb-roskilde-1", "lb-roskilde-2"}
    assert set(alert.notified) == told
    assert stages(repo, alert.id, "pending") >= {("resolved", r) for r in told}
    resolved = repo.outbox[-1]
    assert applied.events == [resolved]
    assert (resolved.type, resolved.data["reason"]) == (ev.RESOLVED, "breach_withdrawn")
    assert repo.kinds(alert.id)[-1] == "resolved"
    assert repo.audit_rows[-1]["detail"] == {"reason": "breach_withdrawn", "action": "on_scene",
                                             "action_at": on_scene.isoformat()}  # fmt: skip
    # The met that follows the withdrawal, and the withdrawal redelivered, change nothing and send nothing.
    sent = len(repo.deliveries)
    for later in (deadline.met(on_scene), deadline.breach_withdrawn(on_scene, on_scene)):
        again = await deliver(repo, later, now + MIN)
        assert again.events == [] and again.deliveries == 0
    assert len(repo.deliveries) == sent and repo.alerts[deadline.alert_id] == alert
    assert types(repo).count(ev.RESOLVED) == 1


async def test_a_warning_alert_is_resolved_as_met_never_as_a_withdrawn_breach() -> None:
    # A warning said time was running out, which was true as far as anyone knew: nothing to take back.
    # Withdrawal is for alerts that told of a breach; a warning alert (e.g. a policy that raises nothing
    # on a breach) is left to the deadline.met that follows, which resolves it as met.
    repo = FakeNotifyRepository()
    deadline = await warned(repo)
    skipped = await deliver(repo, deadline.breach_withdrawn(T0, T0 + MIN), T0 + 2 * MIN)
    assert skipped.events == [] and repo.alerts[deadline.alert_id].state == "open"
    assert repo.kinds(deadline.alert_id)[-1] == "ignored"
    await deliver(repo, deadline.met(T0), T0 + 2 * MIN)
    assert repo.alerts[deadline.alert_id].resolved_reason == "met"


async def test_a_breach_withdrawn_with_no_alert_raised_does_nothing() -> None:
    repo = FakeNotifyRepository()
    deadline = Deadline()
    applied = await deliver(repo, deadline.breach_withdrawn(T0, T0))
    assert (applied.alert, applied.events, repo.alerts, repo.outbox) == (None, [], {}, [])


async def test_met_resolves_the_alert_and_tells_everyone_notified_and_a_late_event_does_not_reopen_it() -> None:
    repo = FakeNotifyRepository()
    deadline = await warned(repo)
    await deliver(repo, deadline.met(T0 + 10 * MIN))
    alert = repo.alerts[deadline.alert_id]
    assert (alert.state, alert.resolved_reason, alert.next_timer_at) == ("resolved", "met", None)
    assert stages(repo, alert.id, "cancelled") == {("raised", "lb-roskilde-1"), ("raised", "lb-roskilde-2")}
    assert stages(repo, alert.id, "pending") == {("resolved", "lb-roskilde-1"), ("resolved", "lb-roskilde-2")}
    assert types(repo) == [ev.RAISED, ev.RESOLVED]
    # A breach arriving after the resolve (out of order) changes nothing but the audit trail.
    late = await deliver(repo, deadline.breached(T0 + 12 * 60 * MIN))
    assert late.events == [] and late.deliveries == 0
    assert repo.alerts[deadline.alert_id] == alert and types(repo) == [ev.RAISED, ev.RESOLVED]
    assert repo.kinds(alert.id) == ["raised", "resolved", "ignored"]


async def test_a_met_or_a_start_that_raises_nothing_writes_nothing() -> None:
    repo = FakeNotifyRepository()
    deadline = Deadline()
    # The 24-hour guarantee's start is no alert (only acute guarantees raise at start), and a met
    # deadline that never raised an alert has nothing to resolve.
    for event in (deadline.started(), deadline.met(T0)):
        applied = await deliver(repo, event)
        assert applied.alert is None and applied.events == []
    assert repo.alerts == {} and repo.outbox == [] and repo.audit_rows == []


async def test_a_deadline_event_without_a_reference_takes_the_one_remembered_from_cases() -> None:
    repo = FakeNotifyRepository()
    deadline = Deadline(reference=None)
    reported = deadline.reported()
    await handlers.handle_case_event(repo, reported.meta, reported.payload())
    await warned(repo, deadline)
    assert repo.outbox[0].data["reference"] == "MV-CASE-REF"


async def test_a_reschedule_moves_the_due_time_and_restarts_the_ack_timeout() -> None:
    repo = FakeNotifyRepository()
    deadline = await warned(repo)
    later = T0 + 48 * 60 * MIN
    await deliver(repo, deadline.rescheduled(T0 + 20 * MIN, later))
    alert = repo.alerts[deadline.alert_id]
    assert (alert.due_at, alert.next_timer_at) == (later, T0 + 50 * MIN)
    assert types(repo) == [ev.RAISED, ev.UPDATED] and repo.kinds(alert.id)[-1] == "rescheduled"


async def test_an_officer_with_the_console_only_sees_the_alert_at_once() -> None:
    # A console delivery is delivered as it is written: its audit row and alert.delivered go with the raise.
    repo = FakeNotifyRepository()
    deadline = await warned(repo, Deadline(ELSEWHERE))
    [row] = repo.of(deadline.alert_id)
    assert (row["recipient_id"], row["channel"], row["state"]) == (f"lb-{ELSEWHERE}", "console", "delivered")
    assert types(repo) == [ev.RAISED, ev.DELIVERED]
    assert repo.outbox[1].data["recipient"] == f"lb-{ELSEWHERE}" and repo.kinds(deadline.alert_id) == [
        "raised", "delivered"]  # fmt: skip


# --- acknowledgement ---


async def test_an_ack_by_api_key_names_the_officer_and_the_key_and_stops_the_escalation() -> None:
    repo = FakeNotifyRepository()
    deadline = await warned(repo)
    at = T0 + 5 * MIN
    applied = await handlers.acknowledge(repo, deadline.alert_id, "lb-roskilde-2", "api", CTX, at, key="dev-police")
    alert = repo.alerts[deadline.alert_id]
    assert applied.alert == alert
    # The key spoke for a roster officer: the records name the officer by roster id and the roster's name.
    name = CTX.roster().find("lb-roskilde-2").name  # type: ignore[union-attr]
    assert (alert.state, alert.acknowledged_by, alert.acknowledged_by_name, alert.acknowledged_at,
            alert.next_timer_at) == ("acknowledged", "lb-roskilde-2", name, at, None)  # fmt: skip
    acked = repo.audit_rows[-1]
    assert (acked["kind"], acked["actor"], acked["detail"]) == (
        "acknowledged", "key:dev-police", {"by": "lb-roskilde-2", "name": name, "via": "api"})  # fmt: skip
    event = repo.outbox[-1]
    assert event.type == ev.ACKNOWLEDGED
    assert (event.data["by"], event.data["by_name"], event.data["via"]) == ("lb-roskilde-2", name, "api")
    # The warning's unsent messages stop; the other officer notified is told who took it.
    assert stages(repo, alert.id, "pending") == {("acknowledged-deadline_warning", "lb-roskilde-1")}
    # A second ack changes nothing.
    again = await handlers.acknowledge(repo, deadline.alert_id, "lb-roskilde-1", "api", CTX, at + MIN)
    assert again.events == [] and repo.alerts[deadline.alert_id].acknowledged_by == "lb-roskilde-2"


async def test_an_ack_without_a_key_is_the_officers_own() -> None:
    repo = FakeNotifyRepository()
    deadline = await warned(repo)
    await handlers.acknowledge(repo, deadline.alert_id, "lb-roskilde-1", "console", CTX, T0 + MIN)
    assert repo.audit_rows[-1]["actor"] == "lb-roskilde-1"


async def test_an_ack_link_works_once_and_only_for_the_stage_it_was_sent_in() -> None:
    repo = FakeNotifyRepository()
    deadline = await warned(repo)
    warning_link = repo.of(deadline.alert_id, recipient_id="lb-roskilde-1")[0]["id"]
    warning_scope = ack_scope("deadline_warning", 0)
    await deliver(repo, deadline.breached(T0 + 12 * 60 * MIN))

    # The warning's link, after the breach superseded it: refused, and (the caller's transaction
    # rolling back) still unused.
    with pytest.raises(MovedOn):
        async with repo.savepoint():  # plays the caller's transaction
            await handlers.acknowledge(repo, deadline.alert_id, "lb-roskilde-1", "link", CTX, T0 + 13 * 60 * MIN,
                                       for_reason=warning_scope, link=warning_link)  # fmt: skip
    assert repo.alerts[deadline.alert_id].state == "open" and warning_link not in repo.used_links

    breach_link = repo.of(deadline.alert_id, stage="breached", recipient_id="lb-roskilde-1")[0]["id"]
    breach_scope = ack_scope("deadline_breached", 0)
    await handlers.acknowledge(repo, deadline.alert_id, "lb-roskilde-1", "link", CTX, T0 + 13 * 60 * MIN,
                               for_reason=breach_scope, link=breach_link)  # fmt: skip
    assert repo.alerts[deadline.alert_id].acknowledged_by == "lb-roskilde-1"
    with pytest.raises(handlers.LinkUsed):
        await handlers.acknowledge(repo, deadline.alert_id, "lb-roskilde-1", "link", CTX, T0 + 14 * 60 * MIN,
                                   for_reason=breach_scope, link=breach_link)  # fmt: skip


async def test_an_ack_after_the_resolve_is_refused_and_an_unknown_alert_is_not_found() -> None:
    repo = FakeNotifyRepository()
    deadline = await warned(repo)
    await deliver(repo, deadline.met(T0 + MIN))
    with pytest.raises(AlreadyResolved):
        await handlers.acknowledge(repo, deadline.alert_id, "lb-roskilde-1", "api", CTX, T0 + 2 * MIN)
    assert repo.alerts[deadline.alert_id].state == "resolved" and types(repo)[-1] == ev.RESOLVED
    with pytest.raises(handlers.NotFound):
        await handlers.acknowledge(repo, uuid.uuid4(), "lb-roskilde-1", "api", CTX, T0 + 2 * MIN)


# --- the escalation timer ---


async def test_the_timer_escalates_once_per_level_then_reminds() -> None:
    repo = FakeNotifyRepository()
    deadline = await warned(repo)
    assert (await handlers.fire_due_alerts(repo, CTX, T0 + 29 * MIN, 100)).fired == []
    first = await handlers.fire_due_alerts(repo, CTX, T0 + 30 * MIN, 100)
    assert [a.alert.level for a in first.fired if a.alert] == [1]
    assert (await handlers.fire_due_alerts(repo, CTX, T0 + 30 * MIN, 100)).fired == []  # fired once
    await handlers.fire_due_alerts(repo, CTX, T0 + 60 * MIN, 100)  # the chain's last step: the vagtcentral
    await handlers.fire_due_alerts(repo, CTX, T0 + 90 * MIN, 100)  # past the chain: a reminder
    escalated = [(e.data["level"], e.data["to"]) for e in repo.outbox if e.type == ev.ESCALATED]
    assert escalated == [(1, "vagtchef"), (2, "vagtcentral")]
    assert stages(repo, deadline.alert_id) >= {
        ("deadline_warning-escalated-1", "vc-a"), ("deadline_warning-escalated-2", "vagtcentral"),
        ("deadline_warning-reminder-1", "vagtcentral")}  # fmt: skip
    assert [r["actor"] for r in repo.audit_rows if r["kind"] in ("escalated", "reminder")] == ["timer"] * 3


async def test_each_escalation_or_reminder_is_a_trace_of_its_own_linked_to_the_one_that_raised_the_alert() -> None:
    exporter = InMemorySpanExporter()
    before = tracing._provider, tracing.exporting()
    tracing.in_memory(SimpleSpanProcessor(exporter))
    try:
        repo = FakeNotifyRepository()
        report = tracing.extract({"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
        with tracing.span("handle dk.politi.deadline.warning", parent=report) as handling:
            deadline = await warned(repo)
        exporter.clear()
        with tracing.span("a timer round"):  # whatever is current, a firing starts a trace of its own
            await handlers.fire_due_alerts(repo, CTX, T0 + 30 * MIN, 100)
        await handlers.fire_due_alerts(repo, CTX, T0 + 30 * MIN, 100)  # nothing due: no firing span
        await handlers.fire_due_alerts(repo, CTX, T0 + 90 * MIN, 100)  # the vagtcentral (late), then a reminder
        await handlers.fire_due_alerts(repo, CTX, T0 + 120 * MIN, 100)
    finally:
        tracing.use_provider(before[0], exporting=before[1])
    fired = [s for s in exporter.get_finished_spans() if s.name.startswith("alert ")]
    assert [s.name for s in fired] == ["alert escalation", "alert escalation", "alert reminder"]
    raised_in = handling.get_span_context()
    for span in fired:
        assert span.parent is None and span.context is not None and span.context.trace_id != raised_in.trace_id
        assert [(link.context.trace_id, link.context.span_id) for link in span.links] == [
            (raised_in.trace_id, raised_in.span_id)
        ]
        assert dict(span.attributes or {}) == {
            "mvsj.alert_id": str(deadline.alert_id),
            "mvsj.case_id": str(deadline.case_id),
        }
    assert len({s.context.trace_id for s in fired if s.context}) == 3


async def test_an_acknowledged_alert_does_not_escalate() -> None:
    repo = FakeNotifyRepository()
    deadline = await warned(repo)
    await handlers.acknowledge(repo, deadline.alert_id, "lb-roskilde-1", "api", CTX, T0 + MIN)
    assert (await handlers.fire_due_alerts(repo, CTX, T0 + 120 * MIN, 100)).fired == []
    assert ev.ESCALATED not in types(repo)


async def test_an_alert_that_cannot_fire_is_parked_and_the_others_still_escalate() -> None:
    repo = FakeNotifyRepository()
    good, unreadable, unsendable = [await warned(repo) for _ in range(3)]
    repo.unreadable.add(unreadable.alert_id)  # its row no longer maps to an alert
    bad = repo.alerts[unsendable.alert_id]
    repo.alerts[bad.id] = replace(bad, kommune="9999")  # its events cannot be built: no such kommune
    round_ = await handlers.fire_due_alerts(repo, CTX, T0 + 30 * MIN, 100)
    assert [a.alert.id for a in round_.fired if a.alert] == [good.alert_id] and round_.parked == 2
    assert repo.alerts[good.alert_id].state == "escalated"
    for parked in (unreadable, unsendable):
        alert = repo.alerts[parked.alert_id]
        assert (alert.state, alert.level, alert.next_timer_at) == ("open", 0, None)
        assert not any("escalated" in r["stage"] for r in repo.of(parked.alert_id))
    assert "KeyError" in repo.parked[unreadable.alert_id] and "9999" in repo.parked[unsendable.alert_id]
    # Nothing the failed attempt wrote survives its savepoint: one raised row, then the parking.
    assert repo.kinds(unsendable.alert_id) == ["raised", "timer_parked"]
    assert (await handlers.fire_due_alerts(repo, CTX, T0 + 300 * MIN, 100)).parked == 0  # off the timer


# --- a delivery's result ---


async def record(repo: FakeNotifyRepository, delivery: Delivery, outcome: Outcome, at: datetime,
                 owner: str = "worker-1") -> tuple[str, list[CloudEvent]]:  # fmt: skip
    return await handlers.record_outcome(repo, delivery, outcome, owner=owner, ctx=CTX, backoff=BACKOFF,
                                         random=lambda: 0.5, now=at)  # fmt: skip


def claim(repo: FakeNotifyRepository, recipient: str, at: datetime, owner: str = "worker-1") -> Delivery:
    [delivery] = repo.claim_deliveries(at, owner, recipient=recipient)
    return delivery


async def test_a_delivered_message_is_recorded_with_its_event() -> None:
    repo = FakeNotifyRepository()
    deadline = await warned(repo)
    webhook = claim(repo, "lb-roskilde-1", T0)
    result, events = await record(repo, webhook, Outcome("delivered", "HTTP 204"), T0 + MIN)
    assert result == "delivered"
    row = repo.deliveries[webhook.id]
    assert (row["state"], row["delivered_at"], row["lease_owner"]) == ("delivered", T0 + MIN, None)
    [event] = events
    assert event.type == ev.DELIVERED and (event.data["channel"], event.data["attempts"]) == ("webhook", 1)
    assert repo.kinds(deadline.alert_id)[-1] == "delivered"


async def test_a_retry_waits_with_backoff_and_honours_retry_after() -> None:
    repo = FakeNotifyRepository()
    deadline = await warned(repo)
    webhook = claim(repo, "lb-roskilde-1", T0)
    result, events = await record(repo, webhook, Outcome("retry", "HTTP 503"), T0)
    assert (result, events) == ("retry", [])
    row = repo.deliveries[webhook.id]
    # Attempt 1 of base 1 s: half fixed, half jitter (0.5 of it here).
    assert (row["state"], row["next_attempt_at"], row["lease_owner"]) == ("pending", T0 + timedelta(seconds=0.75), None)
    assert repo.audit_rows[-1]["detail"]["retry_in_seconds"] == 0.75
    again = claim(repo, "lb-roskilde-1", T0 + MIN)
    assert again.attempts == 2
    await record(repo, again, Outcome("retry", "HTTP 429", retry_after=12.0), T0 + MIN)
    assert repo.deliveries[webhook.id]["next_attempt_at"] == T0 + MIN + timedelta(seconds=12)
    assert repo.kinds(deadline.alert_id).count("delivery_attempt_failed") == 2


async def test_retries_used_up_hand_the_message_to_the_recipients_next_channel() -> None:
    repo = FakeNotifyRepository()
    deadline = await warned(repo)
    at = T0
    for _ in range(BACKOFF.max_attempts):
        webhook = claim(repo, "lb-roskilde-1", at)
        result, events = await record(repo, webhook, Outcome("retry", "HTTP 500"), at)
        at += 10 * MIN
    assert result == "failed" and repo.deliveries[webhook.id]["state"] == "failed"
    [failed] = events
    assert failed.type == ev.DELIVERY_FAILED and (failed.data["attempt"], failed.data["next_channel"]) == (3, "email")
    [email] = repo.of(deadline.alert_id, recipient_id="lb-roskilde-1", channel="email")
    assert (email["state"], email["stage"], email["channel_no"]) == ("pending", "raised", 1)


async def test_a_recipient_whose_channels_all_failed_reaches_the_vagtcentral() -> None:
    repo = FakeNotifyRepository()
    deadline = await warned(repo)
    email = claim(repo, "lb-roskilde-2", T0)
    result, events = await record(repo, email, Outcome("failed", "550 no such mailbox"), T0)
    assert result == "failed" and events[0].data["next_channel"] == "vagtcentral:webhook"
    assert repo.of(deadline.alert_id, recipient_id="vagtcentral", stage="raised", state="pending")
    # The vagtcentral's webhook gone (410): the endpoint is disabled and its console shows the alert at once.
    shared = claim(repo, "vagtcentral", T0 + MIN)
    result, events = await record(repo, shared, Outcome("gone", "HTTP 410 Gone"), T0 + MIN)
    assert result == "failed" and repo.disabled == {shared.target: "HTTP 410 Gone"}
    assert [(e.type, e.data["channel"]) for e in events] == [(ev.DELIVERY_FAILED, "webhook"),
                                                            (ev.DELIVERED, "console")]  # fmt: skip
    assert events[0].data["next_channel"] == "console"


async def test_a_failure_after_the_ack_hands_nothing_on_and_a_retry_is_dropped() -> None:
    repo = FakeNotifyRepository()
    deadline = await warned(repo)
    webhook = claim(repo, "lb-roskilde-1", T0)
    email = claim(repo, "lb-roskilde-2", T0)  # both in flight when the ack comes
    await handlers.acknowledge(repo, deadline.alert_id, "lb-roskilde-2", "api", CTX, T0 + MIN)
    result, _ = await record(repo, webhook, Outcome("failed", "HTTP 400"), T0 + MIN)
    assert result == "failed" and not repo.of(deadline.alert_id, recipient_id="lb-roskilde-1", channel="email")
    result, events = await record(repo, email, Outcome("retry", "421 try later"), T0 + MIN)
    assert (result, events) == ("cancelled", [])
    assert repo.deliveries[email.id]["last_error"] == "not retried: alert acknowledged"


async def test_a_result_after_the_lease_was_lost_changes_nothing() -> None:
    repo = FakeNotifyRepository()
    await warned(repo)
    webhook = claim(repo, "lb-roskilde-1", T0, owner="worker-1")
    # worker-1's lease ran out; worker-2 took the delivery over, and its result is the one that counts.
    taken = claim(repo, "lb-roskilde-1", T0 + 2 * MIN, owner="worker-2")
    before = dict(repo.deliveries[webhook.id])
    assert await record(repo, webhook, Outcome("delivered", "HTTP 204"), T0 + 2 * MIN) == ("lost", [])
    assert repo.deliveries[webhook.id] == before and taken.attempts == 2
