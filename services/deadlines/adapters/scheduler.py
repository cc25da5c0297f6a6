"""The timer: fires warnings and breaches when they fall due, once, across any number of instances.

Due deadlines are claimed with FOR UPDATE SKIP LOCKED, fired, saved, and their events written to
the outbox in one transaction, so two instances never fire the same deadline and a crash before
the commit leaves the deadline due (it fires on restart, once). Between rounds the scheduler sleeps
until the next due time, woken early by NOTIFY when a nearer deadline appears; the sleep cap only
guards against a lost notification.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import asyncpg

from services.deadlines.adapters import repository
from services.deadlines.domain.deadline import Deadline, DeadlineEvent
from services.deadlines.metrics import FIRED, PARKED, count_committed
from shared.clock import Clock
from shared.db import Listener, is_transient

log = logging.getLogger(__name__)

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
    ) -> None:
        self._pool = pool
        self._clock = clock
        self._topic = topic
        self._channel = f"deadlines_{schema}"
        self._batch = batch_size
        self._max_sleep = max_sleep
        self._wake = asyncio.Event()
        self._before_commit = before_commit

    async def fire_due(self) -> int:
        """One round: fires up to a batch of due deadlines; returns how many were claimed."""
        now = self._clock.now()
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await repository.claim_due(conn, now, self._batch)
            if not rows:
                return 0
            fired: list[Deadline] = []
            events: list[DeadlineEvent] = []
            parked: list[tuple[object, str]] = []
            for row in rows:
                try:
                    deadline, emitted = Deadline.from_record(dict(row)).fire(now)
                except Exception as exc:
                    # Only this row is wrong (the domain step does no I/O): park it, loudly, and
                    # keep every other deadline firing.
                    log.exception("scheduler: cannot fire deadline %s; parking it", row["id"])
                    parked.append((row["id"], f"{type(exc).__name__}: {exc}"[:500]))
                    continue
                fired.append(deadline)
                events.extend(emitted)
            if parked:
                await conn.executemany(
                    "UPDATE deadlines SET next_fire_at = NULL, fire_error = $2, updated_at = clock_timestamp()"
                    " WHERE id = $1",
                    parked,
                )
            await repository.save_deadlines(conn, fired)
            envelopes = await repository.record_and_emit(conn, events, {d.id: d.kommune for d in fired}, self._topic)
            if self._before_commit is not None:
                self._before_commit(fired)
        FIRED.inc(len(fired))
        if parked:
            PARKED.inc(len(parked))
        count_committed(envelopes)
        return len(rows)

    async def seconds_until_next(self) -> float:
        async with self._pool.acquire() as conn:
            upcoming = await repository.next_due(conn)
        if upcoming is None:
            return self._max_sleep
        return min(self._max_sleep, max(0.0, (upcoming - self._clock.now()).total_seconds()))

    async def run(self) -> None:
        listener = Listener(self._pool, self._channel, self._wake)
        backoff = 0.5
        try:
            while True:
                try:
                    await listener.ensure()
                    self._wake.clear()
                    claimed = await self.fire_due()
                    backoff = 0.5
                    if claimed >= self._batch:
                        continue
                    wait = await self.seconds_until_next()
                    if wait <= 0:
                        wait = BUSY_RETRY_SECONDS  # due but locked elsewhere: look again shortly
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), wait)
                except Exception as exc:
                    if not is_transient(exc):
                        log.exception("scheduler: unexpected error; retrying in 2s")
                        await asyncio.sleep(2.0)
                        continue
                    log.warning("scheduler: database unavailable (%r); retrying in %.1fs", exc, backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 10.0)
        finally:
            await asyncio.wait_for(listener.close(), 2.0)
