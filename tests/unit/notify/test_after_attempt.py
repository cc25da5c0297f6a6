"""What one attempt makes of a delivery (`after_attempt`), and how deliveries are written (`deliveries_for`).

Pure functions: no database, no broker, the time an argument. Every branch, with the test that takes it:

after_attempt
- delivered -> Delivered, whatever the alert's state: `test_delivered_is_delivered_even_after_the_ack`
- retry, stoppable, alert acknowledged or resolved -> Cancelled (before the retries are counted):
  `test_a_retry_of_an_escalation_whose_alert_was_answered_is_cancelled`
- retry, stoppable but alert open or escalated, or not stoppable whatever the state -> not cancelled:
  `test_a_retry_is_cancelled_only_for_a_stoppable_message_of_an_answered_alert`
- retry, retries left -> Retry(at = now + backoff; Retry-After a floor):
  `test_a_retry_waits_with_backoff_and_honours_retry_after`
- retry, retries used up -> Failed, handed on as a failure is: `test_the_last_retry_fails_over_to_the_next_channel`
- failed or gone, stoppable message of an answered alert -> Failed(None): nobody else is told, and a gone
  endpoint is still disabled: `test_a_failure_after_the_ack_hands_nothing_on`
- failed, the recipient has a next channel -> Failed(next = that channel): `test_a_failure_hands_the_message_to_the_next_channel`
- gone -> the endpoint is disabled: `test_gone_disables_the_endpoint_and_still_hands_the_message_on`
- failed on the recipient's last channel -> the vagtcentral's first channel ("never dropped"):
  `test_never_dropped_the_vagtcentral_takes_it_after_the_recipients_last_channel`
- failed, the recipient left the roster -> the vagtcentral: `test_never_dropped_a_recipient_no_longer_on_the_roster`
- the vagtcentral's own channel failed -> its next channel, here the console, delivered as written:
  `test_the_vagtcentrals_own_failure_goes_to_its_next_channel`
- the vagtcentral's last channel failed -> Failed(None): nowhere left: `test_the_vagtcentrals_last_channel_has_nowhere_left`

deliveries_for
- a console delivery is delivered as written, any other is pending; a recipient without channel
  `channel_no` gets none: `test_a_console_delivery_is_delivered_as_written_and_others_wait_to_be_sent`
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from services.notify.adapters.roster_file import parse_roster
from services.notify.domain.alert import Notice, delivery_id_for, notice_id_for
from services.notify.domain.delivery import (
    AfterAttempt,
    Backoff,
    Cancelled,
    Delivered,
    Delivery,
    Failed,
    Outcome,
    Retry,
    after_attempt,
    deliveries_for,
)
from services.notify.domain.roster import Recipient
from shared.reference import kommuner
from tests.support.notify import new_secret, roster_document

pytestmark = pytest.mark.unit

NOW = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
CAUSE = NOW - timedelta(minutes=5)  # when the breach (or escalation) happened
BACKOFF = Backoff(base=1.0, cap=300.0, max_attempts=3)
HALF = 0.5  # the jitter's draw: half of the random half of the step

# lb-roskilde-1: webhook, then e-mail; lb-roskilde-2: e-mail only; the vagtcentral: a webhook, then the console.
ROSTER = parse_roster(
    roster_document(
        officer_channels={
            "lb-roskilde-1": [
                {"type": "webhook", "url": "https://hooks.politi.example/lb1", "secret": new_secret()},
                {"type": "email", "to": "lb1@politi.example"},
            ],
            "lb-roskilde-2": [{"type": "email", "to": "lb2@politi.example"}],
            "vagtcentral": [
                {"type": "webhook", "url": "https://hooks.politi.example/vc", "secret": new_secret()},
                {"type": "console"},
            ],
        }
    ),
    "roster.yaml",
    kommuner=kommuner(),
    secrets={},
)
ALERT_ID = uuid.uuid4()


def on_roster(recipient_id: str) -> Recipient:
    found = ROSTER.find(recipient_id)
    assert found is not None
    return found


def sent(recipient: str, channel_no: int = 0, *, stage: str = "raised", stoppable: bool = True,
         attempts: int = 1) -> Delivery:  # fmt: skip
    """`recipient`'s delivery of `stage` on channel `channel_no`, claimed for attempt number `attempts`."""
    person = on_roster(recipient)
    notice = Notice(notice_id_for(ALERT_ID, stage), ALERT_ID, stage, (recipient,), stoppable)
    [delivery] = deliveries_for(notice, [person], now=CAUSE, happened_at=CAUSE, channel_no=channel_no)
    return replace(delivery, attempts=attempts)


