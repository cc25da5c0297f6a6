"""`python -m services.<name> dlq list|show|redrive`: read a service's dead letters and re-publish them, once.

- `list [--reason TEXT]`: every entry of `dlq.<service>.v1` (with `KAFKA_TOPIC_PREFIX`): its id
  (`partition:offset` in the DLQ topic), when it was dead-lettered, the original topic, partition
  and offset, event type and id, attempts, whether it was redriven, and the reason.
- `show ID...`: one entry in full: headers, reason, and the value, pretty-printed when it is JSON.
  The value is the event envelope as stored on the bus, which by design holds no personal data
  (that stays in intake's tables); it is printed to the operator's terminal on request, never logged.
- `redrive (ID... | --reason TEXT | --all) [--dry-run] [--by NAME] [--include-unconfirmed]`:
  re-publishes the chosen entries to their original topic with their original key, bytes and
  headers (the `dlq.*` headers taken off). Every consumer group of that topic reads it again;
  each one's inbox drops an event it already applied, so only the group that dead-lettered it
  (and any other that failed on it) applies it now. An ID is a DLQ position (`2:17`) or an event id.
  One that fails again is dead-lettered anew: a new entry, with an id of its own, to redrive later.

Once per DLQ message, recorded in Postgres. The ledger is a table in the service's own schema,
`dlq_redriven` (shared/sql/0002_dlq_redriven.sql), rather than marker messages on a compacted
topic, because:
- a row can be claimed atomically (`INSERT ... ON CONFLICT DO NOTHING`): two operators redriving
  the same entry at once cannot both publish it; markers on a topic can only be written after the
  fact, and two tools reading the same "not yet" would both publish;
- it is committed before the publish (the claim) and completed after Kafka confirmed it
  (`redriven_at`). A run that dies in between leaves an *unconfirmed* row: the tool neither
  repeats it by itself nor forgets it; `list` shows it, and `--include-unconfirmed` sends it
  again once the operator has checked it did not arrive (a repeat is still harmless to the
  consumers: their inbox drops it). When Kafka refuses a batch (PublishError: the producer
  has failed its batches, so nothing of them goes out later) the claims are released at once;
- the service already has a schema, migrations and backups; a compacted topic would be one more
  topic per service to create, configure and protect from retention.
Cost: the ledger lives with the schema. Reporting's `rebuild` swaps in a fresh schema, whose
ledger is empty: entries redriven before a rebuild can be redriven again (harmless, as above).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from shared.aio import within
from shared.db import Conn, create_pool, quote_ident
from shared.dlq import (
    CONSUMER,
    ERROR_CLASS,
    HEADER_PREFIX,
    ORIGINAL_OFFSET,
    ORIGINAL_PARTITION,
    SERVICE,
    DeadLetter,
    redrive_message,
)
from shared.kafka import EventProducer, PublishError, bootstrap_servers, kafka_reachable
from shared.settings import ServiceSettings

BATCH = 100  # entries claimed, published and confirmed together
ENTRY_LINES = 50  # up to this many chosen: a line per entry; more: a progress line every 2 s instead
REASON_WIDTH = 80


class DlqError(Exception):
    """Something the operator must fix or choose; the message says what to do. Exit code 1."""


@dataclass(frozen=True, slots=True)
class Mark:
    """A DLQ entry's row in `dlq_redriven`."""

    by: str
    claimed_at: datetime
    redriven_at: datetime | None

    @property
    def confirmed(self) -> bool:
        return self.redriven_at is not None

    def describe(self) -> str:
        if self.redriven_at is not None:
            return f"redriven {_when(self.redriven_at)} by {self.by}"
        return f"unconfirmed: a redrive by {self.by} at {_when(self.claimed_at)} stopped before Kafka confirmed it"


Marks = dict[tuple[int, int], Mark]


# --- the command line ------------------------------------------------------------------------


