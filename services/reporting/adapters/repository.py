"""The read model in SQL: merging upserts of facts, and the tallies KPIs are computed from.

`PostgresReadModel` is the use cases' `ReadModel` (handlers.py); its writes and its tallies are proven
equal to the in-memory fake of tests/unit/reporting/fakes.py by one contract suite (tests/support/contracts).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

import asyncpg
import numpy as np

from services.reporting.domain.facts import (
    ActionFact,
    AlertAckFact,
    AlertFact,
    AlertStageFact,
    CaseFact,
    DeadlineFact,
    FactBatch,
    RuleFact,
)
from services.reporting.domain.kpis import (
    AlertTally,
    CaseTally,
    DeadlineTally,
    DurationSample,
    PeriodFacts,
    StockTally,
)
from services.reporting.domain.periods import LOCAL
from shared.db import Conn, quote_ident

TABLES = ("cases", "case_actions", "deadlines", "alerts", "alert_stages", "alert_acks", "rules_seen", "topic_freshness")

# Each upsert merges as the matching dataclass in domain/facts.py does: LEAST/GREATEST ignore NULLs.
_CASES = """
INSERT INTO cases (case_id, kommune, kind, category, focus_area, received_at, first_on_scene_at)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[])
ON CONFLICT (case_id) DO UPDATE SET
    kind = COALESCE(cases.kind, EXCLUDED.kind),
    category = COALESCE(cases.category, EXCLUDED.category),
    focus_area = COALESCE(cases.focus_area, EXCLUDED.focus_area),
    received_at = COALESCE(cases.received_at, EXCLUDED.received_at),
    first_on_scene_at = LEAST(cases.first_on_scene_at, EXCLUDED.first_on_scene_at)
"""

_ACTIONS = """
INSERT INTO case_actions (action_id, case_id, kommune, action, category, focus_area, occurred_at)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[])
ON CONFLICT (action_id) DO NOTHING
"""

_DEADLINES = """
INSERT INTO deadlines (deadline_id, case_id, rule_id, title, basis, window_set_by, kommune, category, focus_area,
                       started_at, due_at, due_as_of, window_seconds, met_at, met_late, met_action,
                       response_seconds, breached_at, cancelled_at, outcome, rescheduled, breach_withdrawn)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                     $8::text[], $9::text[], $10::timestamptz[], $11::timestamptz[], $12::timestamptz[],
                     $13::float8[], $14::timestamptz[], $15::bool[], $16::text[], $17::float8[],
                     $18::timestamptz[], $19::timestamptz[], $20::text[], $21::bool[], $22::bool[])
ON CONFLICT (deadline_id) DO UPDATE SET
    due_at = CASE WHEN EXCLUDED.due_as_of > deadlines.due_as_of THEN EXCLUDED.due_at ELSE deadlines.due_at END,
    due_as_of = GREATEST(deadlines.due_as_of, EXCLUDED.due_as_of),
    window_seconds = COALESCE(deadlines.window_seconds, EXCLUDED.window_seconds),
    met_late = CASE WHEN deadlines.met_at IS NULL THEN EXCLUDED.met_late ELSE deadlines.met_late END,
    met_action = CASE WHEN deadlines.met_at IS NULL THEN EXCLUDED.met_action ELSE deadlines.met_action END,
    response_seconds = CASE WHEN deadlines.met_at IS NULL THEN EXCLUDED.response_seconds
                            ELSE deadlines.response_seconds END,
    met_at = COALESCE(deadlines.met_at, EXCLUDED.met_at),
    breached_at = CASE WHEN deadlines.breach_withdrawn OR EXCLUDED.breach_withdrawn THEN NULL
                       ELSE LEAST(deadlines.breached_at, EXCLUDED.breached_at) END,
    breach_withdrawn = deadlines.breach_withdrawn OR EXCLUDED.breach_withdrawn,
    outcome = CASE WHEN deadlines.cancelled_at IS NULL THEN EXCLUDED.outcome ELSE deadlines.outcome END,
    cancelled_at = COALESCE(deadlines.cancelled_at, EXCLUDED.cancelled_at),
    rescheduled = deadlines.rescheduled OR EXCLUDED.rescheduled
