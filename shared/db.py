"""Postgres plumbing: a pool bound to one service's schema, and ordered SQL migrations per schema."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any, Final

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from shared.clock import Clock

log = logging.getLogger(__name__)

# What handlers receive: a plain connection or one borrowed from a pool.
Conn = asyncpg.Connection | PoolConnectionProxy

# Errors that mean "the database is not reachable right now", as opposed to a bad query.
TRANSIENT_DB_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.ConnectionFailureError,
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.DeadlockDetectedError,
    # "cannot switch to state 15; another operation (2) is in progress": the connection's protocol
    # was left mid-operation when Postgres went away during a transaction (a portal POST answered
    # 500 in a fault run). The pool drops such a connection; a retry gets a fresh one.
    asyncpg.exceptions.InternalClientError,
)

_DATA_ERRORS: tuple[type[BaseException], ...] = (asyncpg.exceptions.DataError, asyncpg.exceptions._base.DataError)

# SQLSTATE classes that mean "the database cannot do it right now" rather than "this query is wrong":
# 08 connection, 40 rollback (serialization, deadlock), 53 insufficient resources (disk full, out of
# memory, too many connections), 57 operator intervention (shutdown, query cancelled), 58 system
# error (I/O); plus read-only transaction (25006, a failover in progress) and lock not available (55P03).
_TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "57", "58"})
_TRANSIENT_SQLSTATES = frozenset({"25006", "55P03"})


def is_transient(exc: BaseException) -> bool:
    """True for errors worth waiting out (retry later), False for ones a retry cannot fix.

    A consumer must never dead-letter an event because Postgres was away or full, and an HTTP
    client should get a 503 with Retry-After for these, not a 500.

    A timeout counts as transient here (a database that is away also times out); callers that
    retry must still cap retries on a timeout while the database answers (`is_timeout`), since a
    query that is simply too slow times out every time.
    """
    # asyncpg's DataError (bad query input, e.g. text it cannot encode) is an InterfaceError in
    # one of its two spellings; a retry sends the same input again, so it is never transient.
    if isinstance(exc, _DATA_ERRORS):
        return False
    if isinstance(exc, TRANSIENT_DB_ERRORS):
        return True
    if isinstance(exc, asyncpg.exceptions.ClientCannotConnectError | asyncpg.exceptions.ConnectionRejectionError):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        state = getattr(exc, "sqlstate", None) or ""
        return state[:2] in _TRANSIENT_SQLSTATE_CLASSES or state in _TRANSIENT_SQLSTATES
    return False


def is_timeout(exc: BaseException) -> bool:
    """A client-side command timeout, or the server cancelling a statement (statement_timeout)."""
    return isinstance(exc, TimeoutError | asyncpg.exceptions.QueryCanceledError)


_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def init_connection(conn: asyncpg.Connection) -> None:
    """JSON and JSONB as Python objects, on every connection the project opens."""
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(type_name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def keep_session(conn: asyncpg.Connection) -> None:
    """A pool's reset on release: only asyncpg's own (an open transaction rolled back, callbacks dropped).

    asyncpg's default also sends `pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL` on
    every release: a round trip per transaction, an eighth of notify's statements in a burst of
    alerts. Nothing run on a pool connection leaves session state behind: advisory locks are
    transaction-scoped (pg_advisory_xact_lock), settings are SET LOCAL or given at connect time,
    cursors live inside transactions, and a Listener UNLISTENs before it hands its connection
    back. What needs session state takes a connection of its own (as `migrate` does).
    """


async def create_pool(
    url: str,
    schema: str,
    *,
    application: str,
    min_size: int = 1,
    max_size: int = 10,
    command_timeout: float = 30.0,
    idle_in_transaction_timeout: float = 60.0,
) -> asyncpg.Pool:
    """A pool whose connections see the service's schema first, so SQL names tables unqualified.

    A session that sits in an open transaction for `idle_in_transaction_timeout` seconds is ended
    by Postgres, and its locks with it: a process frozen or cut off mid-transaction (an outbox
    relay holds row locks across its Kafka call) must not block the others for the two hours of
    the kernel's default keepalive. It must exceed the longest wait inside a transaction (the
    relay's Kafka send timeout plus the producer's 2 s clean-up). The server's TCP keepalives
    find a vanished client within about a minute (30 s idle, then 3 probes 10 s apart) and
    `tcp_user_timeout` drops one that stops acknowledging what the server sends.
    """
    pool = await asyncpg.create_pool(
        url,
        min_size=min_size,
        max_size=max_size,
        command_timeout=command_timeout,
        timeout=10.0,
        init=init_connection,
        reset=keep_session,
        server_settings={
            "search_path": f"{quote_ident(schema)},public",
            "application_name": application,
            "idle_in_transaction_session_timeout": str(int(idle_in_transaction_timeout * 1000)),
            "tcp_keepalives_idle": "30",
            "tcp_keepalives_interval": "10",
            "tcp_keepalives_count": "3",
            "tcp_user_timeout": "60000",
        },
    )
    assert pool is not None
    return pool


@dataclass(frozen=True, slots=True)
class Migration:
    version: str
    sql: str


def migrations_in(package: str, prefix: str = "") -> list[Migration]:
    """Every `NNNN_name.sql` of a package's folder, in order; `prefix` keeps shared and own files apart."""
    found = []
    for entry in resources.files(package).iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(version=f"{prefix}{entry.name[:-4]}", sql=entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: m.version)


