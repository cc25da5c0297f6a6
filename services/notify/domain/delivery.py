"""Delivery rules: what an answer from a channel means, and when to try again (backoff with jitter, Retry-After)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal

Verdict = Literal["delivered", "retry", "gone", "failed"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt came to. `retry_after` is the receiver's own wish (429/503), in seconds."""

    verdict: Verdict
    detail: str
    retry_after: float | None = None


def http_outcome(status: int, retry_after_header: str | None, now: datetime) -> Outcome:
    """2xx delivered; 410 the endpoint is gone (disable it); 408/425/429/5xx try again; other 4xx fail now."""
    if 200 <= status < 300:
        return Outcome("delivered", f"HTTP {status}")
    if status == 410:
        return Outcome("gone", "HTTP 410 Gone: endpoint disabled")
    if status in (408, 425, 429) or status >= 500:
        return Outcome("retry", f"HTTP {status}", parse_retry_after(retry_after_header, now))
    return Outcome("failed", f"HTTP {status}")


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Retry-After as seconds (RFC 9110: delay-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with jitter, capped; a receiver's Retry-After is a floor (up to `max_retry_after`)."""

    base: float = 1.0
    cap: float = 300.0
    max_attempts: int = 6
    max_retry_after: float = 3600.0

    def delay(self, attempt: int, retry_after: float | None, random: Callable[[], float]) -> float:
        """Seconds before attempt `attempt + 1`; `random` gives [0, 1) (injected, so tests are exact).

        Equal jitter: half the exponential step fixed, half random, so retries of many deliveries
        that failed together spread out without any of them retrying at once.
        """
        step = min(self.cap, self.base * 2 ** max(0, attempt - 1))
        delay = step / 2 + random() * step / 2
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_retry_after))
        return delay

    def exhausted(self, attempt: int) -> bool:
        return attempt >= self.max_attempts
