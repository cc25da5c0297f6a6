"""Per-API-key request rate limit: a token bucket per client, in this process's memory.

The buckets are per instance: with N instances behind a load balancer a key may make N times
the configured rate. That is the point of a cheap first line against a runaway client; a hard
cap across instances belongs in the gateway in front of the service.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """`per_minute` requests per minute on average, with bursts of up to `burst` at once."""

    def __init__(self, per_minute: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if per_minute <= 0 or burst < 1:
            raise ValueError("a rate limit needs a positive rate and a burst of at least 1")
        self._rate = per_minute / 60.0  # tokens per second
        self._burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, client: str) -> float:
        """Takes one token for `client`: 0.0 when the request may go ahead, else seconds until it may."""
        now = self._clock()
        bucket = self._buckets.get(client)
        if bucket is None:
            bucket = self._buckets[client] = _Bucket(self._burst, now)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self._rate


def retry_after(wait_seconds: float) -> str:
    """A Retry-After value in whole seconds, never 0 (a client told 0 would hammer right back)."""
    return str(max(1, math.ceil(wait_seconds)))
