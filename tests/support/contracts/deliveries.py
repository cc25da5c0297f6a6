"""The DeliveryStore contract (services/reporting/adapters/delivery_repository.py): planning, claims under a lease,
and every write only by the lease's holder, alike on Postgres and on the in-memory fake the unit tests use."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.reporting.adapters.delivery_repository import DeliveryStore, PlannedRow, Rendered

DUE = datetime(2026, 10, 7, 6, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)
KEY = ("kredsraad", "2026-Q3")
SENDS = [("a@politi.example", "<kredsraad.2026-Q3.a@politi.example>"),
         ("b@kommune.example", "<kredsraad.2026-Q3.b@politi.example>")]  # fmt: skip
DOCUMENT = Rendered(filename="raadsrapport-kreds-2026-Q3.pdf", subject="Rådsrapport", body="Til Kredsrådet",
                    pdf=b"%PDF-1.7 contract", pdf_sha256="abc", rendered_at=DUE)  # fmt: skip


def planned(entry_id: str = "kredsraad", period: str = "2026-Q3", due: datetime = DUE) -> PlannedRow:
    return PlannedRow(entry_id, period, "kreds", None, due)


class DeliveryStoreContract:
    """A subclass gives the `store` fixture and `expire_leases` (every lease held now runs out)."""

    @pytest.fixture
    def store(self) -> DeliveryStore:
        raise NotImplementedError

    async def expire_leases(self, store: DeliveryStore) -> None:
        raise NotImplementedError

    async def rendered_row(self, store: DeliveryStore) -> None:
        """KEY planned, claimed by 'w1' and rendered, with a pending send per SENDS."""
        await store.plan([planned()], DUE)
        assert len(await store.claim_renders(DUE, "w1", LEASE, 10)) == 1
        assert await store.rendered(KEY, "w1", DOCUMENT, SENDS, DUE)

    async def test_planning_adds_a_row_once_and_moves_it_only_while_untouched(self, store: DeliveryStore) -> None:
        other = ("lokalraad-0265", "2026-Q3")
        assert await store.plan([planned(), planned(other[0])], DUE) == 2
        assert await store.plan([planned()], DUE) == 0
        assert await store.planned_periods() == {"kredsraad": ["2026-Q3"], "lokalraad-0265": ["2026-Q3"]}
        later = DUE + timedelta(days=1)
        await store.plan([planned(due=later)], DUE)  # the plan's schedule changed before it fired
        assert [j.key for j in await store.claim_renders(DUE, "w1", LEASE, 10)] == [other]
        assert [j.key for j in await store.claim_renders(later, "w1", LEASE, 10)] == [KEY]
        await store.plan([planned(due=DUE + timedelta(days=2))], DUE)  # once tried, a row keeps its time
        assert await store.render_retry(KEY, "w1", "RuntimeError", later)
        assert [j.key for j in await store.claim_renders(later, "w2", LEASE, 10)] == [KEY]

    async def test_a_due_row_is_claimed_by_one_worker_until_its_lease_runs_out(self, store: DeliveryStore) -> None:
        await store.plan([planned(), planned("lokalraad-0265", due=DUE + timedelta(hours=1))], DUE)
        (job,) = await store.claim_renders(DUE, "w1", LEASE, 10)  # the later one is not due
        assert (job.key, job.attempts) == (KEY, 1)
        assert await store.claim_renders(DUE, "w2", LEASE, 10) == []
        assert await store.next_due() is not None
        await self.expire_leases(store)
        (again,) = await store.claim_renders(DUE, "w2", LEASE, 10)
        assert (again.key, again.attempts) == (KEY, 2)
        assert not await store.rendered(KEY, "w1", DOCUMENT, SENDS, DUE)  # w1 lost it: its result is not written
        assert not await store.render_retry(KEY, "w1", "late", DUE)
        assert await store.rendered(KEY, "w2", DOCUMENT, SENDS, DUE)
        later = await store.claim_renders(DUE + timedelta(days=1), "w3", LEASE, 10)
        assert [j.key for j in later] == [("lokalraad-0265", "2026-Q3")]  # a rendered row is never claimed again

    async def test_a_report_not_made_is_tried_later_failed_for_every_recipient_or_cancelled(
        self, store: DeliveryStore
    ) -> None:
        await store.plan([planned(), planned("lokalraad-0265")], DUE)
        jobs = await store.claim_renders(DUE, "w1", LEASE, 10)
        assert len(jobs) == 2
        assert await store.render_retry(KEY, "w1", "RuntimeError: away", DUE + timedelta(minutes=1))
        assert await store.cancel(("lokalraad-0265", "2026-Q3"), "w1", "not in the plan")
        assert await store.next_due() == DUE + timedelta(minutes=1)
        assert await store.claim_renders(DUE, "w1", LEASE, 10) == []
        assert [j.attempts for j in await store.claim_renders(DUE + timedelta(minutes=1), "w1", LEASE, 10)] == [2]
        assert await store.render_failed(KEY, "w1", "RuntimeError: away", SENDS, DUE)
        assert await store.claim_sends(DUE + timedelta(days=1), "w1", LEASE, 10) == []  # failed rows: not sent
        assert await store.next_due() is None

    async def test_each_recipients_send_is_claimed_once_and_recorded_only_by_its_holder(
        self, store: DeliveryStore
    ) -> None:
        await self.rendered_row(store)
        jobs = await store.claim_sends(DUE, "w1", LEASE, 10)
        assert sorted((j.recipient, j.message_id, j.attempts, j.in_doubt) for j in jobs) == [
            (recipient, message_id, 1, False) for recipient, message_id in SENDS
        ]
        first = next(j for j in jobs if j.recipient == SENDS[0][0])
        assert (first.filename, first.subject, first.body, first.pdf, first.composed_at) == (
            DOCUMENT.filename, DOCUMENT.subject, DOCUMENT.body, DOCUMENT.pdf, DUE,
        )  # fmt: skip
        assert await store.claim_sends(DUE, "w2", LEASE, 10) == []
        assert not await store.data_starting(first.key, "w2", LEASE, DUE)  # not w2's
        assert await store.data_starting(first.key, "w1", LEASE, DUE)
        assert not await store.sent(first.key, "w2", DUE, "SMTP 250")
        assert await store.sent(first.key, "w1", DUE, "SMTP 250 OK")
        second = next(j for j in jobs if j.recipient == SENDS[1][0])
        assert await store.send_retry(second.key, "w1", "SMTPConnectError", DUE + timedelta(minutes=1))
        assert await store.next_due() == DUE + timedelta(minutes=1)
        (again,) = await store.claim_sends(DUE + timedelta(minutes=1), "w1", LEASE, 10)
        assert (again.key, again.attempts, again.in_doubt) == (second.key, 2, False)
        assert await store.send_failed(second.key, "w1", "SMTP 550", DUE)
        assert not await store.send_retry(second.key, "w1", "late", DUE)  # failed stays failed
        assert await store.claim_sends(DUE + timedelta(days=1), "w1", LEASE, 10) == []

    async def test_a_send_cut_off_after_data_is_taken_over_in_doubt(self, store: DeliveryStore) -> None:
        await self.rendered_row(store)
        jobs = await store.claim_sends(DUE, "w1", LEASE, 1)
        (job,) = jobs
        assert await store.data_starting(job.key, "w1", LEASE, DUE)
        await self.expire_leases(store)  # w1 died after DATA: its 250 was never recorded
        assert not await store.data_starting(job.key, "w1", LEASE, DUE)  # a lease run out is no lease
        taken = [j for j in await store.claim_sends(DUE, "w2", LEASE, 10) if j.key == job.key]
        assert [(j.attempts, j.in_doubt) for j in taken] == [(2, True)]
        assert await store.data_starting(job.key, "w2", LEASE, DUE)
        assert await store.sent(job.key, "w2", DUE, "SMTP 250 OK")
        assert not await store.sent(job.key, "w1", DUE, "SMTP 250 OK")

    async def test_a_send_handed_back_is_not_an_attempt_and_a_renewed_lease_is_kept(self, store: DeliveryStore) -> None:
        await self.rendered_row(store)
        (job,) = await store.claim_sends(DUE, "w1", LEASE, 1)
        assert await store.hand_back(job.key, "w1")
        (again,) = [j for j in await store.claim_sends(DUE, "w1", LEASE, 10) if j.key == job.key]
        assert again.attempts == 1
        await store.renew([], [job.key], "w1", LEASE)
        assert await store.data_starting(job.key, "w1", LEASE, DUE)
