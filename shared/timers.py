"""Durable timers and periodic loops: how a service's background work wakes, sleeps and rides out outages.

Two shapes, used by every service (see docs/architecture.md, "Timers and loops"):

- `DurableTimer`: work that is *due* and stored in Postgres (deadline warnings and breaches,
  notify's escalations, the outbox's pending rows). The service supplies `fire_due()` (claim and
  handle one batch in one transaction, return how many rows it claimed) and `next_due()` (when the
  next row falls due, or None). The timer fires, then sleeps until the next due time, capped by
  `max_sleep` (a guard against a lost notification), and is woken early by a `NOTIFY` on its
  channel (the `notify_wakeup` trigger function of shared/sql/0001_outbox_inbox.sql). The state is
  in the table, not in memory, so a crash or restart loses nothing: what is due fires on the next
  round. A database outage is waited out with a capped exponential backoff; nothing is dropped.
- `every()`: a periodic job (gauges, purges) that must never take the service down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

import asyncpg

from shared.aio import within
from shared.backoff import Backoff
from shared.clock import Clock, SystemClock
from shared.db import Listener, is_transient
from shared.health import LoopProgress

log = logging.getLogger(__name__)

FireDue = Callable[[], Awaitable[int]]
NextDue = Callable[[], Awaitable[datetime | None]]


# Handles a service-specific failure (e.g. Kafka did not confirm) and returns how long to sleep,
# or None to leave the error to the timer's own handling (transient database error or unexpected).
OnError = Callable[[Exception, Backoff], Awaitable[float | None]]


class DurableTimer:
    """Runs `fire_due` whenever rows are due, woken by NOTIFY on `channel`; see the module docstring.

    `fire_due` returning `batch_size` or more means more may be waiting: the next round starts at
    once. When `next_due` says something is already due but the last round claimed nothing, the
    rows are locked by another instance (or a consumer): the timer looks again after `busy_retry`.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        channel: str,
        name: str,
        fire_due: FireDue,
        batch_size: int,
        max_sleep: float,
        next_due: NextDue | None = None,
        clock: Clock | None = None,
        busy_retry: float = 0.05,
        unexpected_retry: float = 2.0,
        on_error: OnError | None = None,
        wake_linger: float = 0.0,
        progress: LoopProgress | None = None,
    ) -> None:
        self._pool = pool
        self._channel = channel
        self._name = name
        self._fire_due = fire_due
        self._batch = batch_size
        self._max_sleep = max_sleep
        self._next_due = next_due
        self._clock = clock or SystemClock()
        self._busy_retry = busy_retry
        self._unexpected_retry = unexpected_retry
        self._on_error = on_error
        # After a wake-up, wait this long before the round, so the wake-ups of a burst share one
        # round. For timers whose rows fall due well after they are written (escalations), where
        # each NOTIFY otherwise costs a round that finds nothing due. Due times are not delayed.
        self._wake_linger = wake_linger
        self._wake = asyncio.Event()
        # Told of every completed round, so /readyz and the metrics see a timer that stopped firing.
        self._progress = progress

    def wake(self) -> None:
        """Starts the next round now (what a NOTIFY on the channel does)."""
        self._wake.set()

    async def seconds_until_next(self) -> float:
        """How long to sleep: until the next due time, at most `max_sleep`, at least `busy_retry`."""
        upcoming = None if self._next_due is None else await self._next_due()
        if upcoming is None:
            return self._max_sleep
        wait = min(self._max_sleep, max(0.0, (upcoming - self._clock.now()).total_seconds()))
        return wait if wait > 0 else self._busy_retry

    async def run(self) -> None:
        """Fires until cancelled; database outages only delay what is due."""
        listener = Listener(self._pool, self._channel, self._wake)
        backoff = Backoff()
        try:
            while True:
                try:
                    await listener.ensure()
                    # Cleared before looking, so a NOTIFY that lands while this round runs is kept
                    # and the next round starts at once instead of after the sleep.
                    self._wake.clear()
                    claimed = await self._fire_due()
                    backoff.reset()
                    if self._progress is not None:
                        self._progress.round_done()
                    if claimed >= self._batch:
                        continue  # more is waiting: no sleep
                    woken = self._wake.is_set()
                    if not woken:
                        # A NOTIFY during the round ends the sleep at once, whatever the next due time:
                        # asking for it then is a query for nothing (a burst's every round, before).
                        wait = await self.seconds_until_next()
                        with contextlib.suppress(TimeoutError):
                            await within(self._wake.wait(), wait)
                            woken = True
                    if woken and self._wake_linger > 0:
                        await asyncio.sleep(self._wake_linger)
                except Exception as exc:
                    if self._progress is not None:
                        self._progress.failed()
                    if self._on_error is not None:
                        delay = await self._on_error(exc, backoff)
                        if delay is not None:
                            await asyncio.sleep(delay)
                            continue
                    if not is_transient(exc):
                        log.exception("%s: unexpected error; retrying in %.0fs", self._name, self._unexpected_retry)
                        await asyncio.sleep(self._unexpected_retry)
                        continue
                    delay = backoff.next()
                    log.warning("%s: database unavailable (%r); retrying in %.1fs", self._name, exc, delay)
                    await asyncio.sleep(delay)
        finally:
            # A listener that cannot close in time is left to the pool; the cancellation goes on.
            with contextlib.suppress(Exception):
                await within(listener.close(), 2.0)


async def every(interval: float, job: Callable[[], Awaitable[object]], *, failure: str) -> None:
    """Runs `job` now and then every `interval` seconds until cancelled.

    A failure is logged as `"<failure>: <error>"` and the loop goes on: a gauge or a purge must
    never take the service down, and the next round retries. While the same job keeps failing
    (Postgres away for a minute), only the first failure is a warning; the repeats are debug lines.
    """
    failing = False
    while True:
        try:
            await job()
            failing = False
        except Exception as exc:
            log.log(logging.DEBUG if failing else logging.WARNING, "%s: %r", failure, exc)
            failing = True
        await asyncio.sleep(interval)
