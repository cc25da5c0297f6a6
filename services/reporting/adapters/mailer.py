"""The council report as an e-mail: Danish text, the PDF attached, a Message-ID fixed per recipient; sent over SMTP."""

from __future__ import annotations

import hashlib
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime

from shared.smtp import BeforeData, SmtpResult, SmtpServer, send_message


class CouncilMailer:
    def __init__(self, server: SmtpServer, sender: str, *, timeout: float) -> None:
        self.server = server
        self.sender = sender
        self.timeout = timeout

    @property
    def domain(self) -> str:
        """The Message-IDs' right-hand side: the sender's domain."""
        return self.sender.rpartition("@")[2] or "politi.example"

    def message(self, *, to: str, subject: str, text: str, message_id: str, composed_at: datetime, pdf: bytes,
                filename: str) -> EmailMessage:  # fmt: skip
        """The e-mail; every try of one recipient's message gives the same headers, text and attachment."""
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = to
        msg["Subject"] = subject
        # When the message was composed (the report rendered), as RFC 5322 means Date: the same on a retry.
        msg["Date"] = format_datetime(composed_at)
        msg["Message-ID"] = message_id
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a robot
        msg.set_content(text, charset="utf-8")
        msg.add_attachment(pdf, maintype="application", subtype="pdf", filename=filename)
        # A boundary of its own, not a random one: a repeat is the same message byte for byte.
        msg.set_boundary("=_raadsrapport_" + hashlib.sha256(message_id.encode()).hexdigest()[:24])
        msg["Content-Language"] = "da"  # after set_content, which replaces every Content-* header
        return msg

    async def send(self, message: EmailMessage, *, timeout: float, before_data: BeforeData) -> SmtpResult:
        """One conversation, bounded by `timeout` (at most the mailer's own)."""
        return await send_message(self.server, message, timeout=min(self.timeout, timeout), before_data=before_data)
