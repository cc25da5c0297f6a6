"""Council reports by e-mail on real Postgres and a real SMTP server (aiosmtpd): once per plan entry, period and
recipient, across instances, a mail server that is away, and a reporting process killed in the middle of a send."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml
from prometheus_client import REGISTRY

from services.reporting.adapters.delivery_plan_file import load_plan
from services.reporting.adapters.delivery_repository import DELIVERY_TABLES, PostgresDeliveryStore, Rendered
from services.reporting.adapters.mailer import CouncilMailer
from services.reporting.adapters.repository import SnapshotUnitOfWork, swap_schema
from services.reporting.bootstrap import migrations
from services.reporting.domain.delivery_plan import PlanEntry, RetryPolicy
from services.reporting.domain.periods import Period
from services.reporting.entrypoints.deliveries import CouncilDeliveries, channel, report_maker
from shared.clock import SystemClock
from shared.db import create_pool, migrate
from shared.smtp import SmtpServer
from shared.timers import DurableTimer
from tests.integration.reporting.conftest import reporting_env
from tests.support.infra import Namespace
from tests.support.receivers import SmtpSink
from tests.support.services import ServiceProcess
from tests.support.waiting import eventually

KREDS = ["kredsraad-sekretariat@politi.example", "politidirektoer@politi.example", "borgmester@kommune.example"]
Q3 = "2026-Q3"


def plan_file(path: Path, *, recipients: list[str], at: datetime, extra: list[dict[str, Any]] = ()) -> Path:  # type: ignore[assignment]
    """A plan with the kredsråd's report of 2026-Q3 once, at `at`, and any `extra` entries."""
    document = {
        "version": 1,
        "closed_also": ["grundlovsdag", "juleaftensdag", "nytaarsaftensdag"],
        "deliveries": [
            {
                "id": "kredsraad",
                "council": "kreds",
                "recipients": recipients,
                "report": {"scope": "kreds", "period": "quarter"},
                "when": {"period": Q3, "at": at.isoformat()},
            },
            *extra,
        ],
    }
    path.write_text(yaml.safe_dump(document, allow_unicode=True))
    return path


def emails(outcome: str) -> float:
    return REGISTRY.get_sample_value("reporting_council_report_emails_total", {"outcome": outcome}) or 0.0


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    yield sink
    sink.stop()


@pytest.fixture
async def pool(ns: Namespace, reporting_schema: str) -> AsyncIterator[asyncpg.Pool]:
    p = await create_pool(ns.database_url, reporting_schema, application="reporting-delivery-tests")
    yield p
    await p.close()


def worker(pool: asyncpg.Pool, plan: Path, schema: str, port: int, *, retry: RetryPolicy | None = None,
           real_pdf: bool = True) -> CouncilDeliveries:  # fmt: skip
    """A worker as the service builds it; with `real_pdf=False` it attaches a stand-in document (tests of the
    sending only: the real report takes a second or two to render)."""
    mailer = CouncilMailer(SmtpServer("127.0.0.1", port), "raadsrapporter@politi.example", timeout=5.0)
    return CouncilDeliveries(
        PostgresDeliveryStore(pool), load_plan(plan), mailer,
        report_maker(SnapshotUnitOfWork(lambda: pool), threshold=10, clock=SystemClock()) if real_pdf else stand_in,
        clock=SystemClock(), channel=channel(schema), lease=timedelta(seconds=10),
        retry=retry or RetryPolicy(base=0.2, cap=0.4, max_attempts=3), concurrency=5,
    )  # fmt: skip


async def stand_in(entry: PlanEntry, period: Period) -> Rendered:
    return Rendered(filename=entry.filename(period), subject="Rådsrapport", body="tekst", pdf=b"%PDF-1.7 stand-in",
                    pdf_sha256="", rendered_at=datetime.now(UTC))  # fmt: skip


