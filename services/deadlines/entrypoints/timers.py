"""The timer: fires warnings and breaches when they fall due, once, across any number of instances.

A `shared.timers.DurableTimer` around the use case `handlers.fire_due_deadlines`: due deadlines are
claimed with FOR UPDATE SKIP LOCKED, fired, saved, and their events written to the outbox in one
transaction, so two instances never fire the same deadline and a crash before the commit leaves
the deadline due (it fires on restart, once). Between rounds the timer sleeps until the next due
time, woken early by NOTIFY when a nearer deadline appears; the sleep cap only guards against a
lost notification.

A breach only when it is one: a warning or breach is fired only up to the breach gate, the time
up to which this service's cases.v1 consumer has processed every partition (`domain/gate.py`,
recorded by `entrypoints/progress.py`). A police action already on the bus is applied first, so a
restarted, stopped or lagging consumer delays a breach instead of declaring one that is not.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import asyncpg

from services.deadlines.adapters import repository
from services.deadlines.adapters.repository import PostgresDeadlinesRepository
from services.deadlines.domain.deadline import Deadline
from services.deadlines.domain.gate import caught_up_until, firing_horizon, held_back
from services.deadlines.handlers import fire_due_deadlines
from services.deadlines.metrics import FIRED, PARKED, count_committed
from shared.clock import Clock
from shared.health import LoopProgress
from shared.logs import log_context
from shared.timers import DurableTimer
from shared.unit_of_work import InTransaction

log = logging.getLogger(__name__)

# When rows are due but all are locked by another instance or a consumer, retry this soon.
BUSY_RETRY_SECONDS = 0.05
# When rows are due by the clock but the gate holds them, look again this soon: the gate moves in
# steps of the progress interval (0.25 s), so a short poll keeps the usual extra delay well under 1 s;
# once the gate lags by more than GATE_SLOW_AFTER (the consumer is stopped or far behind), poll slowly.
GATE_POLL_SECONDS = 0.1
GATE_SLOW_POLL_SECONDS = 1.0
GATE_SLOW_AFTER = timedelta(seconds=2)
# A hold this long is worth a log line (shorter ones are the gate's ordinary step), repeated at most this often.
HOLD_LOG_AFTER = timedelta(seconds=5)
HOLD_LOG_EVERY = timedelta(seconds=60)


class HoldReport:
    """Says in the log when due warnings or breaches are held by the gate for long, and when released; no more."""

    def __init__(self) -> None:
        self._since: datetime | None = None
        self._logged_at: datetime | None = None

    def held(self, now: datetime, gate: datetime | None, earliest_due: datetime) -> None:
        self._since = self._since or earliest_due
        if now - self._since < HOLD_LOG_AFTER:
            return
        if self._logged_at is not None and now - self._logged_at < HOLD_LOG_EVERY:
            return
        self._logged_at = now
        behind = "has never caught up" if gate is None else f"has caught up only to {gate.isoformat()}"
        log.warning(
            "scheduler: holding warnings and breaches due since %s: the cases.v1 consumer %s,"
            " so a police action already on the bus may not be applied yet",
            earliest_due.isoformat(), behind,
        )  # fmt: skip

    def released(self, now: datetime) -> None:
        if self._logged_at is not None and self._since is not None:
            log.info("scheduler: breach gate open again after %.1f s", (now - self._since).total_seconds())
        self._since = self._logged_at = None


class DeadlineScheduler:
    def __init__(
        self,
        pool: asyncpg.Pool,
        clock: Clock,
        *,
        topic: str,
        cases_topic: str,
        schema: str,
        batch_size: int = 500,
        max_sleep: float = 5.0,
        before_commit: Callable[[list[Deadline]], None] | None = None,
        progress: LoopProgress | None = None,
    ) -> None:
        self._pool = pool
        self._clock = clock
        self._topic = topic
        self._cases_topic = cases_topic
        self._batch = batch_size
        self._before_commit = before_commit
        self._holds = HoldReport()
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
        """One round: fires up to a batch of deadlines due by the gate; returns how many were claimed."""
        async with self._pool.acquire() as conn, conn.transaction():
            # "Now" is Postgres's, not this host's: a host whose clock runs ahead must not breach
            # early (the corrected clock only plans the sleep between rounds).
            view = await repository.gate_view(conn, self._cases_topic)
            as_of = firing_horizon(view.now, caught_up_until(view.progress))
            if as_of is None:
                return 0
            # The round's unit of work is this transaction, whose now() the gate was read at.
            result = await fire_due_deadlines(
                InTransaction(conn, lambda c: PostgresDeadlinesRepository(c, topic=self._topic)),
                as_of,
                self._batch,
                before_commit=self._before_commit,
            )
        # Counted after the commit: a rolled-back round counts nothing.
        FIRED.inc(len(result.fired))
        if result.parked:
            PARKED.inc(result.parked)
        count_committed(result.envelopes)
        if log.isEnabledFor(logging.DEBUG):
            for deadline in result.fired:
                with log_context(deadline_id=deadline.id, case_id=deadline.case_id):
                    log.debug("scheduler: fired %s", deadline.rule.id)
        return result.claimed

    async def _next_due(self) -> datetime | None:
        """The next due time; while the gate holds what is due, a short poll instead (never a busy loop)."""
        async with self._pool.acquire() as conn:
            view = await repository.gate_view(conn, self._cases_topic)
        gate = caught_up_until(view.progress)
        if view.next_fire_at is not None and held_back(view.next_fire_at, view.now, gate):
            self._holds.held(view.now, gate, view.next_fire_at)
            slow = gate is None or view.now - gate > GATE_SLOW_AFTER
            return self._clock.now() + timedelta(seconds=GATE_SLOW_POLL_SECONDS if slow else GATE_POLL_SECONDS)
        self._holds.released(view.now)
        return view.next_fire_at

    async def run(self) -> None:
        await self._timer.run()