"""

# Severity and reason follow the latest word on them (severity_as_of; a tie goes to the greater pair),
# as AlertFact.merge does.
_ALERTS = """
INSERT INTO alerts (alert_id, case_id, kommune, deadline_id, rule_id, reason, severity, severity_as_of, raised_at,
                    first_delivered_at, escalation_level, resolved_at)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::text[], $6::text[], $7::text[],
                     $8::timestamptz[], $9::timestamptz[], $10::timestamptz[], $11::int[], $12::timestamptz[])
ON CONFLICT (alert_id) DO UPDATE SET
    deadline_id = COALESCE(alerts.deadline_id, EXCLUDED.deadline_id),
    rule_id = COALESCE(alerts.rule_id, EXCLUDED.rule_id),
    reason = CASE WHEN _newer THEN EXCLUDED.reason ELSE alerts.reason END,
    severity = CASE WHEN _newer THEN EXCLUDED.severity ELSE alerts.severity END,
    severity_as_of = CASE WHEN _newer THEN EXCLUDED.severity_as_of ELSE alerts.severity_as_of END,
    raised_at = LEAST(alerts.raised_at, EXCLUDED.raised_at),
    first_delivered_at = LEAST(alerts.first_delivered_at, EXCLUDED.first_delivered_at),
    escalation_level = GREATEST(alerts.escalation_level, EXCLUDED.escalation_level),
    resolved_at = LEAST(alerts.resolved_at, EXCLUDED.resolved_at)
""".replace(
    "_newer",
    "(EXCLUDED.severity_as_of IS NOT NULL AND EXCLUDED.severity IS NOT NULL AND (alerts.severity_as_of IS NULL"
    " OR alerts.severity IS NULL OR (EXCLUDED.severity_as_of, EXCLUDED.severity, coalesce(EXCLUDED.reason, ''))"
    " > (alerts.severity_as_of, alerts.severity, coalesce(alerts.reason, ''))))",
)

_ALERT_STAGES = """
INSERT INTO alert_stages (alert_id, started_at)
SELECT * FROM unnest($1::uuid[], $2::timestamptz[])
ON CONFLICT DO NOTHING
"""

_ALERT_ACKS = """
INSERT INTO alert_acks (alert_id, acknowledged_at)
SELECT * FROM unnest($1::uuid[], $2::timestamptz[])
ON CONFLICT DO NOTHING
"""

# focus_area and category of an alert are its case's: filled by whichever of the two arrives second.
_ALERT_FOCUS_FROM_CASES = """
UPDATE alerts SET focus_area = c.focus_area, category = c.category
FROM cases c
WHERE alerts.alert_id = ANY($1::uuid[]) AND alerts.focus_area IS NULL
  AND c.case_id = alerts.case_id AND c.focus_area IS NOT NULL
"""

_ALERT_FOCUS_FOR_CASES = """
UPDATE alerts SET focus_area = u.focus_area, category = u.category
FROM unnest($1::uuid[], $2::text[], $3::text[]) AS u (case_id, focus_area, category)
WHERE alerts.focus_area IS NULL AND alerts.case_id = u.case_id
"""

_RULES = """
INSERT INTO rules_seen (rule_id, title, basis, window_set_by, window_seconds, seen_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::float8[], $6::timestamptz[])
ON CONFLICT (rule_id) DO UPDATE SET
    title = CASE WHEN EXCLUDED.seen_at > rules_seen.seen_at THEN EXCLUDED.title ELSE rules_seen.title END,
    basis = CASE WHEN EXCLUDED.seen_at > rules_seen.seen_at THEN EXCLUDED.basis ELSE rules_seen.basis END,
    window_set_by = CASE WHEN EXCLUDED.seen_at > rules_seen.seen_at THEN EXCLUDED.window_set_by
                         ELSE rules_seen.window_set_by END,
    window_seconds = CASE WHEN EXCLUDED.seen_at > rules_seen.seen_at THEN EXCLUDED.window_seconds
                          ELSE rules_seen.window_seconds END,
    seen_at = GREATEST(rules_seen.seen_at, EXCLUDED.seen_at)
