"""The delivery worker's decisions, on an in-memory store and mail server: when a report is made and sent, what
a failed try leads to, and what a try after an unrecorded one sends (the Postgres store: tests/integration)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from prometheus_client import REGISTRY

from services.reporting import handlers
from services.reporting.adapters.delivery_plan_file import parse_plan
from services.reporting.adapters.delivery_repository import PlannedRow, Rendered
from services.reporting.domain.delivery_plan import DeliveryPlan, PlanEntry, RetryPolicy
from services.reporting.domain.periods import Period
from services.reporting.entrypoints.deliveries import CouncilDeliveries, report_maker
from shared.clock import ManualClock
from shared.smtp import BeforeData, SmtpResult
from tests.support.quarter import district_quarter
from tests.unit.reporting.delivery_fakes import FakeDeliveryStore, FakeMailServer
from tests.unit.reporting.fakes import FakeReadModel

SEKRETARIAT, BORGMESTER, LOKALRAAD = (
    "kredsraad-sekretariat@politi.example", "borgmester@kommune.example", "lokalraad-roskilde@kommune.example",
)  # fmt: skip
# Wednesday 7 October 2026, 08:00 in Copenhagen: the 5th working day after Q3 ends.
DUE = datetime(2026, 10, 7, 6, 0, tzinfo=UTC)


def the_plan() -> DeliveryPlan:
    return parse_plan(
        {
            "version": 1,
            "deliveries": [
                {"id": "kredsraad", "council": "kreds", "recipients": [SEKRETARIAT, BORGMESTER],
                 "report": {"scope": "kreds", "period": "quarter"}, "when": {"period": "2026-Q3", "at": DUE}},
                {"id": "lokalraad-0265", "council": "0265", "recipients": [LOKALRAAD],
                 "report": {"scope": "0265", "period": "quarter"}, "when": {"working_day": 5, "at": "08:00"}},
            ],
        },
        "plan.yaml",
    )  # fmt: skip


class Documents:
    """Makes stand-in reports and counts them; `fail` makes the next ones raise."""

    def __init__(self) -> None:
        self.made: list[tuple[str, str]] = []
        self.fail = 0

    async def __call__(self, entry: PlanEntry, period: Period) -> Rendered:
        if self.fail:
            self.fail -= 1
            raise RuntimeError("the read model is away")
        self.made.append((entry.id, str(period)))
        return Rendered(filename=entry.filename(period), subject=f"Rådsrapport {period.label_da()}", body="Til rådet",
                        pdf=b"%PDF-1.7", pdf_sha256="", rendered_at=DUE)  # fmt: skip


class World:
    def __init__(self, **retry: Any) -> None:
        self.clock = ManualClock(DUE - timedelta(minutes=1))
        self.store = FakeDeliveryStore(self.clock)
        self.mail = FakeMailServer()
        self.documents = Documents()
        self.workers: list[CouncilDeliveries] = []
        self.retry = RetryPolicy(**({"base": 60.0, "cap": 600.0, "max_attempts": 3} | retry))

    def worker(self, **over: Any) -> CouncilDeliveries:
        worker = CouncilDeliveries(
            self.store, the_plan(), self.mail, self.documents, clock=self.clock, channel="council_delivery_test",
            lease=timedelta(seconds=60), retry=self.retry, concurrency=5, random=lambda: 0.5, **over,
        )  # fmt: skip
        self.workers.append(worker)
        return worker

    async def rounds(self, worker: CouncilDeliveries, n: int = 4) -> None:
        """Rounds until nothing is left that is due (each round's sends finished)."""
        for _ in range(n):
            await worker.fire_due()
            await worker.idle()

    def at(self, instant: datetime) -> None:
        self.clock.set(instant)


@pytest.fixture
async def world() -> AsyncIterator[World]:
    w = World()
    yield w
    for worker in w.workers:
        await worker.close()


def emails(outcome: str) -> float:
    return REGISTRY.get_sample_value("reporting_council_report_emails_total", {"outcome": outcome}) or 0.0


async def test_when_due_each_report_is_made_once_and_each_recipient_gets_it_once(world: World) -> None:
    worker = world.worker()
    await world.rounds(worker)
    assert world.mail.received == [] and world.documents.made == []  # a minute early: planned, nothing sent
    assert {k: r.planned.due_at for k, r in world.store.deliveries.items()} == {
        ("kredsraad", "2026-Q3"): DUE, ("lokalraad-0265", "2026-Q3"): DUE,
    }  # fmt: skip
    sent = emails("sent")
    world.at(DUE)
    await world.rounds(worker)
    assert sorted(world.documents.made) == [("kredsraad", "2026-Q3"), ("lokalraad-0265", "2026-Q3")]
    for address in (SEKRETARIAT, BORGMESTER, LOKALRAAD):
        (message,) = world.mail.to(address)
        row = next(r for k, r in world.store.sends.items() if k[2] == address)
        assert (row.state, row.attempts, row.sent_at, row.reply) == ("sent", 1, DUE, "SMTP 250 OK")
        assert message["Message-ID"] == row.message_id
    assert emails("sent") - sent == 3
    # The lokalråd's next quarter is on the timer (8 January 2027); the once-entry is done.
    assert world.store.deliveries[("lokalraad-0265", "2026-Q4")].planned.due_at == datetime(2027, 1, 8, 7, tzinfo=UTC)
    assert await worker.next_due() == datetime(2027, 1, 8, 7, tzinfo=UTC)
    world.at(DUE + timedelta(days=1))
    await world.rounds(worker)
    assert len(world.mail.received) == 3 and len(world.documents.made) == 2


async def test_two_workers_on_one_store_send_each_recipient_once(world: World) -> None:
    first, second = world.worker(), world.worker()
    await first.plan()  # the service has run for a while: the quarter is on the timer before it falls due
    world.at(DUE)
    for _ in range(4):
        await first.fire_due()
        await second.fire_due()
        await first.idle()
        await second.idle()
    assert sorted(m["To"] for m in world.mail.received) == sorted([SEKRETARIAT, BORGMESTER, LOKALRAAD])
    assert len(world.documents.made) == 2


async def test_a_mail_server_that_is_away_is_tried_again_after_the_backoff_and_the_report_sent_once(
    world: World,
) -> None:
    world.mail.answers[SEKRETARIAT] = ["down", "down"]
    worker = world.worker()
    await worker.plan()
    world.at(DUE)
    retried = emails("retry")
    await world.rounds(worker)
    row = next(r for k, r in world.store.sends.items() if k[2] == SEKRETARIAT)
    # Half the step fixed and half jitter (0.5 here): 45 s after the first try, 90 s after the second.
    assert (row.state, row.attempts, row.next_attempt_at) == ("pending", 1, DUE + timedelta(seconds=45))
    assert "Error connecting" in (row.last_error or "") and row.data_started_at is None
    world.at(DUE + timedelta(seconds=44))
    await world.rounds(worker)
    assert row.attempts == 1
    world.at(DUE + timedelta(seconds=45))
    await world.rounds(worker)
    assert (row.attempts, row.next_attempt_at) == (2, DUE + timedelta(seconds=45 + 90))
    world.at(DUE + timedelta(seconds=135))
    await world.rounds(worker)
    assert (row.state, row.attempts, row.last_error) == ("sent", 3, None)
    assert len(world.mail.to(SEKRETARIAT)) == 1 and emails("retry") - retried == 2


async def test_a_refused_recipient_fails_at_once_and_one_whose_server_stays_away_after_the_last_attempt(
    world: World,
) -> None:
    world.mail.answers = {SEKRETARIAT: ["refused"], BORGMESTER: ["down"] * 3}
    worker = world.worker()
    await worker.plan()
    failed = emails("failed")
    for minutes in (0, 1, 2, 5, 10, 20):
        world.at(DUE + timedelta(minutes=minutes))
        await world.rounds(worker)
    refused = next(r for k, r in world.store.sends.items() if k[2] == SEKRETARIAT)
    away = next(r for k, r in world.store.sends.items() if k[2] == BORGMESTER)
    assert (refused.state, refused.attempts, refused.failed_at) == ("failed", 1, DUE)
    assert "550" in (refused.last_error or "")
    assert (away.state, away.attempts) == ("failed", 3) and "Error connecting" in (away.last_error or "")
    assert emails("failed") - failed == 2 and world.mail.received[0]["To"] == LOKALRAAD


async def test_a_send_whose_answer_never_came_goes_again_under_the_same_message_id(world: World) -> None:
    world.mail.answers[SEKRETARIAT] = ["no_answer"]
    worker = world.worker()
    await worker.plan()
    world.at(DUE)
    in_doubt = emails("resent_in_doubt")
    await world.rounds(worker)
    row = next(r for k, r in world.store.sends.items() if k[2] == SEKRETARIAT)
    assert row.state == "pending" and row.data_started_at == DUE  # the server may have it
    world.at(DUE + timedelta(minutes=1))
    await world.rounds(worker)
    first, again = world.mail.to(SEKRETARIAT)
    assert first["Message-ID"] == again["Message-ID"] == row.message_id
    assert first.as_bytes() == again.as_bytes()  # the same message, byte for byte: Date, text and PDF
    assert (row.state, row.attempts, row.in_doubt_resends) == ("sent", 2, 1)
    assert emails("resent_in_doubt") - in_doubt == 1


async def test_a_row_left_by_a_killed_instance_mid_data_is_taken_over_once_its_lease_runs_out(world: World) -> None:
    dead = world.worker()
    await dead.plan()
    world.at(DUE)
    await dead.fire_due()  # renders one delivery; its sends are claimed and ...
    await dead.close()  # ... the instance dies with them in flight (cancelled here, before or after DATA)
    held = [r for r in world.store.sends.values() if r.lease_owner == dead.owner]
    taken = len(world.mail.received)
    survivor = world.worker()
    await world.rounds(survivor)
    assert all(r.state == "pending" for r in held)  # still leased by the dead one: not taken over yet
    world.at(DUE + timedelta(seconds=61))
    await world.rounds(survivor)
    assert sorted(m["To"] for m in world.mail.received[taken:]) == sorted([SEKRETARIAT, BORGMESTER, LOKALRAAD])
    assert all(r.state == "sent" for r in world.store.sends.values())


async def test_a_worker_that_lost_its_lease_before_data_sends_nothing(world: World) -> None:
    worker = world.worker()
    await worker.plan()
    world.at(DUE)
    world.store.stolen = True  # another instance holds every row by the time DATA would go
    await world.rounds(worker, 1)
    assert world.mail.received == []
    assert all(r.state == "pending" and r.lease_owner == worker.owner for r in world.store.sends.values())


async def test_a_report_that_cannot_be_made_is_tried_again_then_failed_for_every_recipient(world: World) -> None:
    world.documents.fail = 10
    worker = world.worker()
    await worker.plan()
    failed = emails("failed")
    for seconds in (0, 45, 135, 400):
        world.at(DUE + timedelta(seconds=seconds))
        await world.rounds(worker)
    delivery = world.store.deliveries[("kredsraad", "2026-Q3")]
    assert (delivery.state, delivery.attempts) == ("failed", 3)
    rows = [r for k, r in world.store.sends.items() if k[0] == "kredsraad"]
    assert [r.state for r in rows] == ["failed", "failed"]
    assert all((r.last_error or "").startswith("the report could not be made: RuntimeError") for r in rows)
    assert emails("failed") - failed == 3 and world.mail.received == []  # the lokalråd's two recipients too


async def test_a_delivery_whose_entry_left_the_plan_is_cancelled_not_sent(world: World) -> None:
    await world.store.plan([PlannedRow("lokalraad-0999", "2026-Q3", "kreds", None, DUE)], DUE)
    worker = world.worker()
    await worker.plan()
    world.at(DUE)
    await world.rounds(worker)
    row = world.store.deliveries[("lokalraad-0999", "2026-Q3")]
    assert (row.state, row.last_error) == ("cancelled", "not in the delivery plan any more")


async def test_a_send_with_too_little_lease_left_is_handed_back_unsent(world: World) -> None:
    worker = world.worker(record_margin=59.5)  # the lease (60 s) leaves less than a second to send
    await worker.plan()
    world.at(DUE)
    await world.rounds(worker, 1)
    assert world.mail.received == []
    assert all((r.state, r.attempts, r.lease_owner) == ("pending", 0, None) for r in world.store.sends.values())


async def test_a_schedule_changed_before_its_delivery_fired_moves_it(world: World) -> None:
    worker = world.worker()
    await worker.plan()
    await world.store.plan([PlannedRow("lokalraad-0265", "2026-Q3", "0265", None, DUE + timedelta(days=1))], DUE)
    assert world.store.deliveries[("lokalraad-0265", "2026-Q3")].next_attempt_at == DUE + timedelta(days=1)


async def test_the_report_sent_is_the_one_the_api_renders_with_the_text_of_its_email() -> None:
    read_model = FakeReadModel()
    for event in district_quarter().events:
        await handlers.handle(read_model, event.meta, event.payload())
    entry = the_plan().entry("kredsraad")
    assert entry is not None
    make = report_maker(read_model, threshold=10, clock=ManualClock(DUE))
    document = await make(entry, Period.parse("2026-Q1"))
    assert document.pdf.startswith(b"%PDF") and document.pdf_sha256 == hashlib.sha256(document.pdf).hexdigest()
    assert document.filename == "raadsrapport-kreds-2026-Q1.pdf" and document.rendered_at == DUE
    assert document.subject == "Rådsrapport 1. kvartal 2026: Midt- og Vestsjællands Politi, hele kredsen"
    assert 'står der "for få sager"' in document.body and "opgjort 7. oktober 2026 kl. 08.00" in document.body


async def test_a_shutdown_lets_a_send_in_flight_finish_within_its_grace(world: World) -> None:
    release = asyncio.Event()
    original = world.mail.send

    async def slow(message: EmailMessage, *, timeout: float, before_data: BeforeData) -> SmtpResult:
        await release.wait()
        return await original(message, timeout=timeout, before_data=before_data)

    world.mail.send = slow  # type: ignore[method-assign]
    worker = world.worker()
    await worker.plan()
    world.at(DUE)
    await worker.fire_due()  # one delivery made, its two sends waiting for the server
    asyncio.get_running_loop().call_later(0.05, release.set)
    await worker.close(grace=5.0)
    assert sorted(m["To"] for m in world.mail.received) == [BORGMESTER, SEKRETARIAT]
    assert [r.state for r in world.store.sends.values()] == ["sent", "sent"]
