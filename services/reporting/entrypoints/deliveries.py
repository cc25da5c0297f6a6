"""The council report delivery timer: puts each plan entry's periods on the timer, renders each due report
once, and e-mails it to each recipient once, across restarts and instances.

It runs on the shared `DurableTimer` (shared/timers.py): `fire_due()` does one round, `next_due()`
says when the next row falls due, and a NOTIFY on `council_delivery_<schema>` wakes it early. The
rows are in Postgres (adapters/delivery_repository.py), so a restart loses nothing that was due.

**What a recipient gets** (the guarantee). Each (plan entry, period, recipient) has one row and one
Message-ID (`PlanEntry.message_id`: entry, period and address), and the same text and PDF on every
try (stored when the report was rendered). A row is claimed under a lease (Postgres's clock), which
the worker renews while it sends and records; the SMTP conversation runs with no transaction open.
Just before the message's DATA, the worker records (and commits) that the server may have it from
now on (`data_started_at`), provided it still holds a live lease; right after the server's 250 it
records the row sent. So:

- two live instances never both send a row: the second cannot claim it while the first's lease
  lives, and the first cannot pass DATA without its lease;
- a send that fails before DATA (server away, refused connection, a kill) sent nothing: it is
  tried again, and the recipient gets exactly one message;
- the one window left is from DATA to the recording of the server's 250: a process killed (or a
  connection lost, or a 250 later than the send's bound) there leaves the row with
  `data_started_at` and no `sent_at`. The message is then sent again **with the same Message-ID**
  (counted in `in_doubt_resends` and `reporting_council_report_emails_total{outcome="resent_in_doubt"}`):
  at least once, and never two different messages; mail stores that drop a repeated Message-ID
  (Exchange, Gmail, Dovecot's and Cyrus's duplicate suppression) show it once. We resend rather
  than give up because a council that misses its report before the meeting is worse off than
  one that gets it twice.
- a worker frozen (stopped, swapped out) for longer than its lease in the middle of DATA may have
  its row sent by another instance too, with the same Message-ID: the same at-least-once.

A try that fails is retried after a capped exponential backoff; after the last attempt (or at once
on a permanent 5xx refusal) the row is failed with its reason, counted, and alerted on
(deploy/prometheus/alerts.yml, CouncilReportNotDelivered).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Protocol

from services.reporting import handlers
from services.reporting.adapters import delivery_repository as repo
from services.reporting.adapters import renderers
from services.reporting.adapters.delivery_plan_file import load_plan
from services.reporting.adapters.delivery_repository import Rendered, RenderJob, SendJob
from services.reporting.adapters.mailer import CouncilMailer
from services.reporting.adapters.repository import SnapshotUnitOfWork
from services.reporting.delivery_settings import DELIVERY_LEASE_MARGIN_SECONDS
from services.reporting.domain.delivery_message import council_mail
from services.reporting.domain.delivery_plan import DeliveryPlan, PlanEntry, RetryPolicy
from services.reporting.domain.periods import Period
from services.reporting.metrics import COUNCIL_EMAILS
from services.reporting.settings import ReportingSettings
from shared import backoff as shared_backoff
from shared.clock import Clock
from shared.db import is_transient
from shared.logs import log_context
from shared.runtime import BackgroundLoop, ServiceRuntime
from shared.smtp import BeforeData, SmtpResult, SmtpServer
from shared.timers import DurableTimer
from shared.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

# A send given less time than this could hardly succeed; it is handed back rather than started.
MIN_SEND_SECONDS = 1.0
# The plan is put on the timer at start, after every report rendered, and at least this often.
REPLAN_SECONDS = 3600.0
# On shutdown, sends in flight get this long to finish (within the runtime's 5 s for a loop to stop).
CLOSE_GRACE_SECONDS = 4.0

MakeDocument = Callable[[PlanEntry, Period], Awaitable[Rendered]]


class Mailer(Protocol):
    """What the worker needs of the mail side (adapters/mailer.py CouncilMailer; a fake in unit tests)."""

    @property
    def domain(self) -> str: ...

    def message(self, *, to: str, subject: str, text: str, message_id: str, composed_at: datetime, pdf: bytes,
                filename: str) -> EmailMessage: ...  # fmt: skip

    async def send(self, message: EmailMessage, *, timeout: float, before_data: BeforeData) -> SmtpResult: ...


class LeaseLost(Exception):
    """Another instance holds the row now: this one must not send it."""


class CouncilDeliveries:
    """One instance's worker: `fire_due` and `next_due` for the DurableTimer; see the module docstring."""

    def __init__(
        self,
        store: repo.DeliveryStore,
        plan: DeliveryPlan,
        mailer: Mailer,
        make_document: MakeDocument,
        *,
        clock: Clock,
        channel: str,
        lease: timedelta,
        retry: RetryPolicy,
        concurrency: int,
        record_margin: float = DELIVERY_LEASE_MARGIN_SECONDS,
        random: Callable[[], float] = random.random,
    ) -> None:
        self.channel = channel
        self.owner = uuid.uuid4().hex[:12]
        self.batch = concurrency
        self._store = store
        self._plan = plan
        self._mailer = mailer
        self._make_document = make_document
        self._clock = clock
        self._lease = lease
        self._retry = retry
        self._concurrency = concurrency
        self._record_margin = record_margin
        self._random = random
        self._planned_at: float | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        # Rows this worker holds, with when (event-loop clock) their lease runs out at the earliest.
        self._renders: dict[repo.DeliveryKey, float] = {}
        self._sends: dict[repo.SendKey, float] = {}
        self._keeper: asyncio.Task[None] | None = None

    # --- planning ---

    async def plan(self) -> int:
        """Puts every entry's next period (and any it missed while the service was down) on the timer."""
        now = self._clock.now()
        existing = await self._store.planned_periods()
        rows = []
        for entry in self._plan.entries:
            same_kind = [p for p in map(Period.parse, existing.get(entry.id, [])) if p.kind == entry.kind]
            latest = max(same_kind, default=None)
            for period, due in entry.periods_to_plan(now, self._plan.calendar, latest):
                rows.append(repo.PlannedRow(entry.id, str(period), str(entry.report.scope), entry.report.focus_area,
                                            due))  # fmt: skip
        added = await self._store.plan(rows, now)
        self._planned_at = time.monotonic()
        if added:
            log.info("council deliveries planned: %d new", added)
        return added

    # --- the timer's round ---

    async def fire_due(self) -> int:
        if self._planned_at is None or time.monotonic() - self._planned_at > REPLAN_SECONDS:
            await self.plan()
        rendered = await self._render_due()
        if rendered:
            await self.plan()  # the entry's next period goes on the timer
        started, room = await self._start_sends()
        # Every free slot filled: more may be waiting, and the timer looks again at once.
        return self.batch if started and started >= room else rendered + started

    async def next_due(self) -> datetime | None:
        return await self._store.next_due()

    async def idle(self) -> None:
        """Waits for the sends in flight to end (tests; a shutdown cancels them instead)."""
        while self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)

    async def close(self, grace: float = 0.0) -> None:
        """Lets sends in flight finish for up to `grace` seconds, then stops the rest.

        A send stopped after DATA is sent again, under the same Message-ID, by the next instance
        that takes its row over (its lease runs out): the grace keeps a rolling restart from doing that.
        """
        if self._in_flight and grace > 0:
            await asyncio.wait(self._in_flight, timeout=grace)
        tasks = [*self._in_flight, *([self._keeper] if self._keeper else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- rendering: once per entry and period ---

    async def _render_due(self) -> int:
        now = self._clock.now()
        claimed_at = asyncio.get_running_loop().time()
        jobs = await self._store.claim_renders(now, self.owner, self._lease, 1)
        for job in jobs:
            self._renders[job.key] = claimed_at + self._lease.total_seconds()
            self._keep_leases()
            try:
                with log_context(delivery=job.entry_id, period=job.period):
                    await self._render_one(job)
            finally:
                self._renders.pop(job.key, None)
        return len(jobs)

    async def _render_one(self, job: RenderJob) -> None:
        entry = self._plan.entry(job.entry_id)
        if entry is None:
            await self._store.cancel(job.key, self.owner, "not in the delivery plan any more")
            log.warning("council delivery %s %s: not in the plan any more; cancelled", *job.key)
            return
        period = Period.parse(job.period)
        sends = [(r, entry.message_id(period, r, self._mailer.domain)) for r in entry.recipients]
        try:
            document = await self._make_document(entry, period)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
            decision, delay = self._retry.after(job.attempts, False, self._random)
            now = self._clock.now()
            if decision == "retry":
                await self._store.render_retry(job.key, self.owner, error, now + timedelta(seconds=delay))
                log.warning("council report %s %s not made (%s); trying again in %.0f s", *job.key, error, delay)
            elif await self._store.render_failed(job.key, self.owner, error, sends, now):
                COUNCIL_EMAILS.labels("failed").inc(len(sends))
                log.error("council report %s %s not made after %d tries: %s", *job.key, job.attempts, error)
            return
        done = await self._store.rendered(job.key, self.owner, document, sends, self._clock.now())
        if done:
            log.info("council report %s %s made (%d bytes); %d e-mails to send", *job.key, len(document.pdf),
                     len(sends))  # fmt: skip
        else:
            log.warning("council report %s %s: taken over by another instance while being made", *job.key)

    # --- sending: once per recipient ---

    async def _start_sends(self) -> tuple[int, int]:
        """Claims as many due sends as there are free slots and starts them; returns (started, slots)."""
        if len(self._in_flight) >= self._concurrency:
            await asyncio.wait(self._in_flight, return_when=asyncio.FIRST_COMPLETED)
        room = self._concurrency - len(self._in_flight)
        now = self._clock.now()
        # Before the claim: Postgres sets each lease after this moment, so it runs out no sooner than this + lease.
        claimed_at = asyncio.get_running_loop().time()
        jobs = await self._store.claim_sends(now, self.owner, self._lease, room)
        for job in jobs:
            self._sends[job.key] = claimed_at + self._lease.total_seconds()
            task = asyncio.create_task(self._deliver(job))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
        if jobs:
            self._keep_leases()
        return len(jobs), room

    async def _deliver(self, job: SendJob) -> None:
        try:
            with log_context(delivery=job.entry_id, period=job.period):
                await self._deliver_held(job)
        finally:
            self._sends.pop(job.key, None)

    async def _deliver_held(self, job: SendJob) -> None:
        loop = asyncio.get_running_loop()
        # The send ends while the lease has room for recording its result; with too little left (a
        # starved loop) it is handed back, not started late.
        budget = self._sends[job.key] - loop.time() - self._record_margin
        if budget < MIN_SEND_SECONDS:
            log.warning("council e-mail %s: too little lease left to send (%.1f s); handed back", job.message_id,
                        budget)  # fmt: skip
            await self._store.hand_back(job.key, self.owner)
            return
        message = self._mailer.message(
            to=job.recipient, subject=job.subject, text=job.body, message_id=job.message_id,
            composed_at=job.composed_at, pdf=job.pdf, filename=job.filename,
        )  # fmt: skip

        async def before_data() -> None:
            asked_at = loop.time()
            if not await self._store.data_starting(job.key, self.owner, self._lease, self._clock.now()):
                raise LeaseLost(job.message_id)
            self._sends[job.key] = asked_at + self._lease.total_seconds()
            if job.in_doubt:
                COUNCIL_EMAILS.labels("resent_in_doubt").inc()
                log.warning("council e-mail %s: an earlier try's answer was not recorded; sending it again with"
                            " the same Message-ID", job.message_id)  # fmt: skip

        try:
            result = await self._mailer.send(message, timeout=budget, before_data=before_data)
        except LeaseLost:
            log.warning("council e-mail %s: taken over by another instance before it was sent", job.message_id)
            return
        except Exception as exc:  # the database before DATA, or a bug: nothing was sent; try again
            result = SmtpResult("retry", f"{type(exc).__name__}: {exc}"[:300])
        await self._record(job, result)

    async def _record(self, job: SendJob, result: SmtpResult) -> None:
        """Writes the send's result; a database that refuses or drops the connection is waited out.

        Giving up means sending again once the lease runs out (with the same Message-ID), so a
        transient error is retried for as long as three leases, the lease renewed meanwhile.
        """
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + 3 * self._lease.total_seconds()
        pauses = shared_backoff.Backoff(first=0.1, cap=2.0)
        decision, delay = ("retry", 0.0)
        if result.verdict != "delivered":
            decision, delay = self._retry.after(job.attempts, result.verdict == "failed", self._random)
        while True:
            now = self._clock.now()
            try:
                if result.verdict == "delivered":
                    outcome, done = "sent", await self._store.sent(job.key, self.owner, now, result.detail)
                elif decision == "retry":
                    at = now + timedelta(seconds=delay)
                    outcome, done = "retry", await self._store.send_retry(job.key, self.owner, result.detail, at)
                else:
                    outcome, done = "failed", await self._store.send_failed(job.key, self.owner, result.detail, now)
                break
            except Exception as exc:
                pause = pauses.next()
                if is_transient(exc) and loop.time() + pause < give_up_at:
                    log.warning("council e-mail %s: result not recorded yet (%r); trying again", job.message_id, exc)
                    await asyncio.sleep(pause)
                    continue
                log.warning("council e-mail %s: result not recorded (%r); it will be tried again", job.message_id,
                            exc)  # fmt: skip
                return
        if not done:
            log.warning("council e-mail %s: no longer held when its result came to be recorded", job.message_id)
            return
        COUNCIL_EMAILS.labels(outcome).inc()
        if outcome == "sent":
            log.info("council e-mail %s sent (try %d)", job.message_id, job.attempts)
        elif outcome == "retry":
            log.warning("council e-mail %s not sent (%s); trying again in %.0f s", job.message_id, result.detail, delay)
        else:
            log.error("council e-mail %s failed after %d tries: %s", job.message_id, job.attempts, result.detail)

    # --- leases ---

    def _keep_leases(self) -> None:
        if self._keeper is None or self._keeper.done():
            self._keeper = asyncio.create_task(self._renew_leases())

    async def _renew_leases(self) -> None:
        """Renews the leases of what this worker renders, sends or records, every third of a lease."""
        loop = asyncio.get_running_loop()
        lease = self._lease.total_seconds()
        while self._renders or self._sends:
            await asyncio.sleep(lease / 3)
            renders, sends = list(self._renders), list(self._sends)
            asked_at = loop.time()
            try:
                await self._store.renew(renders, sends, self.owner, self._lease)
            except Exception as exc:  # the renewing must outlive any one failed round
                log.warning("council delivery leases not renewed (%r)", exc)
                continue
            for key in sends:
                if key in self._sends:
                    self._sends[key] = asked_at + lease


def report_maker(reports: UnitOfWork[handlers.ReadModel], *, threshold: int, clock: Clock) -> MakeDocument:
    """Makes the council report as the API does (handlers.council_report, renderers.to_pdf), with its e-mail text."""

    async def make(entry: PlanEntry, period: Period) -> Rendered:
        now = clock.now()
        report = await handlers.council_report(
            reports, scope=entry.report.scope, period=period, focus_area=entry.report.focus_area,
            threshold=threshold, now=now,
        )  # fmt: skip
        pdf = await asyncio.to_thread(renderers.to_pdf, report)
        mail = council_mail(entry, period, threshold=threshold, figures_as_of=now)
        return Rendered(
            filename=entry.filename(period), subject=mail.subject, body=mail.text, pdf=pdf,
            pdf_sha256=hashlib.sha256(pdf).hexdigest(), rendered_at=now,
        )  # fmt: skip

    return make


def council_delivery_loop(settings: ReportingSettings) -> BackgroundLoop:
    """The service's background loop for the delivery plan; the plan file is read here, so a bad one stops start-up."""
    plan = load_plan(settings.council_delivery_plan_file)
    server = SmtpServer(settings.smtp_host, settings.smtp_port, starttls=settings.smtp_starttls,
                        use_tls=settings.smtp_use_tls, username=settings.smtp_username,
                        password=settings.smtp_password)  # fmt: skip
    mailer = CouncilMailer(server, settings.smtp_from, timeout=settings.delivery_send_timeout_seconds)
    retry = RetryPolicy(settings.delivery_retry_base_seconds, settings.delivery_retry_cap_seconds,
                        settings.delivery_max_attempts)  # fmt: skip

    async def council_deliveries(runtime: ServiceRuntime) -> None:
        worker = CouncilDeliveries(
            repo.PostgresDeliveryStore(runtime.db), plan, mailer,
            report_maker(SnapshotUnitOfWork(lambda: runtime.db), threshold=settings.small_number_threshold,
                         clock=runtime.clock),
            clock=runtime.clock, channel=channel(settings.db_schema),
            lease=timedelta(seconds=settings.delivery_lease_seconds), retry=retry,
            concurrency=settings.delivery_concurrency,
        )  # fmt: skip
        timer = DurableTimer(
            runtime.db, channel=worker.channel, name="CouncilDeliveries", fire_due=worker.fire_due,
            next_due=worker.next_due, batch_size=worker.batch, max_sleep=settings.delivery_max_sleep_seconds,
            clock=runtime.clock,
            progress=runtime.health.loop("council deliveries", sleeps_up_to=settings.delivery_max_sleep_seconds),
        )  # fmt: skip
        try:
            await timer.run()
        finally:
            await worker.close(grace=CLOSE_GRACE_SECONDS)

    return council_deliveries


def channel(schema: str) -> str:
    """The NOTIFY channel the delivery tables' triggers wake the timer of `schema` on (migrations/0007)."""
    return f"council_delivery_{schema}"