async def running(pool: asyncpg.Pool, *workers: CouncilDeliveries) -> list[asyncio.Task[None]]:
    """Each worker on a DurableTimer of its own, as each instance of the service runs it."""
    tasks = []
    for w in workers:
        timer = DurableTimer(pool, channel=w.channel, name="test", fire_due=w.fire_due, next_due=w.next_due,
                             batch_size=w.batch, max_sleep=0.5)  # fmt: skip
        tasks.append(asyncio.create_task(timer.run()))
    return tasks


async def stopped(tasks: list[asyncio.Task[None]], *workers: CouncilDeliveries) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for w in workers:
        await w.close()


async def sends(pool: asyncpg.Pool) -> dict[str, asyncpg.Record]:
    return {r["recipient"]: r for r in await pool.fetch("SELECT * FROM council_delivery_sends")}


async def test_two_instances_send_each_recipient_the_report_once_and_keep_a_record_of_it(
    ns: Namespace, pool: asyncpg.Pool, reporting_schema: str, smtp: SmtpSink, tmp_path: Path
) -> None:
    quarterly = {
        "id": "lokalraad-0265",
        "council": "0265",
        "recipients": ["lokalraad-roskilde@kommune.example"],
        "report": {"scope": "0265", "period": "quarter"},
        "when": {"working_day": 5, "at": "08:00"},
    }
    path = plan_file(tmp_path / "plan.yaml", recipients=KREDS, at=datetime.now(UTC), extra=[quarterly])
    first, second = worker(pool, path, reporting_schema, smtp.port), worker(pool, path, reporting_schema, smtp.port)
    tasks = await running(pool, first, second)
    try:
        await eventually(lambda: len(smtp.messages) >= 3, timeout=30, what="the report to three recipients")
        await eventually(lambda: _all_sent(pool, 3), timeout=10, what="three sends recorded")
        await asyncio.sleep(0.5)  # both instances keep looking: nothing more goes out
    finally:
        await stopped(tasks, first, second)
    assert sorted(rcpt for rcpts, _ in smtp.messages for rcpt in rcpts) == sorted(KREDS)
    records = await sends(pool)
    delivery = await pool.fetchrow("SELECT * FROM council_deliveries WHERE entry_id = 'kredsraad'")
    assert delivery is not None
    for address in KREDS:
        (message,) = smtp.to(address)
        assert message["Subject"] == "Rådsrapport 3. kvartal 2026: Midt- og Vestsjællands Politi, hele kredsen"
        body = message.get_body(preferencelist=("plain",))
        assert body is not None and "for få sager" in body.get_content()
        (pdf,) = list(message.iter_attachments())
        assert pdf.get_content_type() == "application/pdf"
        assert pdf.get_filename() == "raadsrapport-kreds-2026-Q3.pdf"
        content = pdf.get_content()
        assert content.startswith(b"%PDF") and hashlib.sha256(content).hexdigest() == delivery["pdf_sha256"]
        # The record: what was sent to whom, when, under which Message-ID.
        row = records[address]
        assert (row["state"], row["attempts"], row["in_doubt_resends"]) == ("sent", 1, 0)
        assert str(message["Message-ID"]).strip() == row["message_id"] and row["sent_at"] is not None
        assert row["smtp_reply"].startswith("SMTP 250")
    # The quarterly entry is on the timer for its next quarter, not sent now.
    plan = load_plan(path)
    entry = plan.entry("lokalraad-0265")
    assert entry is not None
    ((period, due),) = entry.periods_to_plan(datetime.now(UTC), plan.calendar, None)
    planned = await pool.fetchrow("SELECT * FROM council_deliveries WHERE entry_id = 'lokalraad-0265'")
    assert planned is not None
    assert (planned["period"], planned["due_at"], planned["state"]) == (str(period), due, "scheduled")
    assert smtp.to("lokalraad-roskilde@kommune.example") == []


async def _all_sent(pool: asyncpg.Pool, n: int) -> bool:
    return bool(await pool.fetchval("SELECT count(*) FROM council_delivery_sends WHERE state = 'sent'") == n)


