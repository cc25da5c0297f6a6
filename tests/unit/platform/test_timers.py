"""shared/timers.py without a database: the durable timer's rounds, sleeps, wake-ups and backoff; every()."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.backoff import Backoff, doubling
from shared.clock import ManualClock
from shared.timers import DurableTimer, every

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


class _Conn:
    """Enough of an asyncpg pool connection for shared.db.Listener."""

    def __init__(self) -> None:
        self.listening: list[str] = []

    async def add_listener(self, channel: str, _callback: Any) -> None:
        self.listening.append(channel)

    def add_termination_listener(self, _callback: Any) -> None:
        pass

    def remove_termination_listener(self, _callback: Any) -> None:
        pass

    async def remove_listener(self, channel: str, _callback: Any) -> None:
        self.listening.remove(channel)

    def is_closed(self) -> bool:
        return False


class _Pool:
    def __init__(self) -> None:
        self.conn = _Conn()
        self.released = 0

    async def acquire(self) -> _Conn:
        return self.conn

    async def release(self, _conn: _Conn) -> None:
        self.released += 1


def test_backoff_doubles_from_half_a_second_up_to_its_cap_and_starts_again_after_a_reset() -> None:
    backoff = Backoff(cap=4.0)
    assert [backoff.next() for _ in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    backoff.reset()
    assert backoff.next() == 0.5


def test_a_backoff_stays_at_its_cap_through_an_outage_of_any_length() -> None:
    backoff = Backoff(first=0.1, cap=2.0)
    assert [backoff.next() for _ in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.6, 2.0]
    assert {backoff.next() for _ in range(5000)} == {2.0}  # days of retries: no float overflow
    assert doubling(1.0, 300.0, 0) == doubling(1.0, 300.0, 1) == 1.0
    assert doubling(1.0, 300.0, 10**6) == 300.0


async def test_the_sleep_is_until_the_next_due_time_capped_and_short_when_something_is_due() -> None:
    clock = ManualClock(T0)
    upcoming: list[datetime | None] = [T0 + timedelta(seconds=2)]

    async def next_due() -> datetime | None:
        return upcoming[0]

    async def fire_due() -> int:
        return 0

    timer = DurableTimer(
        _Pool(),  # type: ignore[arg-type]
        channel="c", name="t", fire_due=fire_due, next_due=next_due, clock=clock,
        batch_size=10, max_sleep=5.0, busy_retry=0.05,
    )  # fmt: skip
    assert await timer.seconds_until_next() == 2.0
    upcoming[0] = T0 + timedelta(hours=1)
    assert await timer.seconds_until_next() == 5.0  # capped: a lost NOTIFY costs at most this
    upcoming[0] = None
    assert await timer.seconds_until_next() == 5.0
    upcoming[0] = T0 - timedelta(seconds=1)  # due, but the last round claimed nothing: locked elsewhere
    assert await timer.seconds_until_next() == 0.05


async def test_a_wake_up_starts_the_next_round_before_the_sleep_ends_and_a_full_batch_does_not_sleep() -> None:
    rounds: list[int] = []
    claims = iter([10, 3])  # a full batch, then less: then sleep (for an hour) until woken

    async def fire_due() -> int:
        rounds.append(1)
        return next(claims, 0)

    pool = _Pool()
    timer = DurableTimer(pool, channel="deadlines_x", name="t", fire_due=fire_due, batch_size=10, max_sleep=3600)  # type: ignore[arg-type]
    task = asyncio.create_task(timer.run())
    try:
        for _ in range(100):
            await asyncio.sleep(0)
        assert len(rounds) == 2 and pool.conn.listening == ["deadlines_x"]
        timer.wake()
        for _ in range(100):
            await asyncio.sleep(0)
        assert len(rounds) == 3
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert pool.conn.listening == [] and pool.released == 1  # the LISTEN connection went back


async def test_with_a_wake_linger_the_wake_ups_of_a_burst_share_one_round() -> None:
    rounds: list[int] = []

    async def fire_due() -> int:
        rounds.append(1)
        return 0

    timer = DurableTimer(
        _Pool(),  # type: ignore[arg-type]
        channel="c", name="t", fire_due=fire_due, batch_size=10, max_sleep=3600, wake_linger=0.5,
    )  # fmt: skip
    task = asyncio.create_task(timer.run())
    try:
        for _ in range(100):
            await asyncio.sleep(0)
        assert len(rounds) == 1  # the first round, then asleep until woken
        for _ in range(5):  # five alerts written one after another: five NOTIFYs
            timer.wake()
            for _ in range(10):
                await asyncio.sleep(0)
        assert len(rounds) == 1  # gathering
        for _ in range(40):
            if len(rounds) > 1:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.1)
        assert len(rounds) == 2  # one round for all five
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_transient_database_error_is_waited_out_and_a_service_error_handled_by_the_service() -> None:
    errors: list[Exception] = [ConnectionRefusedError("db down"), ValueError("service-specific")]
    seen: list[tuple[str, float]] = []

    async def fire_due() -> int:
        if errors:
            raise errors.pop(0)
        return 0

    async def on_error(exc: Exception, backoff: Backoff) -> float | None:
        if isinstance(exc, ValueError):
            seen.append(("service", backoff.next()))
            return 0.0
        return None

    timer = DurableTimer(
        _Pool(),  # type: ignore[arg-type]
        channel="c", name="t", fire_due=fire_due, batch_size=10, max_sleep=3600, on_error=on_error,
    )  # fmt: skip
    sleeps: list[float] = []
    real_sleep = asyncio.sleep

    async def no_sleep(delay: float) -> None:
        sleeps.append(delay)
        await real_sleep(0)

    task = asyncio.create_task(timer.run())
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("shared.timers.asyncio.sleep", no_sleep)
        try:
            for _ in range(100):
                await real_sleep(0)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    # The database outage backed off 0.5 s; the service's own error continued the same backoff.
    assert sleeps[:2] == [0.5, 0.0] and seen == [("service", 1.0)]
    assert errors == []


async def test_every_runs_its_job_again_after_a_failure_and_warns_once_per_run_of_failures(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runs: list[int] = []

    async def job() -> None:
        runs.append(1)
        if len(runs) in (1, 2, 4):  # fails, fails again, works, fails
            raise RuntimeError("gauge query failed")

    task = asyncio.create_task(every(0.001, job, failure="gauges not refreshed"))
    try:
        for _ in range(200):
            if len(runs) >= 5:
                break
            await asyncio.sleep(0.005)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert len(runs) >= 5
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == ["gauges not refreshed: RuntimeError('gauge query failed')"] * 2


async def test_a_timer_cancelled_just_as_a_notify_wakes_it_stops() -> None:
    """The outbox relay once outlived its service's shutdown: woken by a NOTIFY as it was cancelled."""

    async def fire_due() -> int:
        return 0

    timer = DurableTimer(_Pool(), channel="c", name="t", fire_due=fire_due, batch_size=10, max_sleep=0.2)  # type: ignore[arg-type]
    task = asyncio.create_task(timer.run())
    await asyncio.sleep(0.01)
    timer.wake()
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=2.0)
    assert done == {task} and task.cancelled()