def parser(service: str) -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog=f"python -m services.{service} dlq",
        description=f"Dead letters of {service} (topic dlq.{service}.v1 with KAFKA_TOPIC_PREFIX).",
    )
    commands = top.add_subparsers(dest="action", required=True, metavar="list|show|redrive")
    listing = commands.add_parser("list", help="every entry: id, when, original topic/partition/offset, reason")
    listing.add_argument("--reason", default=None, help="only entries whose reason contains TEXT (any case)")
    show = commands.add_parser("show", help="entries in full: headers, reason, the event envelope")
    show.add_argument("ids", nargs="+", metavar="ID", help="partition:offset in the DLQ topic, or an event id")
    redrive = commands.add_parser("redrive", help="re-publish entries to their original topic, once each")
    redrive.add_argument("ids", nargs="*", metavar="ID", help="partition:offset in the DLQ topic, or an event id")
    redrive.add_argument("--reason", default=None, help="every entry whose reason contains TEXT (any case)")
    redrive.add_argument("--all", action="store_true", help="every entry not yet redriven")
    redrive.add_argument("--dry-run", action="store_true", help="say what would be published; publish nothing")
    redrive.add_argument("--by", default=None, help="who redrives, for the record (default: user@host)")
    redrive.add_argument(
        "--include-unconfirmed",
        action="store_true",
        help="also entries whose earlier redrive stopped before Kafka confirmed it (check first: they may be there)",
    )
    return top


def parse(service: str, argv: Sequence[str]) -> argparse.Namespace:
    """The `dlq` arguments; argparse's exit (code 2, usage on stderr) for anything it cannot read."""
    top = parser(service)
    args = top.parse_args(list(argv))
    if args.action == "redrive":
        chosen = sum([bool(args.ids), args.reason is not None, args.all])
        if chosen != 1:
            top.error("redrive takes exactly one of: IDs, --reason TEXT, --all")
        if args.reason is not None and not args.reason.strip():
            top.error("--reason needs some text to look for")
    return args


def dlq_command(service: str, settings: ServiceSettings, argv: Sequence[str]) -> int:
    """Entry point from shared/cli.py: parses, runs, turns a DlqError into its message and exit code 1."""
    args = parse(service, argv)
    return asyncio.run(run(service, settings, args))


