"""The unit of work every use case runs in: one transaction, and the service's repository bound to it.

A use case reads `async with uow.transaction() as repo:` then fetches, calls the domain, persists
and emits through `repo`; the block's end commits, an exception rolls back. What the repository is
(`CaseRepository`, `DeadlinesRepository`, ...) each service declares beside its handlers; this
module only opens the transaction, so it is written once for every service.

Two Postgres kinds, one contract:
- `PostgresUnitOfWork` opens a transaction of its own on a pool connection (HTTP commands, timers);
- `InTransaction` runs inside a transaction the caller already holds: a consumer's, whose inbox
  claim must commit with the effect (shared/consumer.py), or a timer round that read other rows in
  it first. Its block adds no statement; what the use case wrote commits or rolls back with the
  caller's transaction, and an exception still propagates to roll it back.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Generic, Protocol, TypeVar

import asyncpg

from shared.db import Conn

R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)


class UnitOfWork(Protocol[R_co]):
    def transaction(self) -> AbstractAsyncContextManager[R_co]:
        """One transaction: committed when the block ends normally, rolled back when it raises."""
        ...


class PostgresUnitOfWork(Generic[R]):
    """Each `transaction()` takes a pool connection, begins, and hands the use case `repository(conn)`."""

    def __init__(
        self,
        pool: Callable[[], asyncpg.Pool],
        repository: Callable[[Conn], R],
        *,
        acquire_timeout: float | None = None,
        before_commit: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._pool = pool  # a getter: the pool exists only once the service has started
        self._repository = repository
        self._acquire_timeout = acquire_timeout
        # Test seam: runs inside the transaction just before COMMIT, to fail at the worst moment.
        self._before_commit = before_commit

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[R]:
        # acquire(timeout=...): with Postgres away, a request fails in bounded time, never hangs.
        async with self._pool().acquire(timeout=self._acquire_timeout) as conn, conn.transaction():
            yield self._repository(conn)
            if self._before_commit is not None:
                await self._before_commit()


class InTransaction(Generic[R]):
    """The unit of work of a caller that holds the transaction: `repository(conn)`, no statement of its own."""

    def __init__(self, conn: Conn, repository: Callable[[Conn], R]) -> None:
        self._conn = conn
        self._repository = repository

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[R]:
        yield self._repository(self._conn)