async def test_stopping_a_runtime_cancels_a_task_that_ignored_its_first_cancellation_and_names_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from shared import runtime as runtime_module
    from shared.runtime import ServiceRuntime
    from shared.settings import ServiceSettings

    async def stubborn() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            pass  # the bug this guards against: a loop that swallowed its cancellation and went on
        await asyncio.sleep(3600)

    runtime = ServiceRuntime(ServiceSettings(environment="development"), service="t", migrations=[])
    runtime._spawn(stubborn(), "stubborn")
    await asyncio.sleep(0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runtime_module, "STOP_GRACE_SECONDS", 0.05)
        await runtime._cancel_tasks()
    assert runtime._tasks == []
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors == ["background tasks ['t:stubborn'] still running 0 s after being cancelled"]


async def test_a_wake_up_during_a_round_starts_the_next_one_without_asking_for_the_next_due_time() -> None:
    rounds: list[int] = []
    asked: list[int] = []
    timer: DurableTimer

    async def fire_due() -> int:
        rounds.append(1)
        if len(rounds) == 1:
            timer.wake()  # a delivery written while the first round ran
        return 1

    async def next_due() -> datetime | None:
        asked.append(1)
        return None

    timer = DurableTimer(
        _Pool(),  # type: ignore[arg-type]
        channel="c", name="t", fire_due=fire_due, next_due=next_due, batch_size=10, max_sleep=3600,
    )  # fmt: skip
    task = asyncio.create_task(timer.run())
    try:
        for _ in range(100):
            await asyncio.sleep(0)
        # Round two at once, with no query for the next due time; after it, nothing woke it: it asks, and sleeps.
        assert len(rounds) == 2 and len(asked) == 1
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