async def run(service: str, settings: ServiceSettings, args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        if args.action == "list":
            await list_entries(service, settings, args.reason, out)
        elif args.action == "show":
            await show_entries(service, settings, args.ids, out)
        else:
            await redrive(
                service,
                settings,
                ids=args.ids,
                reason=args.reason,
                everything=args.all,
                dry_run=args.dry_run,
                by=args.by or operator(),
                include_unconfirmed=args.include_unconfirmed,
                out=out,
            )
    except DlqError as exc:
        print(f"{service} dlq: {exc}", file=sys.stderr)
        return 1
    return 0


def operator() -> str:
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no user name in a bare container
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


# --- the three actions ------------------------------------------------------------------------


async def list_entries(service: str, settings: ServiceSettings, reason: str | None, out: TextIO) -> None:
    topic = settings.topics.dlq(service)
    entries = await read_dead_letters(settings.kafka_bootstrap_servers, topic)
    if reason is not None:
        entries = by_reason(entries, reason)
    try:
        marks = await read_marks(settings, topic)
    except DlqError as exc:
        print(f"{service} dlq: redrive status unknown: {exc}", file=sys.stderr)
        marks = {}
    for line in format_list(topic, entries, marks):
        print(line, file=out)


async def show_entries(service: str, settings: ServiceSettings, ids: Sequence[str], out: TextIO) -> None:
    topic = settings.topics.dlq(service)
    entries = select(await read_dead_letters(settings.kafka_bootstrap_servers, topic), topic, ids=ids)
    try:
        marks = await read_marks(settings, topic)
    except DlqError as exc:
        print(f"{service} dlq: redrive status unknown: {exc}", file=sys.stderr)
        marks = {}
    print("\n\n".join(format_entry(e, marks.get((e.partition, e.offset))) for e in entries), file=out)


async def redrive(
    service: str,
    settings: ServiceSettings,
    *,
    ids: Sequence[str] = (),
    reason: str | None = None,
    everything: bool = False,
    dry_run: bool = False,
    by: str,
    include_unconfirmed: bool = False,
    out: TextIO,
    progress_every: float = 2.0,
) -> RedriveResult:
    """Publishes the chosen entries not yet redriven to their original topics; records each, once."""
    topic = settings.topics.dlq(service)
    entries = select(
        await read_dead_letters(settings.kafka_bootstrap_servers, topic),
        topic,
        ids=ids,
        reason=reason,
        everything=everything,
    )
    result = RedriveResult(chosen=len(entries))
    pool = await _pool(settings, service)
    try:
        async with pool.acquire() as conn:
            marks = await _marks(conn, topic)
        todo: list[tuple[DeadLetter, Mark | None]] = []
        for entry in entries:
            mark = marks.get((entry.partition, entry.offset))
            if not entry.original_topic:
                result.unusable.append(entry)
            elif mark is not None and (mark.confirmed or not include_unconfirmed):
                (result.already if mark.confirmed else result.unconfirmed).append((entry, mark))
            else:
                todo.append((entry, mark))
        if dry_run:
            for entry, _ in todo:
                print(f"would redrive {_one_line(entry)}", file=out)
            result.would = len(todo)
        elif todo:
            await _publish(settings, pool, topic, todo, by, result, out, progress_every)
    finally:
        await pool.close()
    for line in result.summary(topic, dry_run=dry_run):
        print(line, file=out)
    return result


@dataclass
class RedriveResult:
    chosen: int
    sent: int = 0
    would: int = 0
    taken: int = 0  # claimed by another run between our read and our claim
    already: list[tuple[DeadLetter, Mark]] = field(default_factory=list)
    unconfirmed: list[tuple[DeadLetter, Mark]] = field(default_factory=list)
    unusable: list[DeadLetter] = field(default_factory=list)

    def summary(self, topic: str, *, dry_run: bool) -> list[str]:
        lines = []
        if dry_run:
            lines.append(f"dry run: would redrive {self.would} of {self.chosen} chosen entries of {topic}")
        else:
            lines.append(f"redriven {self.sent} of {self.chosen} chosen entries of {topic}")
        if self.already:
            lines.append(f"skipped {len(self.already)} already redriven (a DLQ entry is published once):")
            lines += [f"  {e.position} {m.describe()}" for e, m in self.already[:20]]
            if len(self.already) > 20:
                lines.append(f"  ... and {len(self.already) - 20} more (`dlq list` shows them)")
        if self.unconfirmed:
            lines.append(
                f"skipped {len(self.unconfirmed)} unconfirmed: an earlier redrive stopped between publishing and"
                " recording. Look for their event ids on the original topic; if they are not there, run again with"
                " --include-unconfirmed:"
            )
            lines += [f"  {e.position} event {e.event_id or '-'} {m.describe()}" for e, m in self.unconfirmed]
        if self.taken:
            lines.append(f"skipped {self.taken} that another redrive claimed while this one ran")
        if self.unusable:
            lines.append(
                f"skipped {len(self.unusable)} without a dlq.original.topic header (not written by a"
                f" ReliableConsumer): {', '.join(e.position for e in self.unusable)}"
            )
        return lines


async def _publish(
    settings: ServiceSettings,
    pool: asyncpg.Pool,
    topic: str,
    todo: list[tuple[DeadLetter, Mark | None]],
    by: str,
    result: RedriveResult,
    out: TextIO,
    progress_every: float,
) -> None:
    """Per batch: claim (committed), publish and wait for Kafka's acks=all, record as redriven."""
    producer = EventProducer(
        settings.kafka_bootstrap_servers, client_id="mvsj-dlq-redrive", send_timeout=settings.kafka_send_timeout_seconds
    )
    started = last = time.monotonic()
    try:
        for start in range(0, len(todo), BATCH):
            batch = todo[start : start + BATCH]
            async with pool.acquire() as conn:
                claimed = await _claim(conn, topic, batch, by)
            result.taken += len(batch) - len(claimed)
            if not claimed:
                continue
            try:
                await producer.send_batch([redrive_message(e) for e in claimed])
            except PublishError as exc:
                async with pool.acquire() as conn:
                    await _release(conn, topic, claimed)
                raise DlqError(
                    f"Kafka did not confirm the redrive ({exc}); {result.sent} entries were redriven before this,"
                    " the rest are not. Check Kafka (`make status`, KAFKA_BOOTSTRAP_SERVERS) and run the same"
                    " command again: what was redriven is skipped"
                ) from exc
            try:
                async with pool.acquire() as conn:
                    await _confirm(conn, topic, claimed)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                positions = ", ".join(e.position for e in claimed)
                raise DlqError(
                    f"Kafka confirmed {positions}, but recording that failed ({type(exc).__name__}): they are"
                    " listed as unconfirmed and did arrive, so do not use --include-unconfirmed for them."
                    " Check Postgres (`make status`), then run the same command again for the rest"
                ) from exc
            result.sent += len(claimed)
            if len(todo) <= ENTRY_LINES:
                for entry in claimed:
                    print(f"redriven {_one_line(entry)}", file=out)
            now = time.monotonic()
            if len(todo) > ENTRY_LINES and (now - last >= progress_every or start + BATCH >= len(todo)):
                last = now
                rate = result.sent / max(now - started, 1e-9)
                print(f"redriven {result.sent:,} of {len(todo):,} ({rate:,.0f}/s)", file=sys.stderr, flush=True)
    finally:
        await producer.stop()


# --- choosing entries -------------------------------------------------------------------------


def by_reason(entries: Sequence[DeadLetter], text: str) -> list[DeadLetter]:
    needle = text.casefold()
    return [e for e in entries if needle in e.reason.casefold()]


def select(
    entries: Sequence[DeadLetter],
    topic: str,
    *,
    ids: Sequence[str] = (),
    reason: str | None = None,
    everything: bool = False,
) -> list[DeadLetter]:
    """The entries an operator chose; an id that matches nothing stops the whole command (nothing is sent)."""
    if everything:
        return list(entries)
    if reason is not None:
        found = by_reason(entries, reason)
        if not found:
            raise DlqError(f"no entry of {topic} has a reason containing {reason!r}; `dlq list` shows the reasons")
        return found
    chosen: list[DeadLetter] = []
    unknown = []
    for ident in ids:
        matches = [e for e in entries if ident in (e.position, e.event_id)]
        if not matches:
            unknown.append(ident)
        chosen += [m for m in matches if m not in chosen]
    if unknown:
        raise DlqError(
            f"no entry {', '.join(unknown)} in {topic} ({len(entries)} entries): give a DLQ position"
            " (partition:offset) or an event id as `dlq list` shows them; nothing was done"
        )
    return chosen


# --- what the operator reads ------------------------------------------------------------------


def format_list(topic: str, entries: Sequence[DeadLetter], marks: Marks) -> list[str]:
    """One line per entry under a header; the reason cut to one line of REASON_WIDTH characters."""
    if not entries:
        return [f"{topic}: no entries"]
    rows = [("ID", "DEAD-LETTERED", "ORIGINAL (topic partition@offset)", "EVENT TYPE", "EVENT ID", "TRIES", "REDRIVEN")]
    reasons = ["REASON"]
    for e in entries:
        mark = marks.get((e.partition, e.offset))
        status = "-" if mark is None else (_when(mark.redriven_at) if mark.redriven_at else "unconfirmed")
        rows.append(
            (
                e.position,
                e.failed_at or "-",
                f"{e.original_topic or '?'} {e.original_position}",
                _short_type(e.event_type) or "-",
                e.event_id or "-",
                e.attempts or "-",
                status,
            )
        )
        reasons.append(_cut(e.reason or "-", REASON_WIDTH))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + "  " + why
        for row, why in zip(rows, reasons, strict=True)
    ]
    return [f"{topic}: {_count(len(entries), 'entry', 'entries')}", *(line.rstrip() for line in lines)]


