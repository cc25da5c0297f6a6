"""Postgres plumbing: a pool bound to one service's schema, and ordered SQL migrations per schema."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from typing import Any

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
)

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
    """
    if isinstance(exc, TRANSIENT_DB_ERRORS):
        return True
    if isinstance(exc, asyncpg.exceptions.ClientCannotConnectError | asyncpg.exceptions.ConnectionRejectionError):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        state = getattr(exc, "sqlstate", None) or ""
        return state[:2] in _TRANSIENT_SQLSTATE_CLASSES or state in _TRANSIENT_SQLSTATES
    return False


_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def init_connection(conn: asyncpg.Connection) -> None:
    """JSON and JSONB as Python objects, on every connection the project opens."""
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(type_name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(
    url: str,
    schema: str,
    *,
    application: str,
    min_size: int = 1,
    max_size: int = 10,
    command_timeout: float = 30.0,
) -> asyncpg.Pool:
    """A pool whose connections see the service's schema first, so SQL names tables unqualified."""
    pool = await asyncpg.create_pool(
        url,
        min_size=min_size,
        max_size=max_size,
        command_timeout=command_timeout,
        timeout=10.0,
        init=init_connection,
        server_settings={"search_path": f"{quote_ident(schema)},public", "application_name": application},
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

    Safe to run from several processes at once: an advisory lock per schema serialises them.
    """
    applied: list[str] = []
    conn = await asyncpg.connect(url, timeout=10.0)
    try:
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {quote_ident(schema)}.schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for migration in migrations:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"migrate:{schema}")
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


class Listener:
    """LISTEN on one channel through a pool connection held for it; sets `wake` on every notification.

    NOTIFY is a hint, not a queue (not durable, folded within a transaction), so its users keep a
    polling fallback. The connection is re-taken after it drops, and given back on close.
    """

    def __init__(self, pool: asyncpg.Pool, channel: str, wake: asyncio.Event) -> None:
        self._pool = pool
        self._channel = channel
        self._wake = wake
        self._conn: PoolConnectionProxy | None = None

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def ensure(self) -> None:
        """Listening after this returns (a no-op while the connection lives)."""
        if self._conn is not None and not self._conn.is_closed():
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
        # A dropped connection may have swallowed a notification: wake, look, and re-listen.
        conn.add_termination_listener(lambda *_: self._wake.set())
        self._conn = conn

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with contextlib.suppress(Exception):
            if not conn.is_closed():
                await conn.remove_listener(self._channel, self._on_notify)
            await self._pool.release(conn)


async def clock_offset(pool: asyncpg.Pool, clock: Clock) -> timedelta:
    """Postgres's clock minus `clock`, judged at the midpoint of the round trip."""
    before = clock.now()
    database_now: datetime = await pool.fetchval("SELECT clock_timestamp()")
    after = clock.now()
    return database_now - (before + (after - before) / 2)
