"""Command-line use of the reporting service: `rebuild` the read model from the topics, write a `council-report`."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import asyncpg
from aiokafka import ConsumerRecord
from pydantic import ValidationError

from services.reporting import handlers
from services.reporting.adapters import renderers, repository
from services.reporting.adapters.delivery_repository import DELIVERY_TABLES
from services.reporting.adapters.topics import TopicReader
from services.reporting.bootstrap import SERVICE, migrations
from services.reporting.domain.facts import FactBatch
from services.reporting.domain.periods import Period, PeriodError
from services.reporting.domain.report import CouncilReport, Scope, ScopeError
from services.reporting.settings import ReportingSettings
from shared.clock import SystemClock
from shared.db import create_pool, drop_schema, migrate
from shared.events import CloudEvent, UnknownEventType
from shared.unit_of_work import PostgresUnitOfWork

log = logging.getLogger(__name__)


class Progress:
    """One line on stderr every `every` seconds (and at the end): done, total, rate."""

    def __init__(self, what: str, out: TextIO = sys.stderr, every: float = 2.0) -> None:
        self.what = what
        self.out = out
        self.every = every
        self.started = time.monotonic()
        self._last = 0.0

    def say(self, text: str) -> None:
        print(f"{SERVICE} {self.what}: {text}", file=self.out, flush=True)

    def tick(self, done: int, total: int, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.every:
            return
        self._last = now
        elapsed = max(now - self.started, 1e-9)
        share = f" ({100 * done / total:.0f} %)" if total else ""
        self.say(f"{done:,} of {total:,} events{share}, {done / elapsed:,.0f} events/s")


def fold(batch: FactBatch, records: list[ConsumerRecord[Any, Any]]) -> int:
    """Adds the records' facts to the batch; returns how many could not be read (they stay on the DLQ side)."""
    unreadable = 0
    for record in records:
        try:
            event = CloudEvent.from_bytes(record.value or b"")
            if event.type not in handlers.HANDLED_TYPES:
                continue
            handlers.add_event(batch, event.meta, event.payload())
        except UnknownEventType:
            continue
        except (ValidationError, ValueError):
            unreadable += 1
    return unreadable


async def _apply_all(pool: asyncpg.Pool, reader: TopicReader, progress: Progress, batch_size: int) -> int:
    """Reads to the current end of every partition, applying each batch in its own transaction."""
    unreadable = 0
    ends = await reader.end_offsets()
    total = reader.read + await reader.total_to(ends)
    uow = PostgresUnitOfWork(lambda: pool, repository.PostgresReadModel)
    batch = FactBatch()
    async for records in reader.batches(ends):
        unreadable += fold(batch, records)
        if len(batch) >= batch_size:
            await handlers.apply(uow, batch)
            batch = FactBatch()
        progress.tick(reader.read, total)
    if len(batch):
        await handlers.apply(uow, batch)
    reader.resume()
    return unreadable