def decide(delivery: Delivery, outcome: Outcome, alert_state: str = "open") -> AfterAttempt:
    return after_attempt(delivery, outcome, alert_state, ROSTER, BACKOFF, lambda: HALF, NOW)


def test_delivered_is_delivered_even_after_the_ack() -> None:
    webhook = sent("lb-roskilde-1")
    assert decide(webhook, Outcome("delivered", "HTTP 204")) == Delivered()
    # The receiver has it; an ack meanwhile does not undo that.
    assert decide(webhook, Outcome("delivered", "HTTP 204"), "acknowledged") == Delivered()


@pytest.mark.parametrize("state", ["acknowledged", "resolved"])
def test_a_retry_of_an_escalation_whose_alert_was_answered_is_cancelled(state: str) -> None:
    escalation = sent("lb-roskilde-1", stage="deadline_warning-escalated-1")
    assert decide(escalation, Outcome("retry", "HTTP 503"), state) == Cancelled(f"not retried: alert {state}")
    # Even with its retries used up: it is not handed on either.
    last = replace(escalation, attempts=BACKOFF.max_attempts)
    assert decide(last, Outcome("retry", "HTTP 503"), state) == Cancelled(f"not retried: alert {state}")


def test_a_retry_is_cancelled_only_for_a_stoppable_message_of_an_answered_alert() -> None:
    escalation = sent("lb-roskilde-1", stage="deadline_warning-escalated-1")
    assert isinstance(decide(escalation, Outcome("retry", "HTTP 503"), "escalated"), Retry)
    # What reports an ack (or a resolve) is never stopped by it.
    told = sent("lb-roskilde-1", stage="acknowledged-deadline_warning", stoppable=False)
    assert isinstance(decide(told, Outcome("retry", "HTTP 503"), "acknowledged"), Retry)
    assert isinstance(decide(told, Outcome("retry", "HTTP 503"), "resolved"), Retry)


def test_a_retry_waits_with_backoff_and_honours_retry_after() -> None:
    first = sent("lb-roskilde-1", attempts=1)
    # Attempt 1 of base 1 s: half of it fixed, half jitter (HALF of that here).
    assert decide(first, Outcome("retry", "HTTP 503")) == Retry(NOW + timedelta(seconds=0.75), 0.75)
    second = replace(first, attempts=2)
    assert decide(second, Outcome("retry", "HTTP 503")) == Retry(NOW + timedelta(seconds=1.5), 1.5)
    # The receiver's Retry-After is a floor.
    assert decide(second, Outcome("retry", "HTTP 429", retry_after=12.0)) == Retry(NOW + timedelta(seconds=12), 12.0)


def test_the_last_retry_fails_over_to_the_next_channel() -> None:
    last = sent("lb-roskilde-1", attempts=BACKOFF.max_attempts)
    decision = decide(last, Outcome("retry", "HTTP 500"))
    assert isinstance(decision, Failed) and decision.next is not None
    assert (decision.next.channel, decision.next_channel, decision.disable_endpoint) == ("email", "email", False)


@pytest.mark.parametrize("state", ["acknowledged", "resolved"])
@pytest.mark.parametrize("verdict", ["failed", "gone"])
def test_a_failure_after_the_ack_hands_nothing_on(state: str, verdict: str) -> None:
    webhook = sent("lb-roskilde-1")
    decision = decide(webhook, Outcome(verdict, "HTTP 400"), state)  # type: ignore[arg-type]
    assert decision == Failed(None, None, disable_endpoint=verdict == "gone")
    # Nor past the recipient's last channel: the vagtcentral is not troubled with an answered alert.
    assert decide(sent("lb-roskilde-2"), Outcome("failed", "550"), state) == Failed(None, None, False)


def test_a_failure_hands_the_message_to_the_next_channel() -> None:
    webhook = sent("lb-roskilde-1", stage="deadline_warning-escalated-1", attempts=1)
    decision = decide(webhook, Outcome("failed", "HTTP 400"), "escalated")
    assert isinstance(decision, Failed) and decision.next_channel == "email" and not decision.disable_endpoint
    notice_id = notice_id_for(ALERT_ID, "deadline_warning-escalated-1")
    # The same notice to the same person on channel 1, to be sent at once; its latency still counts from the cause.
    assert decision.next == Delivery(
        id=delivery_id_for(notice_id, "lb-roskilde-1", 1), alert_id=ALERT_ID, notice_id=notice_id,
        stage="deadline_warning-escalated-1", stoppable=True, recipient_id="lb-roskilde-1",
        recipient_name=on_roster("lb-roskilde-1").name, channel_no=1, channel="email", target="lb1@politi.example",
        state="pending", attempts=0, next_attempt_at=NOW, happened_at=CAUSE,
    )  # fmt: skip


