"""Request rate limits for every service's HTTP API: token buckets per API key, per bucket, and per client address.

One mechanism, used by `shared.auth.require_role` for every route that needs a key:

- a request with a valid key takes a token from its route's bucket, counted per key ("api" for
  most routes; intake's status polling has a "status" bucket of its own, so a citizen refreshing
  a status page never uses up the portal's submissions);
- a request with no key, or a wrong one, takes a token from the "anonymous" bucket, counted per
  client address, before it is told 401: guessing keys or hammering without one is slowed too.

The buckets live in this process's memory: with N instances behind a load balancer a client may
make N times the configured rate. That is a cheap first line against a runaway client; a hard cap
across instances belongs in the gateway in front. Behind a proxy, the client address is the
proxy's unless uvicorn is told to trust its X-Forwarded-For (`--forwarded-allow-ips`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from shared.http import Problem

ANONYMOUS: Final = "anonymous"
DEFAULT_BUCKET: Final = "api"
# Idle buckets are full buckets; past this many clients they are forgotten (a full bucket and a
# missing one behave the same), so many addresses cannot grow the table without end.
MAX_CLIENTS: Final = 10_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """`per_minute` requests per minute on average, with bursts of up to `burst` at once, per client."""

    def __init__(
        self,
        per_minute: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        if per_minute <= 0 or burst < 1:
            raise ValueError("a rate limit needs a positive rate and a burst of at least 1")
        self._rate = per_minute / 60.0  # tokens per second
        self._burst = float(burst)
        self._clock = clock
        self._max_clients = max_clients
        self._buckets: dict[str, _Bucket] = {}

    def take(self, client: str) -> float:
        """Takes one token for `client`: 0.0 when the request may go ahead, else seconds until it may."""
        now = self._clock()
        bucket = self._buckets.get(client)
        if bucket is None:
            if len(self._buckets) >= self._max_clients:
                self._forget_idle(now)
            bucket = self._buckets[client] = _Bucket(self._burst, now)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self._rate

    def __len__(self) -> int:
        return len(self._buckets)

    def _forget_idle(self, now: float) -> None:
        refill = self._burst / self._rate  # seconds from empty to full
        self._buckets = {k: b for k, b in self._buckets.items() if now - b.updated < refill}
        if len(self._buckets) >= self._max_clients:
            # Everyone is busy: keep the most recent half. A forgotten client gets a full bucket,
            # which errs on the side of serving it.
            recent = sorted(self._buckets.items(), key=lambda kv: kv[1].updated)[len(self._buckets) // 2 :]
            self._buckets = dict(recent)


@dataclass(frozen=True, slots=True)
class RateLimits:
    """A service's buckets by name: at least DEFAULT_BUCKET (per key) and ANONYMOUS (per address)."""

    buckets: Mapping[str, RateLimiter]

    def __post_init__(self) -> None:
        missing = {DEFAULT_BUCKET, ANONYMOUS} - set(self.buckets)
        if missing:
            raise ValueError(f"rate limits need the buckets {sorted(missing)}")

    def check(self, bucket: str, who: str, *, anonymous: bool = False) -> None:
        """Takes a token from `bucket` for `who`; 429 problem+json with Retry-After when there is none."""
        wait = self.buckets[bucket].take(who)
        if wait > 0:
            whose = "this address, without a valid API key," if anonymous else "this API key"
            raise Problem(
                429,
                "Too many requests",
                f"Too many requests from {whose}; try again in {retry_after(wait)} s.",
                kind="rate-limited",
                headers={"Retry-After": retry_after(wait)},
            )


def rate_limits(
    per_minute: float,
    burst: int,
    anonymous_per_minute: float,
    anonymous_burst: int,
    **more: RateLimiter,
) -> RateLimits:
    """The usual set: per key (DEFAULT_BUCKET), per address without a key (ANONYMOUS), and any `more`."""
    return RateLimits(
        {
            DEFAULT_BUCKET: RateLimiter(per_minute, burst),
            ANONYMOUS: RateLimiter(anonymous_per_minute, anonymous_burst),
            **more,
        }
    )


def retry_after(wait_seconds: float) -> str:
    """A Retry-After value in whole seconds, never 0 (a client told 0 would hammer right back)."""
    return str(max(1, math.ceil(wait_seconds)))
