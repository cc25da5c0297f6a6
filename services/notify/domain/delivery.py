"""Delivery rules: what an answer from a channel means, when to try again, and what becomes of a delivery after it.

A `Delivery` is one notice to one recipient on one of their channels. `deliveries_for` writes
them (a console delivery is delivered as written); `after_attempt` decides, from one attempt's
`Outcome`, whether it is delivered, retried (when: backoff with jitter, Retry-After), cancelled,
or failed and handed to the recipient's next channel or the vagtcentral's.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Literal

from services.notify.domain.alert import Notice, delivery_id_for
from services.notify.domain.roster import ChannelKind, Recipient, Roster
from shared.backoff import doubling

Verdict = Literal["delivered", "retry", "gone", "failed"]
DeliveryState = Literal["pending", "delivered", "failed", "cancelled"]


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
    """Exponential backoff with jitter, capped; a receiver's Retry-After is a floor (up to `max_retry_after`).

    The step is `shared.backoff.doubling`, the timers' own; this policy adds the jitter, Retry-After and
    the maximum of attempts.
    """

    base: float = 1.0
    cap: float = 300.0
    max_attempts: int = 6
    max_retry_after: float = 3600.0

    def delay(self, attempt: int, retry_after: float | None, random: Callable[[], float]) -> float:
        """Seconds before attempt `attempt + 1`; `random` gives [0, 1) (injected, so tests are exact).

        Equal jitter: half the exponential step fixed, half random, so retries of many deliveries
        that failed together spread out without any of them retrying at once.
        """
        step = doubling(self.base, self.cap, attempt)
        delay = step / 2 + random() * step / 2
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_retry_after))
        return delay

    def exhausted(self, attempt: int) -> bool:
        return attempt >= self.max_attempts


@dataclass(frozen=True, slots=True)
class Delivery:
    """One notice (a stage of an alert) to one recipient on their channel number `channel_no`: a row of `deliveries`.

    `attempts` counts the tries so far, the one being made included (a claim counts it).
    `stoppable`: an escalation or reminder, which an ack or a resolve makes pointless.
    """

    id: uuid.UUID
    alert_id: uuid.UUID
    notice_id: uuid.UUID
    stage: str
    stoppable: bool
    recipient_id: str
    recipient_name: str
    channel_no: int
    channel: ChannelKind
    target: str
    state: DeliveryState
    attempts: int
    next_attempt_at: datetime
    happened_at: datetime  # when its cause happened: latency is measured from it
    delivered_at: datetime | None = None
    # The trace its send belongs to (a W3C traceparent), set by the repository as it writes the row.
    trace_context: str | None = None


def deliveries_for(
    notice: Notice, recipients: Sequence[Recipient], *, now: datetime, happened_at: datetime, channel_no: int = 0
) -> list[Delivery]:
    """The notice's delivery to each recipient on their channel `channel_no` (one who has no such channel gets none).

    A console delivery is delivered as it is written: the alert is on the console and in the API
    the moment the transaction that writes it commits, so there is nothing left to send.
    """
    written = []
    for recipient in recipients:
        if channel_no >= len(recipient.channels):
            continue
        channel = recipient.channels[channel_no]
        shown = channel.kind == "console"
        delivery = Delivery(
            id=delivery_id_for(notice.id, recipient.id, channel_no), alert_id=notice.alert_id, notice_id=notice.id,
            stage=notice.stage, stoppable=notice.stoppable, recipient_id=recipient.id, recipient_name=recipient.name,
            channel_no=channel_no, channel=channel.kind, target=channel.target,
            state="delivered" if shown else "pending", attempts=1 if shown else 0, next_attempt_at=now,
            happened_at=happened_at, delivered_at=now if shown else None,
        )  # fmt: skip
        written.append(delivery)
    return written


@dataclass(frozen=True, slots=True)
class Delivered:
    """The receiver has it."""


@dataclass(frozen=True, slots=True)
class Retry:
    """The same channel again at `at`, `delay` seconds from now."""

    at: datetime
    delay: float


@dataclass(frozen=True, slots=True)
class Cancelled:
    """Not retried: an escalation or reminder whose alert was acknowledged or resolved meanwhile."""

    why: str


@dataclass(frozen=True, slots=True)
class Failed:
    """This channel is done with (it failed, is gone, or used up its retries); `next` takes the message on.

    `next` is the delivery to write on the recipient's next channel, or on the vagtcentral's first
    (`next_channel` names it as `alert.delivery_failed` does: "email", "vagtcentral:webhook"); None
    when nobody is to be told any more (the alert acknowledged or resolved) or the vagtcentral's own
    last channel failed. `disable_endpoint`: the receiver answered 410 Gone; its target is skipped from now on.
    """

    next: Delivery | None
    next_channel: str | None
    disable_endpoint: bool


AfterAttempt = Delivered | Retry | Cancelled | Failed

# An escalation or reminder of an alert in one of these states has nothing left to say.
_ANSWERED = ("acknowledged", "resolved")


def after_attempt(
    delivery: Delivery,
    outcome: Outcome,
    alert_state: str,
    roster: Roster,
    backoff: Backoff,
    random: Callable[[], float],
    now: datetime,
) -> AfterAttempt:
    """What one attempt's outcome makes of the delivery. Only this delivery changes: a failure on one
    channel never touches a channel that worked.

    Delivered is delivered. A retry waits (`backoff`; `random` gives its jitter) unless the message
    is stoppable and its alert acknowledged or resolved (cancelled), or its retries are used up
    (then as failed). A failure, a 410 Gone or the last retry hands the message to the recipient's
    next channel; after the last one, to the vagtcentral's shared channel (fælleskanal): never
    dropped. Nothing is handed on for a stoppable message whose alert was acknowledged or resolved.
    """
    if outcome.verdict == "delivered":
        return Delivered()
    stopped = delivery.stoppable and alert_state in _ANSWERED
    if outcome.verdict == "retry":
        if stopped:
            return Cancelled(f"not retried: alert {alert_state}")
        if not backoff.exhausted(delivery.attempts):
            delay = backoff.delay(delivery.attempts, outcome.retry_after, random)
            return Retry(now + timedelta(seconds=delay), delay)
    gone = outcome.verdict == "gone"
    if stopped:
        return Failed(None, None, gone)
    notice = Notice(delivery.notice_id, delivery.alert_id, delivery.stage, (), delivery.stoppable)
    recipient = roster.find(delivery.recipient_id)
    next_no = delivery.channel_no + 1
    if recipient is not None and next_no < len(recipient.channels):
        [next_delivery] = deliveries_for(
            notice, [recipient], now=now, happened_at=delivery.happened_at, channel_no=next_no
        )
        return Failed(next_delivery, next_delivery.channel, gone)
    if delivery.recipient_id != roster.vagtcentral.id:
        # Every channel of this recipient failed (or they left the roster): the vagtcentral takes it. Never dropped.
        [shared] = deliveries_for(notice, [roster.vagtcentral], now=now, happened_at=delivery.happened_at)
        return Failed(shared, f"vagtcentral:{shared.channel}", gone)
    return Failed(None, None, gone)
