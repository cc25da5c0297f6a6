"""Delivery rules and message shapes: backoff with jitter and Retry-After, answers, signatures, Danish e-mail."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime

import pytest
from itsdangerous import TimestampSigner
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from services.notify.adapters.ack_links import AckLinks, InvalidLink
from services.notify.adapters.channels import EmailClient, WebhookClient, sign
from services.notify.adapters.repository import view_from_row
from services.notify.domain.delivery import Backoff, http_outcome, parse_retry_after
from services.notify.domain.messages import AlertView, email_text, subject, webhook_payload
from services.notify.settings import NotifySettings
from shared.reference import categories
from tests.support.notify import new_secret

NOW = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)


def test_backoff_grows_with_jitter_within_bounds_and_is_capped() -> None:
    b = Backoff(base=1.0, cap=30.0, max_attempts=6)
    assert [b.delay(n, None, lambda: 0.0) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert [b.delay(n, None, lambda: 0.999) for n in (1, 2, 3)] == pytest.approx([0.9995, 1.999, 3.998])
    assert b.delay(10, None, lambda: 0.999) <= 30.0
    assert b.exhausted(6) and not b.exhausted(5)


def test_retry_after_is_a_floor_and_is_itself_capped() -> None:
    b = Backoff(base=1.0, cap=30.0, max_retry_after=120.0)
    assert b.delay(1, 7.0, lambda: 0.5) == 7.0
    assert b.delay(1, 10_000.0, lambda: 0.5) == 120.0
    assert b.delay(5, 0.1, lambda: 0.0) == 8.0  # a smaller wish does not make it hammer the receiver


def test_http_answers_mean_what_the_receiver_says() -> None:
    assert http_outcome(204, None, NOW).verdict == "delivered"
    assert http_outcome(410, None, NOW).verdict == "gone"
    slow = http_outcome(429, "12", NOW)
    assert (slow.verdict, slow.retry_after) == ("retry", 12.0)
    later = http_outcome(503, "Mon, 04 May 2026 10:01:00 GMT", NOW)
    assert (later.verdict, later.retry_after) == ("retry", 60.0)
    assert http_outcome(500, None, NOW).verdict == "retry"
    assert http_outcome(400, None, NOW).verdict == "failed"
    assert parse_retry_after("soon", NOW) is None


def test_our_signature_verifies_with_the_standardwebhooks_package() -> None:
    secret = new_secret()
    body = json.dumps({"a": "æøå"}, ensure_ascii=False, separators=(",", ":"))
    msg_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    ts = int(now.timestamp())
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": sign(secret, msg_id, ts, body)}
    assert Webhook(secret).verify(body, headers) == {"a": "æøå"}
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace("æ", "a"), headers)


VIEW = AlertView(
    alert_id=str(uuid.uuid4()), case_id=str(uuid.uuid4()), reference="MV-ABCD-EFG", category="burglary_home",
    category_da="Indbrud i privat hjem", kommune="0265", kommune_name="Roskilde", title="Indbrud: 24 timer",
    reason="deadline_breached", severity="critical", state="open", due_at=NOW,
)  # fmt: skip


def test_the_email_is_danish_carries_only_case_facts_and_a_stable_message_id() -> None:
    text = email_text(VIEW, "breached", "http://notify/v1/alerts/x/ack-link?token=t")
    assert "Frist overskredet" in text and "MV-ABCD-EFG" in text and "Roskilde (0265)" in text
    assert "04.05.2026 kl. 12:00" in text  # due time in Danish local time
    assert "http://notify/v1/alerts/x/ack-link?token=t" in text
    delivery = str(uuid.uuid4())
    msg = EmailClient("h", 25, "notify@politi.example").message("vc@politi.example", subject(VIEW, "breached"), text,
                                                                  delivery, NOW)  # fmt: skip
    assert msg["Message-ID"] == f"<{delivery}@politi.example>"
    assert subject(VIEW, "breached").startswith("[Opdateret] Frist overskredet: MV-ABCD-EFG")


def test_an_email_without_an_ack_link_sends_the_reader_to_the_console_as_himself() -> None:
    # The vagtcentral's shared channel gets no link: a desk cannot take responsibility, a signed-in person can.
    text = email_text(VIEW, "breached", None)
    assert "ack-link" not in text and "Kvittér for alarmen i konsollen, logget ind som dig selv" in text


def test_a_withdrawn_breach_tells_in_danish_which_action_came_when_before_the_due_time() -> None:
    # Due 12:00 Copenhagen time; the patrol was on scene at 11:52 and the breach alert went out anyway.
    withdrawn = AlertView(**{**{f: getattr(VIEW, f) for f in VIEW.__dataclass_fields__}, "state": "resolved",
                             "resolved_reason": "breach_withdrawn", "resolved_action": "on_scene",
                             "resolved_action_at": datetime(2026, 5, 4, 9, 52, tzinfo=UTC)})  # fmt: skip
    sentence = (
        "Fristoverskridelsen er trukket tilbage, fordi handlingen (Patrulje fremme) er registreret kl. 11:52"
        " (04.05.2026), før fristen (04.05.2026 kl. 12:00)."
    )
    assert subject(withdrawn, "resolved") == "[Trukket tilbage] Frist overskredet: MV-ABCD-EFG (Roskilde)"
    text = email_text(withdrawn, "resolved", "http://ack")
    assert sentence in text and "Afsluttet: overskridelsen er trukket tilbage" in text
    assert "http://ack" not in text  # nothing left to acknowledge
    payload = webhook_payload(withdrawn, "resolved", "d-3", "http://ack")
    assert (payload["type"], payload["resolved_reason"], payload["ack_url"]) == (
        "alert.resolved", "breach_withdrawn", None,
    )  # fmt: skip
    assert sentence in payload["text"]
    # A deadline met or a case closed is told as before, with the reason in Danish.
    met = AlertView(**{**{f: getattr(withdrawn, f) for f in VIEW.__dataclass_fields__}, "resolved_reason": "met",
                       "resolved_action": None, "resolved_action_at": None})  # fmt: skip
    assert subject(met, "resolved").startswith("[Afsluttet] Frist overskredet")
    assert (
        "trukket tilbage" not in email_text(met, "resolved", None) + webhook_payload(met, "resolved", "d", None)["text"]
    )


def test_the_webhook_payload_has_no_room_for_citizen_data() -> None:
    payload = webhook_payload(VIEW, "raised", "d-1", "http://ack")
    assert set(payload["alert"]) == {"id", "case_id", "reference", "category", "kommune", "title", "reason",
                                     "severity", "state", "due_at", "acknowledged_by", "acknowledged_by_name"}  # fmt: skip
    assert payload["ack_url"] == "http://ack" and payload["type"] == "alert.raised"
    closed = AlertView(**{**{f: getattr(VIEW, f) for f in VIEW.__dataclass_fields__}, "state": "resolved"})
    resolved = webhook_payload(closed, "resolved", "d-2", "http://ack")
    assert resolved["type"] == "alert.resolved" and resolved["ack_url"] is None  # nothing left to acknowledge


def test_an_alert_row_becomes_the_message_view_with_danish_labels_and_its_ack_scope() -> None:
    row = {"id": uuid.uuid4(), "case_id": uuid.uuid4(), "reference": None, "category": "burglary_home",
           "kommune": "0265", "title": "Indbrud: 24 timer", "reason": "deadline_breached", "severity": "critical",
           "state": "open", "due_at": NOW, "acknowledged_by": None, "resolved_reason": None, "generation": 1}  # fmt: skip
    view = view_from_row(row)
    assert (view.alert_id, view.category_da, view.kommune_name) == (
        str(row["id"]), categories()["burglary_home"].da, "Roskilde")  # fmt: skip
    assert view.ack_scope == "deadline_breached-g1"  # a breach in the deadline's second window
    # A code the reference data no longer has is shown as it is, not dropped.
    gone = view_from_row(row | {"category": "no_such_category", "kommune": "9999", "generation": 0})
    assert (gone.category_da, gone.kommune_name, gone.ack_scope) == ("no_such_category", "9999", "deadline_breached")


def test_ack_links_are_signed_and_expire() -> None:
    links = AckLinks("s" * 32, "http://notify", max_age_seconds=60)
    alert, delivery = uuid.uuid4(), uuid.uuid4()
    token = links.token(alert, delivery, "vc-a", "deadline_warning")
    claim = links.read(token)
    assert (claim.alert_id, claim.delivery_id, claim.recipient, claim.reason) == (
        alert,
        delivery,
        "vc-a",
        "deadline_warning",
    )
    with pytest.raises(InvalidLink):
        links.read(token[:-2] + "xx")
    with pytest.raises(InvalidLink):
        AckLinks("t" * 32, "http://notify", 60).read(token)
    assert links.url(alert, delivery, "vc-a", "deadline_warning").startswith(
        f"http://notify/v1/alerts/{alert}/ack-link?token="
    )


def test_ack_links_signed_before_a_secret_rotation_keep_working_and_new_ones_use_the_new_secret() -> None:
    old, new = "old-ack-secret-" + "o" * 20, "new-ack-secret-" + "n" * 20
    alert, delivery = uuid.uuid4(), uuid.uuid4()
    in_flight = AckLinks(old, "http://notify", 60).token(alert, delivery, "vc-a", "deadline_warning")
    rotated = AckLinks(new, "http://notify", 60, previous=[old])
    assert rotated.read(in_flight).alert_id == alert  # sent before the rotation, still good
    issued = rotated.token(alert, delivery, "vc-a", "deadline_warning")
    # A previous secret only verifies: what is issued now is signed with the new one alone.
    assert AckLinks(new, "http://notify", 60).read(issued).alert_id == alert
    with pytest.raises(InvalidLink):
        AckLinks(old, "http://notify", 60).read(issued)
    # Once the old secret is dropped from the list, its links are refused.
    with pytest.raises(InvalidLink):
        AckLinks(new, "http://notify", 60).read(in_flight)
    with pytest.raises(InvalidLink):
        AckLinks(new, "http://notify", 60, previous=["some-other-secret-" + "x" * 20]).read(in_flight)


def test_previous_ack_secrets_are_read_comma_separated_and_each_must_be_a_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NOTIFY_ACK_PREVIOUS_SECRETS", " first-previous-secret-0123 , second-previous-secret-0123,")
    assert NotifySettings().ack_previous_secrets == ["first-previous-secret-0123", "second-previous-secret-0123"]
    monkeypatch.setenv("NOTIFY_ACK_PREVIOUS_SECRETS", "")
    assert NotifySettings().ack_previous_secrets == []
    monkeypatch.setenv("NOTIFY_ACK_PREVIOUS_SECRETS", "first-previous-secret-0123,short")
    with pytest.raises(ValueError, match="too short: #2") as refused:
        NotifySettings()
    assert "first-previous-secret-0123" not in str(refused.value)  # a secret is never echoed
    assert "first-previous" not in repr(NotifySettings(ack_previous_secrets=["first-previous-secret-0123"]))


def test_an_ack_link_older_than_its_max_age_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    links = AckLinks("s" * 32, "http://notify", max_age_seconds=60)
    alert, delivery = uuid.uuid4(), uuid.uuid4()
    now = int(time.time())
    with monkeypatch.context() as m:  # issued 61 s ago (itsdangerous stamps its tokens with this clock)
        m.setattr(TimestampSigner, "get_timestamp", lambda self: now - 61)
        old = links.token(alert, delivery, "vc-a", "deadline_warning")
    with monkeypatch.context() as m:
        m.setattr(TimestampSigner, "get_timestamp", lambda self: now - 59)
        fresh = links.token(alert, delivery, "vc-a", "deadline_warning")
    assert links.read(fresh).alert_id == alert
    with pytest.raises(InvalidLink, match="udløbet"):
        links.read(old)


async def _trickling_server(seconds: float) -> asyncio.Server:
    """Answers 200, one body byte at a time: every read is quick, the whole answer takes `seconds`."""
    body = b"x" * 10

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(body))
        for byte in body:
            await asyncio.sleep(seconds / len(body))
            writer.write(bytes([byte]))
            await writer.drain()
        writer.close()

    return await asyncio.start_server(answer, "127.0.0.1", 0)


async def test_a_webhook_answer_that_trickles_is_cut_off_at_the_send_timeout() -> None:
    server = await _trickling_server(seconds=6.0)
    port = server.sockets[0].getsockname()[1]
    client = WebhookClient(timeout=1.0)
    try:
        outcome = await client.send(f"http://127.0.0.1:{port}/hook", new_secret(), "d-1", {"a": 1}, datetime.now(UTC))
    finally:
        await client.close()
        server.close()
    assert outcome.verdict == "retry" and "within 1 s" in outcome.detail


def test_settings_refuse_a_lease_a_send_can_outlast() -> None:
    with pytest.raises(ValueError, match="NOTIFY_DELIVERY_LEASE_SECONDS"):
        NotifySettings(send_timeout_seconds=10, delivery_lease_seconds=11)
    assert NotifySettings(send_timeout_seconds=10, delivery_lease_seconds=13).delivery_lease_seconds == 13
