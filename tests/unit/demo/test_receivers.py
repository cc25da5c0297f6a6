"""The demo's webhook receiver checks Standard Webhooks signatures and prints each delivery once."""

from __future__ import annotations

import base64
import io
import json
import os
from datetime import UTC, datetime

import httpx
from standardwebhooks.webhooks import Webhook

from demo.webhook_receiver import build_app

SECRET = "whsec_" + base64.b64encode(os.urandom(24)).decode()


def signed(body: str, message_id: str, secret: str = SECRET) -> dict[str, str]:
    now = datetime.now(UTC)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, now, body),
        "content-type": "application/json",
    }


async def test_a_signed_delivery_is_printed_once_and_a_forged_one_refused() -> None:
    out = io.StringIO()
    body = json.dumps({
        "stage": "breached",
        "alert": {"severity": "critical", "reason": "deadline_breached", "reference": "MV-2026-0001",
                  "kommune": "0265", "title": "Indbrud i privat hjem"},
        "text": "Fristen er overskredet\nmere tekst",
        "ack_url": "http://127.0.0.1:8003/ack/abc",
    })  # fmt: skip
    transport = httpx.ASGITransport(app=build_app(SECRET, out=out))
    async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as client:
        first = await client.post("/vagtchef", content=body, headers=signed(body, "msg_a"))
        repeat = await client.post("/vagtchef", content=body, headers=signed(body, "msg_a"))
        forged = await client.post("/vagtchef", content=body, headers=signed(body, "msg_b", secret="whsec_" + "A" * 32))
        tampered = await client.post("/vagtchef", content=body.replace("0265", "0316"), headers=signed(body, "msg_c"))
        counts = (await client.get("/stats")).json()
    assert (first.status_code, repeat.status_code) == (204, 204)
    assert forged.status_code == 401 and tampered.status_code == 401
    assert counts == {"verified": 1, "rejected": 2, "repeats": 1}
    printed = out.getvalue()
    assert printed.count("signature ok") == 1
    assert "MV-2026-0001" in printed and "deadline_breached" in printed and "http://127.0.0.1:8003/ack/abc" in printed


def test_the_smtp_sink_prints_what_it_accepts() -> None:
    import smtplib
    from email.message import EmailMessage

    from aiosmtpd.controller import Controller

    from demo.smtp_sink import PrintMessages
    from tests.support.services import free_port

    out = io.StringIO()
    port = free_port()
    controller = Controller(PrintMessages(out), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        message = EmailMessage()
        message["From"], message["To"] = "notify@politi.example", "lb-roskilde-1@politi.example"
        message["Subject"] = "Advarsel: frist for MV-2026-0001"
        message.set_content("Fristen udløber kl. 14:03.\nKvittér her: http://127.0.0.1:8003/ack/abc")
        with smtplib.SMTP("127.0.0.1", port, timeout=5) as smtp:
            smtp.send_message(message)
    finally:
        controller.stop()
    printed = out.getvalue()
    assert "to lb-roskilde-1@politi.example: Advarsel: frist for MV-2026-0001" in printed
    assert "Fristen udløber kl. 14:03." in printed