def test_gone_disables_the_endpoint_and_still_hands_the_message_on() -> None:
    decision = decide(sent("lb-roskilde-1"), Outcome("gone", "HTTP 410 Gone: endpoint disabled"))
    assert isinstance(decision, Failed) and decision.disable_endpoint
    assert decision.next is not None and decision.next_channel == "email"


def test_never_dropped_the_vagtcentral_takes_it_after_the_recipients_last_channel() -> None:
    email = sent("lb-roskilde-1", channel_no=1)  # the last of lb-roskilde-1's two
    decision = decide(email, Outcome("failed", "550 no such mailbox"), "escalated")
    assert isinstance(decision, Failed) and decision.next is not None
    assert decision.next_channel == "vagtcentral:webhook"
    shared = decision.next
    assert (shared.recipient_id, shared.channel_no, shared.channel, shared.state) == ("vagtcentral", 0, "webhook",
                                                                                      "pending")  # fmt: skip
    assert (shared.notice_id, shared.stage, shared.happened_at) == (email.notice_id, email.stage, CAUSE)
    # A message that is never stopped (e.g. what tells of an ack) reaches it whatever the alert's state.
    told = sent("lb-roskilde-2", stage="acknowledged-deadline_warning", stoppable=False)
    decision = decide(told, Outcome("failed", "550"), "acknowledged")
    assert isinstance(decision, Failed) and decision.next_channel == "vagtcentral:webhook"


def test_never_dropped_a_recipient_no_longer_on_the_roster() -> None:
    gone = replace(sent("lb-roskilde-1"), recipient_id="lb-moved-away")
    decision = decide(gone, Outcome("failed", "HTTP 400"))
    assert isinstance(decision, Failed) and decision.next is not None
    assert (decision.next.recipient_id, decision.next_channel) == ("vagtcentral", "vagtcentral:webhook")


def test_the_vagtcentrals_own_failure_goes_to_its_next_channel() -> None:
    decision = decide(sent("vagtcentral"), Outcome("gone", "HTTP 410 Gone"))
    assert isinstance(decision, Failed) and decision.disable_endpoint and decision.next is not None
    assert decision.next_channel == "console"  # its own next channel, not "vagtcentral:..."
    # The console shows it as it is written.
    assert (decision.next.state, decision.next.attempts, decision.next.delivered_at) == ("delivered", 1, NOW)


def test_the_vagtcentrals_last_channel_has_nowhere_left() -> None:
    last = sent("vagtcentral", channel_no=1)
    assert decide(last, Outcome("failed", "console down")) == Failed(None, None, False)


def test_a_console_delivery_is_delivered_as_written_and_others_wait_to_be_sent() -> None:
    vagtcentral, officer = ROSTER.vagtcentral, on_roster("lb-roskilde-2")
    notice = Notice(notice_id_for(ALERT_ID, "raised"), ALERT_ID, "raised", ("vagtcentral", "lb-roskilde-2"))
    on_console = deliveries_for(notice, [vagtcentral, officer], now=NOW, happened_at=CAUSE, channel_no=1)
    # lb-roskilde-2 has no second channel: no delivery for them.
    assert [(d.recipient_id, d.channel, d.state, d.attempts, d.delivered_at) for d in on_console] == [
        ("vagtcentral", "console", "delivered", 1, NOW)
    ]
    first = deliveries_for(notice, [vagtcentral, officer], now=NOW, happened_at=CAUSE)
    assert [(d.recipient_id, d.channel, d.state, d.attempts, d.delivered_at) for d in first] == [
        ("vagtcentral", "webhook", "pending", 0, None),
        ("lb-roskilde-2", "email", "pending", 0, None),
    ]
    # Written again (a retried transaction), the same delivery: the same id.
    assert [d.id for d in deliveries_for(notice, [officer], now=NOW + timedelta(hours=1), happened_at=CAUSE)] == [
        delivery_id_for(notice.id, "lb-roskilde-2", 0)
    ]
    assert all((d.next_attempt_at, d.happened_at) == (NOW, CAUSE) for d in [*on_console, *first])