def shared_migrations() -> list[Migration]:
    """The outbox and inbox tables every service schema has."""
    return migrations_in("shared.sql", prefix="shared_")


async def migrate(url: str, schema: str, migrations: Iterable[Migration]) -> list[str]:
    """Applies what is missing, each file in its own transaction; returns the versions applied.

    Safe to run from several processes at once: an advisory lock per schema, taken before
    anything is created (even `CREATE SCHEMA IF NOT EXISTS` fails when two run it at once),
    serialises them.
    """
    applied: list[str] = []
    conn = await asyncpg.connect(url, timeout=10.0)
    try:
        # Session-level: held across the per-file transactions below, released by closing.
        await conn.execute("SELECT pg_advisory_lock(hashtext($1))", f"migrate:{schema}")
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {quote_ident(schema)}.schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for migration in migrations:
            async with conn.transaction():
                await conn.execute(f"SET LOCAL search_path TO {quote_ident(schema)}, public")
                done = await conn.fetchval("SELECT 1 FROM schema_migrations WHERE version = $1", migration.version)
                if done:
                    continue
                await conn.execute(migration.sql)
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", migration.version)
                applied.append(migration.version)
                log.info("migration applied", extra={"schema": schema, "version": migration.version})
    finally:
        await conn.close()
    return applied


async def drop_schema(url: str, schema: str) -> None:
    conn = await asyncpg.connect(url, timeout=10.0)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE")
    finally:
        await conn.close()


async def ping(pool: asyncpg.Pool, timeout: float = 2.0) -> bool:
    try:
        async with pool.acquire(timeout=timeout) as conn:
            value: Any = await conn.fetchval("SELECT 1", timeout=timeout)
            return bool(value == 1)
    except Exception:
        return False


def connection_alive(conn: Conn) -> bool:
    """False once the connection is gone, whether closed or taken back by its pool after it dropped.

    asyncpg's pool takes a connection back by itself when the server ends it (a Postgres restart,
    `pg_terminate_backend`); any method called on the proxy the holder still has, `is_closed()`
    included, then raises InterfaceError. A holder that asked `is_closed()` and retried on that
    error asked the same dead proxy for ever: every timer of every service stopped after a Postgres
    restart while /readyz said "ready".
    """
    try:
        return not conn.is_closed()
    except asyncpg.exceptions.InterfaceError:
        return False


class Listener:
    """LISTEN on one channel through a pool connection held for it; sets `wake` on every notification.

    NOTIFY is a hint, not a queue (not durable, folded within a transaction), so its users keep a
    polling fallback. When the connection drops (restart, failover, a terminated backend) `wake` is
    set and the next `ensure()` takes a new one from the pool; given back on close.
    """

    def __init__(self, pool: asyncpg.Pool, channel: str, wake: asyncio.Event) -> None:
        self._pool = pool
        self._channel = channel
        self._wake = wake
        self._conn: PoolConnectionProxy | None = None

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    def _on_lost(self, *_: object) -> None:
        # A dropped connection may have swallowed a notification: wake, look, and re-listen.
        self._wake.set()

    @property
    def listening(self) -> bool:
        return self._conn is not None and connection_alive(self._conn)

    async def ensure(self) -> None:
        """Listening after this returns (a no-op while the connection lives)."""
        if self.listening:
            return
        await self.close()
        conn = await self._pool.acquire()
        try:
            await conn.add_listener(self._channel, self._on_notify)
        except BaseException:
            # Cancelled (or failed) between acquire and listen: give the connection back, or
            # pool.close() would wait for it.
            await self._pool.release(conn)
            raise
        conn.add_termination_listener(self._on_lost)
        self._conn = conn

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if connection_alive(conn):
            with contextlib.suppress(Exception):
                conn.remove_termination_listener(self._on_lost)
                await conn.remove_listener(self._channel, self._on_notify)
        # Given back whatever happened above; a no-op for a connection the pool took back when it dropped.
        with contextlib.suppress(Exception):
            await self._pool.release(conn)


# asyncpg reads timestamptz 'infinity' and '-infinity' as naive datetime.max and datetime.min:
# compared with any real (aware) time they raise TypeError, and one such row would make every
# read of it, and every list holding it, a 500. The service writes no such value (clients' times
# are bounded before they are stored), but a row written by hand or by an older version may hold one.
DISTANT_PAST: Final = datetime.min.replace(tzinfo=UTC)
DISTANT_FUTURE: Final = datetime.max.replace(tzinfo=UTC)


def readable_time(value: datetime | None) -> datetime | None:
    """A stored timestamptz as an aware time: -infinity and infinity become the far ends of UTC."""
    if value is None or value.tzinfo is not None:
        return value
    # A naive value from a timestamptz column can only be one of the infinities: the year tells which.
    return DISTANT_PAST if value.year == 1 else DISTANT_FUTURE


def readable_times(row: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    """A row as a dict whose time columns went through readable_time."""
    return {k: readable_time(v) if isinstance(v, datetime) else v for k, v in dict(row).items()}


async def clock_offset(pool: asyncpg.Pool, clock: Clock) -> timedelta:
    """Postgres's clock minus `clock`, judged at the midpoint of the round trip."""
    before = clock.now()
    database_now: datetime = await pool.fetchval("SELECT clock_timestamp()")
    after = clock.now()
    return database_now - (before + (after - before) / 2)
