"""The NotifyRepository contract (services/notify/handlers.py): what every backend must do alike."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.notify.adapters.policy_file import DEFAULT_POLICY_FILE, load_policy
from services.notify.adapters.roster_file import parse_roster
from services.notify.domain import alert as domain
from services.notify.domain.alert import Alert, DeadlineFact
from services.notify.domain.delivery import Delivery, deliveries_for
from services.notify.handlers import NotifyRepository
from shared import tracing
from shared.events import alerts as alert_events
from shared.events import deadlines as deadline_events
from shared.reference import kommuner
from shared.unit_of_work import UnitOfWork
from tests.support.notify import new_secret, roster_document

Uow = UnitOfWork[NotifyRepository]

ROSTER = parse_roster(
    roster_document(
        officer_channels={
            name: [{"type": "webhook", "url": f"https://hooks.politi.example/{name}", "secret": new_secret()}]
            for name in ("lb-roskilde-1", "lb-roskilde-2", "vc-a", "vc-b", "vagtcentral")
        }
    ),
    "roster.yaml",
    kommuner=kommuner(),
    secrets={},
)
POLICY = load_policy(DEFAULT_POLICY_FILE)


class Boom(Exception):
    pass


def now() -> datetime:
    # Leases are judged by Postgres's clock: the contract runs on the real time, to the microsecond it stores.
    t = datetime.now(UTC)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def raised(at: datetime) -> tuple[Alert, list[Delivery]]:
    """A home burglary's warning raised in Roskilde: the alert, and its first notice's deliveries."""
    case_id = uuid.uuid4()
    fact = DeadlineFact(
        event_type=deadline_events.WARNING, deadline_id=uuid.uuid4(), case_id=case_id,
        deadline_rule="burglary_home_24h", title="Indbrud: 24 timer", category="burglary_home", kommune="0265",
        due_at=at + timedelta(hours=12), happened_at=at, fraction=0.5, reference="MV-7K3Q-9FX",
    )  # fmt: skip
    rule = POLICY.rule_for(deadline_events.WARNING, "burglary_home_24h")
    assert rule is not None
    decision = domain.on_deadline(None, fact, rule, ROSTER, at)
    assert decision.alert is not None and decision.notices
    notice = decision.notices[0]
    recipients = [r for r in (ROSTER.find(i) for i in notice.recipients) if r is not None]
    return decision.alert, deliveries_for(notice, recipients, now=at, happened_at=at)


class NotifyRepositoryContract:
    """Subclasses give `uow` (a fixture) and the readers below, of what the Protocol writes but never reads back."""

    @pytest.fixture
    def uow(self) -> Uow:
        raise NotImplementedError

    async def emitted(self, uow: Uow) -> list[uuid.UUID]:
        """The outbox's event ids, in the order written."""
        raise NotImplementedError

    async def deliveries(self, uow: Uow, alert_id: uuid.UUID) -> dict[uuid.UUID, dict[str, Any]]:
        """The alert's deliveries by id: state, attempts, next_attempt_at, last_error, delivered_at."""
        raise NotImplementedError

    async def audit_rows(self, uow: Uow, alert_id: uuid.UUID) -> list[tuple[str, str | None, dict[str, Any]]]:
        """(kind, actor, detail) in the order written."""
        raise NotImplementedError

    async def lease(self, uow: Uow, at: datetime, owner: str) -> list[Delivery]:
        """What the delivery worker's claim does: due deliveries taken under a minute's lease by `owner`."""
        raise NotImplementedError

    async def disabled(self, uow: Uow) -> set[str]:
        raise NotImplementedError

    async def stored(self, uow: Uow, at: datetime) -> tuple[Alert, list[Delivery]]:
        alert, deliveries = raised(at)
        async with uow.transaction() as repo:
            await repo.lock_new_alert(alert.id)
            await repo.save_alert(alert)
            assert await repo.add_deliveries(deliveries) == deliveries
        return alert, deliveries

    async def test_the_first_reference_of_a_case_wins(self, uow: Uow) -> None:
        case_id = uuid.uuid4()
        async with uow.transaction() as repo:
            assert await repo.reference_of(case_id) is None
            assert await repo.remember_case(case_id, "MV-1", "burglary_home", "0265") is True
            assert await repo.remember_case(case_id, "MV-2", "burglary_home", "0265") is False
            assert await repo.reference_of(case_id) == "MV-1"

    async def test_a_saved_alert_locks_back_as_saved_with_its_case_reference(self, uow: Uow) -> None:
        at = now()
        alert, _ = await self.stored(uow, at)
        async with uow.transaction() as repo:
            assert await repo.lock_alert(alert.id) == alert
            assert await repo.lock_alert(uuid.uuid4()) is None
            assert await repo.lock_alert_of_case(alert.id, alert.case_id) == (alert, None)
            await repo.remember_case(alert.case_id, "MV-7K3Q-9FX", "burglary_home", "0265")
            assert await repo.lock_alert_of_case(uuid.uuid4(), alert.case_id) == (None, "MV-7K3Q-9FX")
            changed = domain.acknowledge(alert, "lb-roskilde-1", at + timedelta(minutes=1), "api").alert
            assert changed is not None
            await repo.save_alert(changed)
        async with uow.transaction() as repo:
            assert await repo.lock_alert(alert.id) == changed
            shared = await repo.share_alert(alert.id)
            assert shared is not None
            assert (shared["case_id"], shared["kommune"], shared["state"]) == (alert.case_id, "0265", "acknowledged")
            assert await repo.share_alert(uuid.uuid4()) is None

    async def test_an_alert_keeps_the_trace_it_was_raised_in(self, uow: Uow) -> None:
        at = now()
        alert, _ = raised(at)
        report = tracing.extract({"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
        with tracing.span("handle dk.politi.deadline.warning", parent=report):
            raised_in = tracing.current_traceparent()
            async with uow.transaction() as repo:
                await repo.lock_new_alert(alert.id)
                await repo.save_alert(alert)
        changed = domain.acknowledge(alert, "lb-roskilde-1", at + timedelta(minutes=1), "api").alert
        assert changed is not None and raised_in is not None
        with tracing.span("POST /v1/alerts/{alert_id}/ack"):  # a later change, in another trace
            async with uow.transaction() as repo:
                await repo.save_alert(changed)
        async with uow.transaction() as repo:
            assert await repo.lock_alert(alert.id) == replace(changed, trace_context=raised_in)

    async def test_a_delivery_is_written_once(self, uow: Uow) -> None:
        alert, deliveries = await self.stored(uow, now())
        # The same notice to the same recipient on the same channel is the same delivery, whatever its id.
        same = replace(deliveries[0], id=uuid.uuid4())
        async with uow.transaction() as repo:
            assert await repo.add_deliveries(deliveries) == []
            assert await repo.add_deliveries([same]) == []
            assert await repo.add_deliveries([]) == []
        rows = await self.deliveries(uow, alert.id)
        assert set(rows) == {d.id for d in deliveries}
        assert {r["state"] for r in rows.values()} == {"pending"} and {r["attempts"] for r in rows.values()} == {0}

    async def test_cancel_stops_pending_stoppable_deliveries_but_not_one_in_flight(self, uow: Uow) -> None:
        at = now()
        alert, _ = raised(at)
        template = raised(at)[1][0]
        later = at + timedelta(hours=1)
        in_flight, pending, not_stoppable = (
            replace(
                template,
                id=uuid.uuid4(),
                notice_id=uuid.uuid4(),
                alert_id=alert.id,
                stoppable=stoppable,
                next_attempt_at=due,
            )
            for stoppable, due in ((True, at), (True, later), (False, later))
        )
        async with uow.transaction() as repo:
            await repo.save_alert(alert)
            await repo.add_deliveries([in_flight, pending, not_stoppable])
        assert [d.id for d in await self.lease(uow, at + timedelta(seconds=1), "worker-1")] == [in_flight.id]
        async with uow.transaction() as repo:
            assert await repo.cancel_stoppable(alert.id, "not sent: alert acknowledged") == 1
        rows = await self.deliveries(uow, alert.id)
        assert {i: (r["state"], r["last_error"]) for i, r in rows.items()} == {
            in_flight.id: ("pending", None), pending.id: ("cancelled", "not sent: alert acknowledged"),
            not_stoppable.id: ("pending", None),
        }  # fmt: skip

    async def test_only_the_lease_holder_records_a_result(self, uow: Uow) -> None:
        at = now()
        alert, deliveries = await self.stored(uow, at)
        claimed = await self.lease(uow, at + timedelta(seconds=1), "worker-1")
        assert {d.id for d in claimed} == {d.id for d in deliveries} and len(claimed) >= 2
        one, two, *_ = claimed
        async with uow.transaction() as repo:
            assert await repo.lock_delivery(one.id, "worker-2") is None
            assert await repo.mark_delivered(one.id, at, "worker-2") is False
            assert await repo.lock_delivery(one.id, "worker-1") == one
            assert await repo.mark_delivered(one.id, at + timedelta(seconds=2), "worker-1") is True
            assert await repo.lock_delivery(one.id, "worker-1") is None  # delivered: the lease is gone
            assert await repo.lock_delivery(two.id, "worker-1") == two
            await repo.mark_retry(two.id, at + timedelta(minutes=5), "HTTP 503 " + "x" * 600)
        rows = await self.deliveries(uow, alert.id)
        assert (rows[one.id]["state"], rows[one.id]["delivered_at"]) == ("delivered", at + timedelta(seconds=2))
        assert rows[one.id]["last_error"] is None
        assert rows[two.id]["state"] == "pending" and rows[two.id]["next_attempt_at"] == at + timedelta(minutes=5)
        assert rows[two.id]["last_error"] == ("HTTP 503 " + "x" * 600)[:500] and rows[two.id]["attempts"] == 1
        async with uow.transaction() as repo:
            assert await repo.lock_delivery(two.id, "worker-1") is None  # a retry hands the lease back
            await repo.mark_failed(two.id, "HTTP 410")
            await repo.disable_endpoint(two.target, "HTTP 410 Gone")
            await repo.disable_endpoint(two.target, "again")
        assert (await self.deliveries(uow, alert.id))[two.id]["state"] == "failed"
        assert await self.disabled(uow) == {two.target}

    async def test_audit_rows_keep_their_order(self, uow: Uow) -> None:
        at = now()
        alert, _ = await self.stored(uow, at)
        async with uow.transaction() as repo:
            await repo.audit(alert.id, at, "raised", {"level": 0}, actor="deadlines")
            await repo.audit_many(alert.id, at, [("notified", {"n": 2}, None), ("delivered", {"n": 1}, "timer")])
            await repo.audit_many(alert.id, at, [])
        assert await self.audit_rows(uow, alert.id) == [
            ("raised", "deadlines", {"level": 0}), ("notified", None, {"n": 2}), ("delivered", "timer", {"n": 1}),
        ]  # fmt: skip

    async def test_events_go_to_the_outbox_once_with_deterministic_ids(self, uow: Uow) -> None:
        at = now()
        alert, _ = await self.stored(uow, at)
        event = alert_events.AlertAcknowledged(
            alert_id=alert.id, case_id=alert.case_id, by="lb-roskilde-1", acknowledged_at=at, via="api"
        )
        async with uow.transaction() as repo:
            assert await repo.emit([], kommune="0265") == []
            first = await repo.emit([event], kommune="0265")
        async with uow.transaction() as repo:
            again = await repo.emit([event], kommune="0265")
        assert [e.id for e in first] == [e.id for e in again] and await self.emitted(uow) == [first[0].id]
        assert first[0].subject == str(alert.case_id) and first[0].kommune == "0265" and first[0].time == at

    async def test_due_alerts_are_claimed_soonest_first_and_a_parked_one_never(self, uow: Uow) -> None:
        at = now()
        first, _ = await self.stored(uow, at - timedelta(seconds=2))
        second, _ = await self.stored(uow, at - timedelta(seconds=1))
        due = max(a.next_timer_at for a in (first, second) if a.next_timer_at is not None)
        async with uow.transaction() as repo:
            assert [a.id for a in await repo.claim_due_alerts(due, 10) if isinstance(a, Alert)][:2] == [
                first.id, second.id,
            ]  # fmt: skip
            assert [a.id for a in await repo.claim_due_alerts(due, 1) if isinstance(a, Alert)] == [first.id]
            assert await repo.claim_due_alerts(at - timedelta(days=1), 10) == []
            await repo.park_timers([(first.id, "KeyError: steps")])
        async with uow.transaction() as repo:
            assert [a.id for a in await repo.claim_due_alerts(due, 10)] == [second.id]
            parked = await repo.lock_alert(first.id)
            assert parked is not None and parked.next_timer_at is None

    async def test_an_ack_link_works_once(self, uow: Uow) -> None:
        alert, deliveries = await self.stored(uow, now())
        async with uow.transaction() as repo:
            assert await repo.use_ack_link(deliveries[0].id, alert.id) is True
            assert await repo.use_ack_link(deliveries[0].id, alert.id) is False

    async def test_a_transaction_that_raises_leaves_nothing_and_a_savepoint_only_its_own(self, uow: Uow) -> None:
        at = now()
        undone, undone_deliveries = raised(at)
        with pytest.raises(Boom):
            async with uow.transaction() as repo:
                await repo.save_alert(undone)
                await repo.add_deliveries(undone_deliveries)
                await repo.use_ack_link(undone_deliveries[0].id, undone.id)
                raise Boom
        kept, kept_deliveries = raised(at)
        inner, inner_deliveries = raised(at)
        async with uow.transaction() as repo:
            await repo.save_alert(kept)
            await repo.add_deliveries(kept_deliveries)
            with pytest.raises(Boom):
                async with repo.savepoint():
                    await repo.save_alert(inner)
                    await repo.add_deliveries(inner_deliveries)
                    await repo.remember_case(inner.case_id, "MV-INNER", "burglary_home", "0265")
                    raise Boom
            assert await repo.lock_alert(kept.id) == kept
        async with uow.transaction() as repo:
            assert await repo.lock_alert(undone.id) is None and await repo.lock_alert(inner.id) is None
            assert await repo.reference_of(inner.case_id) is None
            assert await repo.use_ack_link(undone_deliveries[0].id, undone.id) is True  # never used
        assert await self.deliveries(uow, undone.id) == {} and await self.deliveries(uow, inner.id) == {}
        assert set(await self.deliveries(uow, kept.id)) == {d.id for d in kept_deliveries}
