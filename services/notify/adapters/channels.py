"""Outbound channels: Standard Webhooks-signed JSON over HTTP, and Danish e-mail over SMTP."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import math
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

import httpx

from services.notify.domain.delivery import Outcome, http_outcome
from shared.smtp import SmtpServer, send_message


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
        self.server = SmtpServer(host, port, starttls=starttls, use_tls=use_tls, username=username, password=password)
        self.sender = sender
        self.timeout = timeout

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

        A message the server answered 250 to is delivered, even if QUIT then goes unanswered
        (shared/smtp.py). Only a 250 that arrives after the bound (or never) leaves us not knowing;
        that is retried, with the same Message-ID.
        """
        msg = self.message(to, subject, text, delivery_id, now)
        bound = self.timeout if timeout is None else min(self.timeout, timeout)
        result = await send_message(self.server, msg, timeout=bound)
        return Outcome(result.verdict, result.detail if result.verdict != "delivered" else "SMTP 250")


__all__ = ["EmailClient", "WebhookClient", "sign"]