"""

_FRESHNESS = """
INSERT INTO topic_freshness (topic, last_event_at)
SELECT * FROM unnest($1::text[], $2::timestamptz[])
ON CONFLICT (topic) DO UPDATE SET last_event_at = GREATEST(topic_freshness.last_event_at, EXCLUDED.last_event_at)
"""


def _columns(rows: list[Any], names: tuple[str, ...]) -> list[list[Any]]:
    return [[getattr(row, name) for row in rows] for name in names]


# ---- reading ------------------------------------------------------------------------------------

REPORT_WORK_MEM = "64MB"

# The deadline tallies' columns, as DeadlineTally names them; `{month}` is how the rows are put in months.
# The outcome columns (met_on_time, met_late, missed, closed_before_met, pending) partition `started`:
# see the trigger function count_deadlines.
_DEADLINE_TALLY = (
    "SELECT rule_id, title, basis, window_set_by, max(window_seconds) AS window_seconds, {month}"
    " kommune, category, focus_area, sum(n) AS started,"
    " coalesce(sum(n) FILTER (WHERE met_on_time), 0) AS met_on_time,"
    " coalesce(sum(n) FILTER (WHERE met_late), 0) AS met_late,"
    " coalesce(sum(n) FILTER (WHERE missed), 0) AS missed,"
    " coalesce(sum(n) FILTER (WHERE closed_before_met), 0) AS closed_before_met,"
    " coalesce(sum(n) FILTER (WHERE rescheduled), 0) AS citizen_requested_later,"
    " coalesce(sum(n) FILTER (WHERE pending), 0) AS pending"
)

# Runs one query and returns its rows; see `serial` and `snapshot`.
Fetch = Callable[..., Awaitable[list[asyncpg.Record]]]


def serial(conn: Conn) -> Fetch:
    """Queries on one connection, one after another (asyncpg runs one statement at a time)."""
    lock = asyncio.Lock()

    async def fetch(sql: str, *args: Any) -> list[asyncpg.Record]:
        async with lock:
            rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
            return rows

    return fetch


@contextlib.asynccontextmanager
async def snapshot(pool: asyncpg.Pool, workers: int = 3) -> AsyncIterator[Fetch]:
    """Queries spread over `workers` connections that all read one snapshot (pg_export_snapshot), so a
    report's figures agree with each other while its queries use more than one core."""
    workers = max(1, min(workers, pool.get_max_size() - 1))  # leave a connection to the consumer
    async with contextlib.AsyncExitStack() as stack:
        lead = await stack.enter_async_context(pool.acquire())
        await stack.enter_async_context(lead.transaction(isolation="repeatable_read", readonly=True))
        exported = await lead.fetchval("SELECT pg_export_snapshot()")
        # Grouping by many text columns makes the planner expect a huge number of groups; with the
        # default 4 MB it sorts on disk instead of hashing a few hundred groups in memory.
        await lead.execute(f"SET LOCAL work_mem = '{REPORT_WORK_MEM}'")
        idle: asyncio.Queue[Conn] = asyncio.Queue()
        idle.put_nowait(lead)
        for _ in range(workers - 1):
            # Extra connections are a bonus: waiting for them while other reports hold theirs could
            # deadlock the pool, so a report takes only those free at once.
            try:
                conn = await stack.enter_async_context(pool.acquire(timeout=0.05))
            except TimeoutError:
                break
            await stack.enter_async_context(conn.transaction(isolation="repeatable_read", readonly=True))
            await conn.execute(f"SET TRANSACTION SNAPSHOT {quote_literal(exported)}")
            await conn.execute(f"SET LOCAL work_mem = '{REPORT_WORK_MEM}'")
            idle.put_nowait(conn)

        async def fetch(sql: str, *args: Any) -> list[asyncpg.Record]:
            conn = await idle.get()
            try:
                rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
                return rows
            finally:
                idle.put_nowait(conn)

        yield fetch


def quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _scope(column: str, kommune: str | None, args: list[Any]) -> str:
    if kommune is None:
        return ""
    args.append(kommune)
    return f" AND {column} = ${len(args)}"


class PostgresReadModel:
    """The read model of handlers.py on one connection (writes), read through `fetch` (one connection after
    another, or a report's snapshot spread over several)."""

    def __init__(self, conn: Conn | None, fetch: Fetch | None = None) -> None:
        self._conn_or_none = conn
        self._fetch = fetch or serial(_required(conn))

    @property
    def _conn(self) -> Conn:
        return _required(self._conn_or_none)

    async def save(self, batch: FactBatch) -> None:
        """One statement per table for the whole batch; rows were folded by identity in the batch."""
        writes: list[tuple[str, list[Any], tuple[str, ...]]] = [
            (_CASES, batch.of_type(CaseFact), CaseFact.__slots__),
            (_ACTIONS, batch.of_type(ActionFact), ActionFact.__slots__),
            (_DEADLINES, batch.of_type(DeadlineFact), DeadlineFact.__slots__),
            (_ALERTS, batch.of_type(AlertFact), AlertFact.__slots__),
            (_ALERT_STAGES, batch.of_type(AlertStageFact), AlertStageFact.__slots__),
            (_ALERT_ACKS, batch.of_type(AlertAckFact), AlertAckFact.__slots__),
            (_RULES, batch.of_type(RuleFact), RuleFact.__slots__),
        ]
        for sql, rows, names in writes:
            if rows:
                await self._conn.execute(sql, *_columns(rows, names))
            if sql is _CASES:
                described = [c for c in rows if c.focus_area is not None]
                if described:
                    await self._conn.execute(
                        _ALERT_FOCUS_FOR_CASES,
                        [c.case_id for c in described],
                        [c.focus_area for c in described],
                        [c.category for c in described],
                    )
            if sql is _ALERTS and rows:
                await self._conn.execute(_ALERT_FOCUS_FROM_CASES, [a.alert_id for a in rows])
        if batch.last_event_at:
            topics = sorted(batch.last_event_at)
            await self._conn.execute(_FRESHNESS, topics, [batch.last_event_at[t] for t in topics])

    async def period_facts(
        self,
        start: datetime,
        end: datetime,
        kommune: str | None,
        window: Sequence[tuple[str, datetime]] = (),
    ) -> PeriodFacts:
        """Tallies for [start, end) in one kommune or the whole district (kommune None); the queries run
        concurrently when `fetch` has several connections on one snapshot.

        `window`: consecutive months (name, start) ending at `end` and covering the period, for the
        trend: cases and deadlines are then counted per month over the whole window in the same scan
        (bucketed by comparing instants, far cheaper than converting every row to local time), and
        the period's own tallies are the months inside it.
        """
        fetch = self._fetch
        # The SQL below is composed only of this function's fixed fragments (`_scope`, `bucket`); every value
        # travels as a $n parameter, hence the S608 exemptions.
        args: list[Any] = [window[0][1] if window else start, end]
        k = _scope("kommune", kommune, args)
        bucket = ""
        if window:
            args.append([month_start for _, month_start in window])
            bucket = f"width_bucket({{column}}, ${len(args)}::timestamptz[])"
        # Counts come from the month counters (migrations/0004): every period and the trend's window are
        # whole local months, so a month's counter row is in or out as its facts would be.
        case_rows_q = fetch(
            "SELECT kind, kommune, category, focus_area, sum(n) AS n"  # noqa: S608
            + (f", {bucket.format(column='month')} AS bucket" if window else "")
            + f" FROM case_counts WHERE month >= $1 AND month < $2 AND n <> 0{k}"
            " GROUP BY kind, kommune, category, focus_area" + (", bucket" if window else ""),
            *args,
        )
        deadline_rows_q = fetch(
            _DEADLINE_TALLY.format(month=f"{bucket.format(column='started_month')} AS bucket," if window else "")
            + f" FROM deadline_counts WHERE started_month >= $1 AND started_month < $2 AND n <> 0{k}"
            " GROUP BY rule_id, title, basis, window_set_by, kommune, category, focus_area"
            + (", bucket" if window else ""),
            *args,
        )
        # The other tallies are of the period itself.
        args = [start, end]
        k = _scope("kommune", kommune, args)
        # $2 is a month's start: an instant is before it exactly when its month is.
        stock_rows_q = fetch(
            "SELECT rule_id, basis, kommune, focus_area,"  # noqa: S608
            " coalesce(sum(n) FILTER (WHERE (met_month IS NULL OR met_month >= $2)"
            "   AND (cancelled_month IS NULL OR cancelled_month >= $2)), 0) AS open_at_end,"
            " coalesce(sum(n) FILTER (WHERE breached_month >= $1 AND breached_month < $2), 0) AS breached_in_period"
            " FROM deadline_counts WHERE started_month < $2 AND n <> 0"
            "  AND (((met_month IS NULL OR met_month >= $2) AND (cancelled_month IS NULL OR cancelled_month >= $2))"
            f"       OR (breached_month >= $1 AND breached_month < $2)){k}"
            " GROUP BY rule_id, basis, kommune, focus_area",
            *args,
        )
        response_rows_q = fetch(
            "SELECT kommune, category, focus_area,"  # noqa: S608
            " array_agg(extract(epoch FROM first_on_scene_at - received_at)::float8) AS seconds"
            " FROM cases WHERE kind = 'report' AND first_on_scene_at IS NOT NULL"
            f" AND received_at >= $1 AND received_at < $2{k} GROUP BY kommune, category, focus_area",
            *args,
        )
        # Time to acknowledge per stage: from the stage's start (the raising, or a supersede) to the first
        # acknowledgement before the next stage starts (the first stage also takes an ack stamped a little
        # before its raising). "Acknowledged" means the alert's current stage is.
        k_alert = k.replace(" kommune ", " a.kommune ")  # the same filter, on the joined alerts
        alert_rows_q = fetch(
            "WITH s AS (SELECT st.alert_id, st.started_at, a.kommune, coalesce(a.severity, 'ukendt') AS severity,"  # noqa: S608
            "   coalesce(a.category, 'ukendt') AS category,"
            " coalesce(a.focus_area, 'lokal_tilstedevaerelse') AS focus_area,"
            "   a.escalation_level, lag(st.started_at) OVER w AS previous_at, lead(st.started_at) OVER w AS next_at"
            "   FROM alert_stages st JOIN alerts a USING (alert_id)"
            f"   WHERE a.raised_at >= $1 AND a.raised_at < $2 AND a.stages > 1{k_alert}"
            "   WINDOW w AS (PARTITION BY st.alert_id ORDER BY st.started_at)),"
            # A join and a group rather than a subquery per stage: linear, and cheap enough in the
            # planner's eyes that it does not JIT-compile (which cost more than the query itself).
            " sa AS (SELECT s.kommune, s.severity, s.category, s.focus_area, s.escalation_level,"
            "   s.next_at IS NULL AS current, min(k.acknowledged_at) - s.started_at AS ack"
            "   FROM s LEFT JOIN alert_acks k ON k.alert_id = s.alert_id"
            "     AND (s.previous_at IS NULL OR k.acknowledged_at >= s.started_at)"
            "     AND (s.next_at IS NULL OR k.acknowledged_at < s.next_at)"
            "   GROUP BY s.alert_id, s.started_at, s.next_at, s.kommune, s.severity, s.category, s.focus_area,"
            "     s.escalation_level),"
            # An alert of one stage (most of them) needs neither: its ack is its first minus its raising (its
            # one stage starts at raised_at, as alert.raised states both; migrations/0005).
            " one AS (SELECT a.kommune, coalesce(a.severity, 'ukendt') AS severity,"
            "   coalesce(a.category, 'ukendt') AS category,"
            " coalesce(a.focus_area, 'lokal_tilstedevaerelse') AS focus_area,"
            "   a.escalation_level, true AS current, a.first_acknowledged_at - a.raised_at AS ack"
            f"   FROM alerts a WHERE a.raised_at >= $1 AND a.raised_at < $2 AND a.stages = 1{k_alert}),"
            " stages AS (SELECT * FROM sa UNION ALL SELECT * FROM one)"
            # One row per stage. Every alert raised has its first stage (alert.raised states both) and
            # exactly one current stage, so counting current rows counts alerts.
            " SELECT kommune, severity, category, focus_area, count(*) FILTER (WHERE current) AS raised,"
            " count(*) FILTER (WHERE current AND ack IS NOT NULL) AS acknowledged,"
            " count(*) FILTER (WHERE current AND escalation_level > 0) AS escalated,"
            " array_agg(extract(epoch FROM ack)::float8) FILTER (WHERE ack IS NOT NULL) AS ack_seconds"
            " FROM stages GROUP BY 1, 2, 3, 4",
            *args,
        )
        action_rows_q = fetch(
            f"SELECT action, sum(n) AS n FROM action_counts WHERE month >= $1 AND month < $2{k}"  # noqa: S608
            " GROUP BY action",
            *args,
        )
        case_rows, deadline_rows, stock_rows, response_rows, alert_rows, action_rows = await asyncio.gather(
            case_rows_q, deadline_rows_q, stock_rows_q, response_rows_q, alert_rows_q, action_rows_q
        )
        names = [name for name, _ in window]
        period_months = {name for name, month_start in window if month_start >= start}

        def month(row: asyncpg.Record) -> str | None:
            return names[row["bucket"] - 1] if window else None

        cases = [
            CaseTally(r["kind"], r["kommune"], r["category"], r["focus_area"], r["n"], month(r)) for r in case_rows
        ]
        deadlines = [
            DeadlineTally(**{name: v for name, v in r.items() if name != "bucket"}, month=month(r))
            for r in deadline_rows
        ]
        return PeriodFacts(
            cases=tuple(c for c in cases if not window or c.month in period_months),
            deadlines=tuple(d for d in deadlines if not window or d.month in period_months),
            trend_cases=tuple(cases) if window else (),
            trend_deadlines=tuple(deadlines) if window else (),
            stock=tuple(StockTally(**dict(r)) for r in stock_rows),
            response=tuple(
                DurationSample(r["kommune"], r["category"], r["focus_area"], np.array(r["seconds"], dtype=np.float64))
                for r in response_rows
            ),
            alerts=tuple(
                AlertTally(
                    kommune=r["kommune"],
                    severity=r["severity"],
                    category=r["category"],
                    focus_area=r["focus_area"],
                    raised=r["raised"],
                    acknowledged=r["acknowledged"],
                    escalated=r["escalated"],
                )
                for r in alert_rows
            ),
            ack=tuple(
                DurationSample(
                    r["kommune"], r["category"], r["focus_area"], np.array(r["ack_seconds"] or (), dtype=np.float64)
                )
                for r in alert_rows
            ),
            actions={r["action"]: r["n"] for r in action_rows},
        )

    async def deadline_months(self, start: datetime, end: datetime) -> tuple[DeadlineTally, ...]:
        """Deadline tallies of the whole district per local month (YYYY-MM) they started in, over [start, end)."""
        rows = await self._fetch(
            _DEADLINE_TALLY.format(month=f"to_char(started_month AT TIME ZONE '{LOCAL.key}', 'YYYY-MM') AS month,")
            + " FROM deadline_counts WHERE started_month >= $1 AND started_month < $2 AND n <> 0"
            " GROUP BY rule_id, title, basis, window_set_by, kommune, category, focus_area, started_month",
            start,
            end,
        )
        return tuple(DeadlineTally(**dict(r)) for r in rows)

    async def freshness(self) -> dict[str, datetime]:
        return {
            r["topic"]: r["last_event_at"]
            for r in await self._fetch("SELECT topic, last_event_at FROM topic_freshness")
        }

    async def rules_seen(self) -> list[dict[str, Any]]:
        rows = await self._fetch(
            "SELECT rule_id, title, basis, window_set_by, window_seconds FROM rules_seen ORDER BY basis, rule_id"
        )
        return [dict(r) for r in rows]


