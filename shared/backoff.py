"""Capped exponential backoff, pure Python: how long to wait before trying again.

One step rule for the whole project: `doubling(first, cap, attempt)`. `Backoff` counts the attempts
of a loop riding out an outage (the timers, the runtime's wait for Postgres, notify's console feed);
notify's delivery retries (`services.notify.domain.delivery.Backoff`, a domain policy with jitter,
Retry-After and a maximum of attempts) take their step from the same function. No I/O and no
imports beyond the standard library, so domain code may use it.
"""

from __future__ import annotations

# 2**62 times any sensible first step is still a float; past it the cap has long been reached.
_MAX_EXPONENT = 62


def doubling(first: float, cap: float, attempt: int) -> float:
    """`first` for attempt 1 (and 0), doubled for each attempt after it, never more than `cap`."""
    return min(cap, first * 2.0 ** min(max(0, attempt - 1), _MAX_EXPONENT))


class Backoff:
    """Capped exponential backoff: 0.5 s, 1 s, 2 s, ... up to `cap`; `reset()` after a success."""

    def __init__(self, first: float = 0.5, cap: float = 10.0) -> None:
        self._first = first
        self._cap = cap
        self._attempt = 0

    def next(self) -> float:
        if self._attempt <= _MAX_EXPONENT:
            self._attempt += 1
        return doubling(self._first, self._cap, self._attempt)

    def reset(self) -> None:
        self._attempt = 0
