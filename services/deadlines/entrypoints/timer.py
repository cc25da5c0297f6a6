"""The timer: fires warnings and breaches when they fall due, once, across any number of instances.

A `shared.timers.DurableTimer` around the use case `handlers.fire_due_deadlines`: due deadlines are
claimed with FOR UPDATE SKIP LOCKED, fired, saved, and their events written to the outbox in one
transaction, so two instances never fire the same deadline and a crash before the commit leaves
the deadline due (it fires on restart, once). Between rounds the timer sleeps until the next due
time, woken early by NOTIFY when a nearer deadline appears; the sleep cap only guards against a
lost notification.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import asyncpg

from services.deadlines.adapters import repository
from services.deadlines.adapters.repository import PostgresDeadlinesRepository
from services.deadlines.domain.deadline import Deadline
from services.deadlines.handlers import fire_due_deadlines
from services.deadlines.metrics import FIRED, PARKED, count_committed
from shared.clock import Clock
from shared.health import LoopProgress
from shared.timers import DurableTimer

# When rows are due but all are locked by another instance or a consumer, retry this soon.
BUSY_RETRY_SECONDS = 0.05


class DeadlineScheduler:
    def __init__(
        self,
        pool: asyncpg.Pool,
        clock: Clock,
        *,
        topic: str,
        schema: str,
        batch_size: int = 500,
        max_sleep: float = 5.0,
        before_commit: Callable[[list[Deadline]], None] | None = None,
        progress: LoopProgress | None = None,
    ) -> None:
        self._pool = pool
        self._clock = clock
        self._topic = topic
        self._batch = batch_size
        self._before_commit = before_commit
        self._timer = DurableTimer(
            pool,
            channel=f"deadlines_{schema}",
            name="scheduler",
            fire_due=self.fire_due,
            next_due=self._next_due,
            clock=clock,
            batch_size=batch_size,
            max_sleep=max_sleep,
            busy_retry=BUSY_RETRY_SECONDS,
            progress=progress,
        )

    async def fire_due(self) -> int:
        """One round: fires up to a batch of due deadlines; returns how many were claimed."""
        async with self._pool.acquire() as conn, conn.transaction():
            # "Now" is Postgres's, not this host's: a host whose clock runs ahead must not breach
            # early (the corrected clock only plans the sleep between rounds).
            now = await repository.transaction_now(conn)
            result = await fire_due_deadlines(
                PostgresDeadlinesRepository(conn, topic=self._topic),
                now,
                self._batch,
                before_commit=self._before_commit,
            )
        # Counted after the commit: a rolled-back round counts nothing.
        FIRED.inc(len(result.fired))
        if result.parked:
            PARKED.inc(result.parked)
        count_committed(result.envelopes)
        return result.claimed

    async def _next_due(self) -> datetime | None:
        async with self._pool.acquire() as conn:
            return await repository.next_due(conn)

    async def run(self) -> None:
        await self._timer.run()
