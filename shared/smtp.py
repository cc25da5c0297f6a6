"""One e-mail over SMTP (aiosmtplib), bounded as a whole, and what the server's answer means.

Used by notify (alerts) and reporting (council reports); each builds its own message. Once the
server has answered 250 to the message it is the server's: the send counts as delivered even if QUIT
then goes unanswered, so a slow goodbye never sends a message twice. Only a 250 that arrives after
the bound (or never) leaves the sender not knowing; the caller decides what to do then.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, Literal

import aiosmtplib

SmtpVerdict = Literal["delivered", "retry", "failed"]
BeforeData = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class SmtpServer:
    """Where and how to reach the mail server. `starttls` (587) or `use_tls` (implicit TLS, 465)."""

    host: str
    port: int
    starttls: bool = False
    use_tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class SmtpResult:
    verdict: SmtpVerdict
    detail: str
    # How far the conversation got: True once DATA was sent, so the server may hold the message even
    # if no 250 came back. False: nothing can have been delivered.
    data_sent: bool = False


class _SMTP(aiosmtplib.SMTP):
    """aiosmtplib's client with a hook run after the recipients are accepted, just before DATA."""

    def __init__(self, *args: Any, before_data: BeforeData | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._before_data = before_data
        self.data_sent = False

    async def data(self, message: str | bytes, *args: Any, **kwargs: Any) -> aiosmtplib.SMTPResponse:
        if self._before_data is not None:
            await self._before_data()
        self.data_sent = True
        return await super().data(message, *args, **kwargs)


async def send_message(
    server: SmtpServer, message: EmailMessage, *, timeout: float, before_data: BeforeData | None = None
) -> SmtpResult:
    """One message in one SMTP conversation, bounded as a whole by `timeout`.

    `before_data` runs once the server has accepted sender and recipients, just before the message
    itself goes: from then on the server may have it. An exception it raises ends the conversation
    with nothing sent and reaches the caller. 5xx answers are permanent (failed), 4xx and network
    trouble are worth another try (retry).
    """
    deadline = asyncio.get_running_loop().time() + timeout
    # aiosmtplib's timeout is per command; the whole conversation is bounded too.
    smtp = _SMTP(hostname=server.host, port=server.port, timeout=timeout, start_tls=server.starttls,
                 use_tls=server.use_tls, username=server.username, password=server.password,
                 before_data=before_data)  # fmt: skip
    try:
        async with asyncio.timeout_at(deadline):
            await smtp.connect()  # EHLO, STARTTLS and AUTH as configured
            _refused, reply = await smtp.send_message(message)
        # Delivered. QUIT is a courtesy within what is left of the bound; whatever becomes of it changes nothing.
        with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
            async with asyncio.timeout_at(deadline):
                await smtp.quit()
    except aiosmtplib.SMTPRecipientsRefused as exc:
        # A 5xx for the recipient is permanent (no such mailbox); a 4xx (mailbox full, too busy) is not.
        permanent = all(500 <= refused.code < 600 for refused in exc.recipients)
        return SmtpResult("failed" if permanent else "retry", f"SMTP refused the recipient: {exc}"[:300])
    except aiosmtplib.SMTPResponseException as exc:
        # 5xx is permanent (mailbox unknown, policy); 4xx is "try later".
        verdict: SmtpVerdict = "failed" if 500 <= exc.code < 600 else "retry"
        return SmtpResult(verdict, f"SMTP {exc.code}: {exc.message}"[:300], smtp.data_sent)
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        return SmtpResult("retry", f"{type(exc).__name__}: {exc}"[:300], smtp.data_sent)
    finally:
        smtp.close()
    return SmtpResult("delivered", f"SMTP 250 {reply}".strip()[:300], True)