def format_entry(entry: DeadLetter, mark: Mark | None) -> str:
    lines = [
        f"{entry.dlq_topic} {entry.position}",
        f"  dead-lettered  {entry.failed_at or '?'} by {entry.header(SERVICE) or '?'}"
        f"/{entry.header(CONSUMER) or '?'} after {entry.attempts or '?'} attempt(s)",
        f"  original       {entry.original_topic or '?'} partition {entry.header(ORIGINAL_PARTITION) or '?'}"
        f" offset {entry.header(ORIGINAL_OFFSET) or '?'}",
        f"  event          {entry.event_type or '?'} {entry.event_id or '?'}",
        f"  key            {_text(entry.key)}",
        f"  redriven       {mark.describe() if mark else 'no'}",
        f"  reason         {entry.reason or '?'} ({entry.header(ERROR_CLASS) or '?'})",
        "  headers it had on its original topic:",
        *(f"    {k}: {_text(v)}" for k, v in entry.original_headers),
        "  headers the DLQ added:",
        *(f"    {k}: {_text(v)}" for k, v in entry.headers if k.startswith(HEADER_PREFIX)),
    ]
    envelope = entry.envelope
    if envelope is not None:
        lines.append(f"  value: the event envelope as stored on the bus ({len(entry.value)} bytes, JSON):")
        lines += ["    " + line for line in json.dumps(envelope, indent=2, ensure_ascii=False).splitlines()]
    else:
        lines.append(f"  value: {len(entry.value)} bytes, not a JSON object; as text (first 2000 characters):")
        lines.append("    " + _cut(entry.value.decode(errors="replace"), 2000))
    return "\n".join(lines)


