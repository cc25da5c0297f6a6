"""shared/aio.py: a wait with a time limit that never swallows a cancellation (CPython gh-86296 on 3.11)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import pytest

from shared.aio import wait_event, within

# One wait of a background loop for its wake-up event (or its time limit).
WaitOnce = Callable[[asyncio.Event], Awaitable[object]]

pytestmark = pytest.mark.unit


async def _waits_in_a_loop(wait_once: WaitOnce, rounds: list[int]) -> None:
    """The shape of every background loop: wait for a wake-up (or the time limit), do a round, again."""
    event = asyncio.Event()
    _waits_in_a_loop.event = event  # type: ignore[attr-defined]
    while True:
        with contextlib.suppress(TimeoutError):
            await wait_once(event)
        event.clear()
        rounds.append(1)


async def _cancel_as_it_wakes(wait_once: WaitOnce) -> bool:
    """Wakes the loop and cancels it in the same loop iteration; True if the cancellation took."""
    rounds: list[int] = []
    task = asyncio.create_task(_waits_in_a_loop(wait_once, rounds))
    await asyncio.sleep(0.01)
    _waits_in_a_loop.event.set()  # type: ignore[attr-defined]
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=1.0)
    if not done:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return False
    return task.cancelled()


async def test_asyncio_wait_for_on_this_python_swallows_a_cancellation_that_meets_a_wake_up() -> None:
    """Why shared.aio exists: if this ever fails, Python fixed wait_for (3.12 did) and the ban may go."""
    import sys

    if sys.version_info >= (3, 12):
        pytest.skip("wait_for is built on asyncio.timeout from Python 3.12")
    wait_for = asyncio.wait_for  # noqa: TID251 - the point of this test
    assert not await _cancel_as_it_wakes(lambda event: wait_for(event.wait(), 0.2))


async def test_within_lets_a_cancellation_that_meets_a_wake_up_through() -> None:
    assert await _cancel_as_it_wakes(lambda event: within(event.wait(), 0.2))


async def test_wait_event_lets_a_cancellation_that_meets_a_wake_up_through() -> None:
    assert await _cancel_as_it_wakes(lambda event: wait_event(event, 0.2))


async def test_within_returns_the_result_and_raises_timeout_error_when_the_time_is_up() -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    assert await within(answer(), 1.0) == 42
    with pytest.raises(TimeoutError):
        await within(asyncio.sleep(10), 0.01)
    queue: asyncio.Queue[int] = asyncio.Queue()
    queue.put_nowait(7)
    assert await within(queue.get(), 0) == 7  # what is already there is taken even with no time left


async def test_wait_event_says_whether_the_event_was_set() -> None:
    event = asyncio.Event()
    assert await wait_event(event, 0.01) is False
    event.set()
    assert await wait_event(event, 0.01) is True


async def test_an_outer_cancellation_during_a_wait_is_not_turned_into_a_timeout() -> None:
    started = asyncio.Event()

    async def waits() -> None:
        started.set()
        await within(asyncio.sleep(10), 5.0)

    task = asyncio.create_task(waits())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