def _required(conn: Conn | None) -> Conn:
    if conn is None:
        raise TypeError("a report's snapshot is read-only: it has no connection to write on")
    return conn


class SnapshotUnitOfWork:
    """A report's unit of work: one read-only snapshot spread over up to three connections (`snapshot`)."""

    def __init__(self, pool: Callable[[], asyncpg.Pool]) -> None:
        self._pool = pool

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresReadModel]:
        async with snapshot(self._pool()) as fetch:
            yield PostgresReadModel(None, fetch)


async def vacuum_analyze(url: str, schema: str) -> None:
    """After a bulk load: planner statistics and the visibility map (index-only scans) for every table."""
    conn = await asyncpg.connect(url, timeout=10.0)
    try:
        for table in TABLES:
            await conn.execute(f"VACUUM (ANALYZE) {quote_ident(schema)}.{quote_ident(table)}")
    finally:
        await conn.close()


async def swap_schema(url: str, *, live: str, fresh: str, carry: Sequence[str] = ()) -> None:
    """Puts `fresh` in place of `live` in one transaction; the old schema is dropped.

    Services find their tables by schema name (search_path), so the running service reads the new
    tables from its next statement on. The rows of the `carry` tables (records that are not derived
    from the topics: the council e-mails sent) are copied from `live` into `fresh` first, with their
    writers held off until the swap commits, so nothing written meanwhile is lost.
    """
    conn = await asyncpg.connect(url, timeout=10.0)
    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"migrate:{live}")
            old = f"{live}_old"[:63]
            await conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(old)} CASCADE")
            exists = await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", live)
            if exists:
                await _carry_rows(conn, live, fresh, carry)
                await conn.execute(f"ALTER SCHEMA {quote_ident(live)} RENAME TO {quote_ident(old)}")
            await conn.execute(f"ALTER SCHEMA {quote_ident(fresh)} RENAME TO {quote_ident(live)}")
            if exists:
                await conn.execute(f"DROP SCHEMA {quote_ident(old)} CASCADE")
    finally:
        await conn.close()


async def _carry_rows(conn: asyncpg.Connection, live: str, fresh: str, tables: Sequence[str]) -> None:
    """Copies each table's rows from `live` into the same (empty) table of `fresh`, parents first."""
    for table in tables:
        source, target = f"{quote_ident(live)}.{quote_ident(table)}", f"{quote_ident(fresh)}.{quote_ident(table)}"
        if await conn.fetchval("SELECT to_regclass($1)", source) is None:
            continue
        # EXCLUSIVE: readers go on, writers wait until the swap commits (and then write to the new table).
        await conn.execute(f"LOCK TABLE {source} IN EXCLUSIVE MODE")
        columns = ", ".join(
            quote_ident(r["attname"])
            for r in await conn.fetch(
                "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped"
                " ORDER BY attnum",
                target,
            )
        )
        # Identifiers only, each quoted (quote_ident): names from the catalogue and from our own code.
        await conn.execute(f"INSERT INTO {target} ({columns}) SELECT {columns} FROM {source}")  # noqa: S608
