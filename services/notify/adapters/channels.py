"""Outbound channels: Standard Webhooks-signed JSON over HTTP, and Danish e-mail over SMTP."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import math
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

import aiosmtplib
import httpx

from services.notify.domain.delivery import Outcome, Verdict, http_outcome


def sign(secret: str, message_id: str, timestamp: int, body: str) -> str:
    """`v1,<base64 HMAC-SHA256>` of `id.timestamp.body` with the endpoint's `whsec_` secret (Standard Webhooks)."""
    key = base64.b64decode(secret.removeprefix("whsec_") + "==")
    digest = hmac.new(key, f"{message_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class WebhookClient:
    def __init__(self, timeout: float = 10.0) -> None:
        # httpx's timeout is per step (connect, each read): a receiver that trickles its answer
        # would hold a send far past the delivery's lease. `timeout` also bounds the whole send.
        self._timeout = timeout
        self._client = httpx.AsyncClient(timeout=timeout, follow_redirects=False)

    async def send(self, url: str, secret: str, delivery_id: str, payload: dict[str, Any], now: datetime,
                   *, timeout: float | None = None) -> Outcome:  # fmt: skip
        """One POST. `delivery_id` is the webhook-id: the same across retries, so a receiver can drop repeats.

        `timeout` shortens the bound for this send (the time its lease has left), never lengthens it.
        """
        bound = self._timeout if timeout is None else min(self._timeout, timeout)
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        timestamp = math.floor(now.timestamp())
        headers = {
            "content-type": "application/json",
            "webhook-id": delivery_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret, delivery_id, timestamp, body),
            "user-agent": "mvsj-notify/1.0",
        }
        try:
            async with asyncio.timeout(bound):
                response = await self._client.post(url, content=body.encode(), headers=headers)
        except TimeoutError:
            return Outcome("retry", f"no complete answer within {bound:g} s")
        except httpx.HTTPError as exc:
            return Outcome("retry", f"{type(exc).__name__}: {exc}".strip(": ")[:300])
        return http_outcome(response.status_code, response.headers.get("retry-after"), now)

    async def close(self) -> None:
        await self._client.aclose()


class EmailClient:
    """SMTP with aiosmtplib; the Message-ID is derived from the delivery id, so a resend is recognisable."""

    def __init__(self, host: str, port: int, sender: str, *, timeout: float = 10.0, starttls: bool = False,
                 use_tls: bool = False, username: str | None = None, password: str | None = None) -> None:  # fmt: skip
        self.host = host
        self.port = port
        self.sender = sender
        self.timeout = timeout
        self.starttls = starttls
        self.use_tls = use_tls
        self.username = username
        self.password = password

    def message(self, to: str, subject: str, text: str, delivery_id: str, now: datetime) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = to
        msg["Subject"] = subject
        msg["Date"] = format_datetime(now)
        domain = self.sender.rpartition("@")[2] or "notify.local"
        msg["Message-ID"] = f"<{delivery_id}@{domain}>"
        msg.set_content(text, charset="utf-8")
        msg["Content-Language"] = "da"  # after set_content, which replaces every Content-* header
        return msg

    async def send(self, to: str, subject: str, text: str, delivery_id: str, now: datetime,
                   *, timeout: float | None = None) -> Outcome:  # fmt: skip
        """One message in one SMTP conversation, bounded as a whole by `timeout` (at most the client's own).

        Once the server has answered 250 to the message it is the server's: it counts as delivered
        even if QUIT then goes unanswered, so a slow goodbye never sends the message twice. Only a
        250 that arrives after the bound (or never) leaves us not knowing; that is retried, with the
        same Message-ID.
        """
        msg = self.message(to, subject, text, delivery_id, now)
        bound = self.timeout if timeout is None else min(self.timeout, timeout)
        deadline = asyncio.get_running_loop().time() + bound
        # aiosmtplib's timeout is per command; the whole conversation is bounded too (see WebhookClient).
        smtp = aiosmtplib.SMTP(hostname=self.host, port=self.port, timeout=bound, start_tls=self.starttls,
                               use_tls=self.use_tls, username=self.username, password=self.password)  # fmt: skip
        try:
            async with asyncio.timeout_at(deadline):
                await smtp.connect()  # EHLO, STARTTLS and AUTH as configured
                await smtp.send_message(msg)
            # Delivered. QUIT is a courtesy within what is left of the bound; whatever becomes of it changes nothing.
            with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                async with asyncio.timeout_at(deadline):
                    await smtp.quit()
        except aiosmtplib.SMTPRecipientsRefused as exc:
            return Outcome("failed", f"SMTP refused the recipient: {exc}"[:300])
        except aiosmtplib.SMTPResponseException as exc:
            # 5xx is permanent (mailbox unknown, policy); 4xx is "try later".
            verdict: Verdict = "failed" if 500 <= exc.code < 600 else "retry"
            return Outcome(verdict, f"SMTP {exc.code}: {exc.message}"[:300])
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return Outcome("retry", f"{type(exc).__name__}: {exc}"[:300])
        finally:
            smtp.close()
        return Outcome("delivered", "SMTP 250")


__all__ = ["EmailClient", "WebhookClient", "sign"]