async def test_a_mail_server_that_is_away_is_tried_again_later_and_the_report_goes_out_once_it_is_back(
    ns: Namespace, pool: asyncpg.Pool, reporting_schema: str, tmp_path: Path
) -> None:
    sink = SmtpSink()  # its port chosen, nothing listening yet
    path = plan_file(tmp_path / "plan.yaml", recipients=KREDS[:1], at=datetime.now(UTC))
    w = worker(pool, path, reporting_schema, sink.port, retry=RetryPolicy(base=0.5, cap=0.5, max_attempts=20),
               real_pdf=False)  # fmt: skip
    retried = emails("retry")
    tasks = await running(pool, w)
    try:
        await eventually(lambda: _tried(pool), timeout=30, what="a first try, refused")
        row = (await sends(pool))[KREDS[0]]
        assert row["state"] == "pending" and "Error connecting to 127.0.0.1" in row["last_error"], row["last_error"]
        assert row["data_started_at"] is None  # nothing can have reached anyone
        assert emails("retry") > retried
        sink.start()
        await eventually(lambda: _all_sent(pool, 1), timeout=10, what="sent once the server is back")
    finally:
        await stopped(tasks, w)
        sink.stop()
    assert len(sink.to(KREDS[0])) == 1
    row = (await sends(pool))[KREDS[0]]
    assert row["attempts"] >= 2 and row["in_doubt_resends"] == 0 and row["last_error"] is None


async def _tried(pool: asyncpg.Pool) -> bool:
    return bool(await pool.fetchval("SELECT count(*) FROM council_delivery_sends WHERE last_error IS NOT NULL"))


async def test_a_refused_recipient_fails_at_once_and_one_that_stays_deferred_fails_after_the_last_try(
    ns: Namespace, pool: asyncpg.Pool, reporting_schema: str, smtp: SmtpSink, tmp_path: Path
) -> None:
    unknown, deferred, fine = "ukendt@kommune.example", "fuld@kommune.example", KREDS[0]
    smtp.refuse = {unknown: "550 5.1.1 no such user", deferred: "452 4.2.2 mailbox full"}
    path = plan_file(tmp_path / "plan.yaml", recipients=[unknown, deferred, fine], at=datetime.now(UTC))
    w = worker(pool, path, reporting_schema, smtp.port, retry=RetryPolicy(base=0.2, cap=0.2, max_attempts=3),
               real_pdf=False)  # fmt: skip
    failed = emails("failed")
    tasks = await running(pool, w)
    try:
        await eventually(lambda: _states(pool, {"failed": 2, "sent": 1}), timeout=30, what="two failed, one sent")
    finally:
        await stopped(tasks, w)
    records = await sends(pool)
    assert records[unknown]["attempts"] == 1 and "550" in records[unknown]["last_error"]
    assert records[deferred]["attempts"] == 3 and "452" in records[deferred]["last_error"]
    assert records[deferred]["failed_at"] is not None
    assert emails("failed") - failed == 2
    assert len(smtp.to(fine)) == 1 and smtp.to(unknown) == [] == smtp.to(deferred)


async def _states(pool: asyncpg.Pool, wanted: dict[str, int]) -> bool:
    rows = await pool.fetch("SELECT state, count(*) AS n FROM council_delivery_sends GROUP BY state")
    return {r["state"]: r["n"] for r in rows} == wanted