async def rebuild(settings: ReportingSettings, out: TextIO = sys.stderr) -> dict[str, Any]:
    """Reads cases.v1, deadlines.v1 and alerts.v1 from offset 0 into a fresh schema, then swaps it in.

    The live service may keep running: after the swap, whatever it applied to the old schema while
    the rebuild ran is read again from where the rebuild stopped (facts merge idempotently).
    """
    progress = Progress("rebuild", out)
    live, fresh = settings.db_schema, f"{settings.db_schema}_rebuild"
    if len(fresh) > 63:
        raise ValueError(f"schema name {fresh!r} too long for Postgres")
    topics = settings.topics
    await drop_schema(settings.database_url, fresh)
    await migrate(settings.database_url, fresh, migrations())
    reader = TopicReader(
        settings.kafka_bootstrap_servers,
        [topics.cases, topics.deadlines, topics.alerts],
        batch_size=settings.rebuild_batch_size,
    )
    await reader.start()
    started = time.monotonic()
    unreadable = 0
    try:
        progress.say(f"reading {', '.join(reader.topics)} from offset 0 into schema {fresh}")
        pool = await create_pool(settings.database_url, fresh, application=f"mvsj-{SERVICE}-rebuild", max_size=2)
        try:
            unreadable += await _apply_all(pool, reader, progress, settings.rebuild_batch_size)
            # Events that arrived while reading: once more to the new end, then swap.
            unreadable += await _apply_all(pool, reader, progress, settings.rebuild_batch_size)
        finally:
            await pool.close()
        progress.tick(reader.read, reader.read, force=True)
        applied = time.monotonic() - started
        progress.say("vacuum and analyze ...")
        await repository.vacuum_analyze(settings.database_url, fresh)
        # The council e-mails' records are not derived from the topics: they go into the new schema.
        await repository.swap_schema(settings.database_url, live=live, fresh=fresh, carry=DELIVERY_TABLES)
        progress.say(f"schema {fresh} swapped in as {live}")
        pool = await create_pool(settings.database_url, live, application=f"mvsj-{SERVICE}-rebuild", max_size=2)
        try:
            unreadable += await _apply_all(pool, reader, progress, settings.rebuild_batch_size)
        finally:
            await pool.close()
    finally:
        await reader.stop()
    seconds = time.monotonic() - started
    summary = {
        "events_read": reader.read,
        "unreadable": unreadable,
        "seconds": round(seconds, 2),
        "ingest_seconds": round(applied, 2),
        "events_per_second": round(reader.read / applied, 1) if applied else None,
    }
    progress.say(
        f"done: {reader.read:,} events in {seconds:.1f} s; ingest {applied:.1f} s"
        f" ({summary['events_per_second']:,} events/s), then vacuum, analyze and swap"
        + (f"; {unreadable} unreadable skipped (see the DLQ)" if unreadable else "")
    )
    return summary


def rebuild_command(settings: ReportingSettings, args: argparse.Namespace) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m services.{SERVICE} rebuild")
    parser.parse_args(args.args)
    asyncio.run(rebuild(settings))
    return 0


async def _read_report(
    settings: ReportingSettings, *, scope: Scope, period: Period, focus_area: str | None
) -> CouncilReport:
    pool = await create_pool(settings.database_url, settings.db_schema, application=f"mvsj-{SERVICE}-cli", max_size=4)
    try:
        return await handlers.council_report(
            repository.SnapshotUnitOfWork(lambda: pool),
            scope=scope,
            period=period,
            focus_area=focus_area,
            threshold=settings.small_number_threshold,
            now=SystemClock().now(),
        )
    finally:
        await pool.close()


def write_report(
    settings: ReportingSettings, *, scope: Scope, period: Period, focus_area: str | None, out: Path
) -> int:
    progress = Progress("council-report")
    fmt = out.suffix.lstrip(".").lower()
    progress.say(f"reading figures for {scope} {period} ...")
    report = asyncio.run(_read_report(settings, scope=scope, period=period, focus_area=focus_area))
    progress.say(f"rendering {fmt.upper()} ...")
    if fmt == "pdf":
        out.write_bytes(renderers.to_pdf(report))
    elif fmt == "html":
        out.write_text(renderers.to_html(report), encoding="utf-8")
    elif fmt == "csv":
        out.write_text(renderers.to_csv(report), encoding="utf-8")
    else:
        out.write_text(json.dumps(renderers.to_json(report), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    progress.say(f"wrote {out} ({out.stat().st_size:,} bytes) in {time.monotonic() - progress.started:.1f} s")
    return 0


def council_report_command(settings: ReportingSettings, args: argparse.Namespace) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m services.{SERVICE} council-report")
    parser.add_argument("--scope", default="kreds", help="kreds or a kommunekode (default kreds)")
    parser.add_argument("--period", required=True, help="2026, 2026-Q1 or 2026-03")
    parser.add_argument("--focus-area", default=None, help="only this indsatsområde")
    parser.add_argument("--out", required=True, type=Path, help="file to write: .pdf, .html, .csv or .json")
    options = parser.parse_args(args.args)
    if options.out.suffix.lower() not in (".pdf", ".html", ".csv", ".json"):
        parser.error("--out must end in .pdf, .html, .csv or .json")
    try:
        scope = Scope.parse(options.scope)
        period = Period.parse(options.period)
    except (ScopeError, PeriodError) as exc:
        parser.error(str(exc))
    return write_report(settings, scope=scope, period=period, focus_area=options.focus_area, out=options.out)
