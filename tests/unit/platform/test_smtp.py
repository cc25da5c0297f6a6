"""shared/smtp.py against a real SMTP server on loopback (aiosmtpd): what each answer means, and how far a send got."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage

import pytest

from shared.smtp import SmtpServer, send_message
from tests.support.receivers import SmtpSink
from tests.support.services import free_port

TO = "lokalraad-roskilde@kommune.example"


def message(to: str = TO) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "raadsrapporter@politi.example", to, "Rådsrapport"
    msg["Message-ID"] = "<kredsraad.2026-Q3.0123@politi.example>"
    msg.set_content("Til rådet")
    return msg


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    s = SmtpSink().start()
    yield s
    s.stop()


async def test_a_message_the_server_takes_is_delivered_with_its_answer(sink: SmtpSink) -> None:
    calls: list[int] = []

    async def before_data() -> None:
        calls.append(len(sink.messages))  # nothing taken yet when it runs

    result = await send_message(SmtpServer("127.0.0.1", sink.port), message(), timeout=5, before_data=before_data)
    assert (result.verdict, result.data_sent) == ("delivered", True) and result.detail.startswith("SMTP 250")
    assert calls == [0] and len(sink.to(TO)) == 1


async def test_a_slow_goodbye_changes_nothing(sink: SmtpSink) -> None:
    sink.quit_delay = 3.0
    result = await send_message(SmtpServer("127.0.0.1", sink.port), message(), timeout=1)
    assert result.verdict == "delivered" and len(sink.to(TO)) == 1


async def test_a_5xx_refusal_of_the_recipient_is_final_and_a_4xx_one_is_worth_another_try(sink: SmtpSink) -> None:
    sink.refuse = {"ukendt@kommune.example": "550 5.1.1 no such user", "fuld@kommune.example": "452 4.2.2 full"}
    server = SmtpServer("127.0.0.1", sink.port)
    refused = await send_message(server, message("ukendt@kommune.example"), timeout=5)
    full = await send_message(server, message("fuld@kommune.example"), timeout=5)
    assert (refused.verdict, refused.data_sent) == ("failed", False) and "550" in refused.detail
    assert (full.verdict, full.data_sent) == ("retry", False) and "452" in full.detail
    assert sink.messages == []


async def test_no_server_is_worth_another_try_and_nothing_was_sent() -> None:
    result = await send_message(SmtpServer("127.0.0.1", free_port()), message(), timeout=2)
    assert (result.verdict, result.data_sent) == ("retry", False)


async def test_a_250_that_does_not_come_within_the_bound_leaves_the_send_in_doubt(sink: SmtpSink) -> None:
    sink.data_delay[TO] = 3.0  # the server keeps the message, and answers too late
    result = await send_message(SmtpServer("127.0.0.1", sink.port), message(), timeout=1)
    assert (result.verdict, result.data_sent) == ("retry", True)
    assert len(sink.to(TO)) == 1  # the caller cannot know this: hence data_sent


async def test_a_hook_that_refuses_before_data_ends_the_conversation_with_nothing_sent(sink: SmtpSink) -> None:
    class Taken(Exception):
        pass

    async def before_data() -> None:
        raise Taken

    with pytest.raises(Taken):
        await send_message(SmtpServer("127.0.0.1", sink.port), message(), timeout=5, before_data=before_data)
    assert sink.messages == []