async def test_reporting_killed_in_the_middle_of_sending_sends_each_report_once_or_again_under_the_same_message_id(
    ns: Namespace, reporting_schema: str, smtp: SmtpSink, tmp_path: Path
) -> None:
    """kill -9 of reporting while two e-mails are in flight: one waits for the server to accept its recipient
    (nothing sent yet), the other's message the server has taken but not yet answered 250 to (sent, unrecorded).

    After the restart the first goes out exactly once; the second is sent again under the same
    Message-ID (the window the module docstring of entrypoints/deliveries.py names): the recipient
    holds one message, perhaps twice, never two different ones.
    """
    not_yet, taken = "langsom-modtager@kommune.example", "langsomt-svar@kommune.example"
    smtp.rcpt_delay[not_yet] = 60.0
    smtp.data_delay[taken] = 60.0
    path = plan_file(tmp_path / "plan.yaml", recipients=[not_yet, taken], at=datetime.now(UTC))
    env = reporting_env(ns) | {
        "COUNCIL_DELIVERY_PLAN_FILE": str(path), "REPORTING_SMTP_PORT": str(smtp.port),
        # The kill comes within a second of the sends starting; the restarted instance takes them over
        # once their leases run out.
        "REPORTING_DELIVERY_SEND_TIMEOUT_SECONDS": "4", "REPORTING_DELIVERY_LEASE_SECONDS": "6.5",
        "REPORTING_DELIVERY_RETRY_BASE_SECONDS": "0.5", "REPORTING_DELIVERY_MAX_SLEEP_SECONDS": "1",
    }  # fmt: skip
    first = ServiceProcess("reporting", env, tmp_path / "reporting-1.log")
    first.start()
    try:
        await eventually(lambda: smtp.to(taken) and any(a == not_yet for a, _ in smtp.rcpts), timeout=40,
                         step=0.05, what=f"both sends in flight: {first.tail()}")  # fmt: skip
    finally:
        first.kill()  # SIGKILL: leases held, both conversations cut off, nothing recorded after DATA
    killed_at = time.monotonic()
    smtp.rcpt_delay.clear()
    smtp.data_delay.clear()
    second = ServiceProcess("reporting", env, tmp_path / "reporting-2.log")
    second.start()
    pool = await create_pool(ns.database_url, reporting_schema, application="reporting-delivery-tests")
    try:
        await eventually(lambda: _all_sent(pool, 2), timeout=40, what=f"both sent after the restart: {second.tail()}")
        records = await sends(pool)
    finally:
        second.stop()
        await pool.close()
    assert len(smtp.to(not_yet)) == 1  # the server never had it before the kill: once
    ids = Counter(str(m["Message-ID"]).strip() for m in smtp.to(taken))
    assert list(ids) == [records[taken]["message_id"]]  # one message, under its one Message-ID
    assert ids[records[taken]["message_id"]] == 2  # taken before the kill, its 250 never recorded: sent again
    assert records[taken]["in_doubt_resends"] == 1 and records[not_yet]["in_doubt_resends"] == 0
    assert next(at for mid, at in smtp.arrivals if mid.strip() == records[taken]["message_id"]) < killed_at


async def test_a_rebuild_of_the_read_model_keeps_the_record_of_what_was_sent(
    ns: Namespace, reporting_schema: str
) -> None:
    fresh = ns.schema("reporting_rebuild")
    await migrate(ns.database_url, fresh, migrations())
    pool = await create_pool(ns.database_url, reporting_schema, application="reporting-delivery-tests")
    try:
        now = datetime.now(UTC)
        await pool.execute(
            "INSERT INTO council_deliveries (entry_id, period, scope, due_at, state, planned_at, next_attempt_at, pdf)"
            " VALUES ('kredsraad', $1, 'kreds', $2, 'rendered', $2, $2, '%PDF'::bytea)",
            Q3, now,
        )  # fmt: skip
        await pool.execute(
            "INSERT INTO council_delivery_sends (entry_id, period, recipient, message_id, state, created_at,"
            " next_attempt_at, sent_at) VALUES ('kredsraad', $1, $2, '<m@politi.example>', 'sent', $3, $3, $3)",
            Q3, KREDS[0], now,
        )  # fmt: skip
        await swap_schema(ns.database_url, live=reporting_schema, fresh=fresh, carry=DELIVERY_TABLES)
        # The pool's next statements find the swapped-in schema by its name.
        row = await pool.fetchrow("SELECT * FROM council_delivery_sends")
        assert row is not None
        assert (row["recipient"], row["state"], row["message_id"]) == (KREDS[0], "sent", "<m@politi.example>")
        assert await pool.fetchval("SELECT pdf FROM council_deliveries WHERE period = $1", Q3) == b"%PDF"
        assert Period.parse(row["period"]) == Period.parse(Q3)
    finally:
        await pool.close()
