"""The token buckets behind every service's 429s (shared/ratelimit.py), on a clock the test moves."""

from __future__ import annotations

import pytest

from shared.ratelimit import RateLimiter, retry_after


class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_is_allowed_then_one_request_per_interval() -> None:
    clock = Ticks()
    limiter = RateLimiter(per_minute=60, burst=3, clock=clock)
    assert [limiter.take("portal") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("portal") == pytest.approx(1.0)  # one token a second
    clock.now += 0.5
    assert limiter.take("portal") == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.take("portal") == 0.0
    assert limiter.take("portal") > 0


def test_a_quiet_key_refills_to_its_burst_and_no_further() -> None:
    clock = Ticks()
    limiter = RateLimiter(per_minute=120, burst=2, clock=clock)
    limiter.take("portal"), limiter.take("portal")
    clock.now += 3600
    assert [limiter.take("portal") == 0.0 for _ in range(3)] == [True, True, False]


def test_keys_have_their_own_buckets() -> None:
    limiter = RateLimiter(per_minute=1, burst=1, clock=Ticks())
    assert limiter.take("portal") == 0.0
    assert limiter.take("portal") == pytest.approx(60.0)
    assert limiter.take("police") == 0.0


def test_retry_after_is_whole_seconds_and_never_zero() -> None:
    assert [retry_after(w) for w in (0.01, 1.0, 1.2, 59.9)] == ["1", "1", "2", "60"]


def test_a_limit_that_allows_nothing_is_refused() -> None:
    with pytest.raises(ValueError):
        RateLimiter(per_minute=0, burst=1)
    with pytest.raises(ValueError):
        RateLimiter(per_minute=10, burst=0)


def test_many_addresses_cannot_grow_the_table_without_end() -> None:
    clock = Ticks()
    limiter = RateLimiter(per_minute=60, burst=2, clock=clock, max_clients=100)
    for i in range(1000):
        clock.now += 0.001
        limiter.take(f"203.0.113.{i}")
    assert len(limiter) <= 100
    # An address that was just limited is still remembered while busy ones are kept.
    limiter.take("busy"), limiter.take("busy")
    assert limiter.take("busy") > 0