def _one_line(entry: DeadLetter) -> str:
    return (
        f"{entry.position} -> {entry.original_topic} (was {entry.original_position})"
        f" {entry.event_type or '?'} {entry.event_id or '?'}"
    )


def _count(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


def _short_type(event_type: str) -> str:
    return event_type.removeprefix("dk.politi.")


def _cut(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _text(value: bytes | None) -> str:
    return "(none)" if value is None else value.decode(errors="replace")


def _when(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


# --- Kafka: reading a DLQ topic ----------------------------------------------------------------


async def read_dead_letters(bootstrap: str, topic: str, *, timeout: float = 15.0) -> list[DeadLetter]:
    """Every entry of `topic` from its first retained offset to its end as of now, in partition order."""
    if not await kafka_reachable(bootstrap, timeout=5.0):
        raise DlqError(
            f"Kafka does not answer at {bootstrap}: check it (`make status`) and KAFKA_BOOTSTRAP_SERVERS;"
            " nothing was read or changed"
        )
    try:
        return await _read(bootstrap, topic, timeout)
    except KafkaError as exc:
        raise DlqError(
            f"Kafka failed while reading {topic} ({type(exc).__name__}: {exc}): check it (`make status`) and"
            " try again; nothing was changed"
        ) from exc


async def _read(bootstrap: str, topic: str, timeout: float) -> list[DeadLetter]:
    partitions = await _partitions(bootstrap, topic, timeout)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers(bootstrap),
        group_id=None,  # no group: reading a DLQ commits nothing anywhere
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=int(timeout * 1000),
    )
    await within(consumer.start(), timeout)
    entries: list[DeadLetter] = []
    try:
        consumer.assign(partitions)
        await within(consumer.seek_to_beginning(*partitions), timeout)
        ends: dict[TopicPartition, int] = await within(consumer.end_offsets(partitions), timeout)
        pending = {tp: end for tp, end in ends.items() if await consumer.position(tp) < end}
        deadline = time.monotonic() + max(timeout, 60.0)
        while pending:
            if time.monotonic() > deadline:
                raise DlqError(f"reading {topic} took too long; is Kafka overloaded? Try again")
            batch = await consumer.getmany(*pending, timeout_ms=500, max_records=1000)
            for tp, records in batch.items():
                entries += [DeadLetter.from_record(r) for r in records if r.offset < pending.get(tp, -1)]
            for tp in list(pending):
                if await consumer.position(tp) >= pending[tp]:
                    del pending[tp]
    finally:
        await within(consumer.stop(), timeout)
    return sorted(entries, key=lambda e: (e.partition, e.offset))


async def _partitions(bootstrap: str, topic: str, timeout: float) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    await within(admin.start(), timeout)
    try:
        described: list[dict[str, Any]] = await within(admin.describe_topics([topic]), timeout)
    finally:
        await within(admin.close(), timeout)
    for found in described:
        if found.get("error_code", 0) == 0 and found.get("partitions"):
            return sorted(TopicPartition(topic, p["partition"]) for p in found["partitions"])
    raise DlqError(
        f"topic {topic} does not exist on this broker (the service creates it when it starts): check"
        " KAFKA_TOPIC_PREFIX and KAFKA_BOOTSTRAP_SERVERS against the service's; nothing was changed"
    )


# --- Postgres: the ledger of redriven entries ---------------------------------------------------


async def _pool(settings: ServiceSettings, service: str) -> asyncpg.Pool:
    try:
        pool = await create_pool(
            settings.database_url, settings.db_schema, application=f"mvsj-{service}-dlq", min_size=1, max_size=2
        )
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise DlqError(
            f"Postgres does not answer ({type(exc).__name__}): check it (`make status`) and DATABASE_URL;"
            " nothing was published"
        ) from exc
    try:
        present = await pool.fetchval("SELECT to_regclass('dlq_redriven') IS NOT NULL")
    except BaseException:
        await pool.close()
        raise
    if not present:
        await pool.close()
        raise DlqError(
            f"schema '{settings.db_schema}' has no dlq_redriven table, where redrives are recorded:"
            f" run `python -m services.{service} migrate` first; nothing was published"
        )
    return pool


async def read_marks(settings: ServiceSettings, topic: str) -> Marks:
    """The ledger's rows for `topic`, for `list` and `show` (which still work without it)."""
    try:
        conn = await asyncpg.connect(settings.database_url, timeout=5.0)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise DlqError(f"Postgres does not answer ({type(exc).__name__})") from exc
    try:
        table = f"{settings.db_schema}.dlq_redriven"
        if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", table):
            raise DlqError(f"schema '{settings.db_schema}' has no dlq_redriven table yet (run migrate)")
        await conn.execute(f"SET search_path TO {quote_ident(settings.db_schema)}")
        return await _marks(conn, topic)
    finally:
        await conn.close()


async def _marks(conn: Conn, topic: str) -> Marks:
    rows = await conn.fetch(
        "SELECT dlq_partition, dlq_offset, redriven_by, claimed_at, redriven_at FROM dlq_redriven WHERE dlq_topic = $1",
        topic,
    )
    return {
        (r["dlq_partition"], r["dlq_offset"]): Mark(r["redriven_by"], r["claimed_at"], r["redriven_at"]) for r in rows
    }


async def _claim(conn: Conn, topic: str, batch: Sequence[tuple[DeadLetter, Mark | None]], by: str) -> list[DeadLetter]:
    """Claims the entries, committed before anything is published; returns those this run got.

    A new entry is claimed by inserting its row: a concurrent run's insert waits for this one and
    then finds the row. An unconfirmed entry (given with --include-unconfirmed) is claimed again
    only if its row is still the one this run read, so two runs cannot both take it over.
    """
    new = [e for e, mark in batch if mark is None]
    again = [(e, mark) for e, mark in batch if mark is not None]
    got: set[tuple[int, int]] = set()
    async with conn.transaction():
        if new:
            rows = await conn.fetch(
                """
                INSERT INTO dlq_redriven (dlq_topic, dlq_partition, dlq_offset, original_topic, event_id, redriven_by)
                SELECT $1, p, o, t, nullif(e, ''), $6
                  FROM unnest($2::int[], $3::bigint[], $4::text[], $5::text[]) AS chosen(p, o, t, e)
                ON CONFLICT (dlq_topic, dlq_partition, dlq_offset) DO NOTHING
                RETURNING dlq_partition, dlq_offset
                """,
                topic,
                [e.partition for e in new],
                [e.offset for e in new],
                [e.original_topic for e in new],
                [e.event_id for e in new],
                by,
            )
            got |= {(r["dlq_partition"], r["dlq_offset"]) for r in rows}
        if again:
            rows = await conn.fetch(
                """
                UPDATE dlq_redriven SET claimed_at = now(), redriven_by = $5
                  FROM unnest($2::int[], $3::bigint[], $4::timestamptz[]) AS seen(p, o, claimed)
                 WHERE dlq_topic = $1 AND dlq_partition = seen.p AND dlq_offset = seen.o
                   AND redriven_at IS NULL AND claimed_at = seen.claimed
                RETURNING dlq_partition, dlq_offset
                """,
                topic,
                [e.partition for e, _ in again],
                [e.offset for e, _ in again],
                [m.claimed_at for _, m in again],
                by,
            )
            got |= {(r["dlq_partition"], r["dlq_offset"]) for r in rows}
    return [e for e, _ in batch if (e.partition, e.offset) in got]


async def _confirm(conn: Conn, topic: str, entries: Sequence[DeadLetter]) -> None:
    await conn.execute(
        "UPDATE dlq_redriven SET redriven_at = now() FROM unnest($2::int[], $3::bigint[]) AS done(p, o)"
        " WHERE dlq_topic = $1 AND dlq_partition = done.p AND dlq_offset = done.o",
        topic,
        [e.partition for e in entries],
        [e.offset for e in entries],
    )


async def _release(conn: Conn, topic: str, entries: Sequence[DeadLetter]) -> None:
    await conn.execute(
        "DELETE FROM dlq_redriven USING unnest($2::int[], $3::bigint[]) AS failed(p, o)"
        " WHERE dlq_topic = $1 AND dlq_partition = failed.p AND dlq_offset = failed.o AND redriven_at IS NULL",
        topic,
        [e.partition for e in entries],
        [e.offset for e in entries],
    )
