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
    assert counts == {"verified": 1, "rejected": 2, "repeats": 1, "alertmanager": 0}
    printed = out.getvalue()
    assert printed.count("signature ok") == 1
    assert "MV-2026-0001" in printed and "deadline_breached" in printed and "http://127.0.0.1:8003/ack/abc" in printed


async def test_an_alertmanager_notification_needs_the_bearer_token_and_is_printed_per_alert() -> None:
    out = io.StringIO()
    body = json.dumps({
        "receiver": "ops-oncall", "status": "firing",
        "alerts": [
            {"status": "firing", "labels": {"alertname": "ServiceDown", "severity": "critical", "service": "intake"},
             "annotations": {"summary": "intake does not answer /metrics"}},
            {"status": "resolved", "labels": {"alertname": "ServiceDown", "severity": "critical", "service": "notify"},
             "annotations": {"summary": "notify does not answer /metrics"}},
        ],
    })  # fmt: skip
    transport = httpx.ASGITransport(app=build_app(SECRET, alertmanager_token="t0ken", out=out))
    async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as client:
        good = await client.post("/alertmanager/ops-oncall", content=body, headers={"Authorization": "Bearer t0ken"})
        wrong = await client.post("/alertmanager/ops-oncall", content=body, headers={"Authorization": "Bearer nope"})
        bare = await client.post("/alertmanager/ops-oncall", content=body)
        counts = (await client.get("/stats")).json()
    assert (good.status_code, wrong.status_code, bare.status_code) == (204, 401, 401)
    assert counts["alertmanager"] == 1 and counts["rejected"] == 2
    printed = out.getvalue()
    assert "[alertmanager] to ops-oncall: FIRING  ServiceDown  critical  intake  intake does not answer" in printed
    assert "RESOLVED  ServiceDown  critical  notify" in printed


async def test_without_a_configured_token_every_alertmanager_notification_is_refused() -> None:
    transport = httpx.ASGITransport(app=build_app(SECRET, out=io.StringIO()))
    async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as client:
        answer = await client.post("/alertmanager/ops-oncall", content="{}", headers={"Authorization": "Bearer "})
    assert answer.status_code == 401


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


def test_the_smtp_sink_names_a_council_reports_attachment() -> None:
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
        message["From"], message["To"] = "raadsrapporter@politi.example", "kredsraad@politi.example"
        message["Subject"] = "Rådsrapport 3. kvartal 2026: Midt- og Vestsjællands Politi, hele kredsen"
        message["Message-ID"] = "<kredsraad.2026-Q3.0123456789abcdef@politi.example>"
        message.set_content("Til Kredsrådet")
        message.add_attachment(b"%PDF" + bytes(4096), maintype="application", subtype="pdf",
                               filename="raadsrapport-kreds-2026-Q3.pdf")  # fmt: skip
        with smtplib.SMTP("127.0.0.1", port, timeout=5) as smtp:
            smtp.send_message(message)
    finally:
        controller.stop()
    printed = out.getvalue()
    assert "to kredsraad@politi.example: Rådsrapport 3. kvartal 2026" in printed
    assert (
        "vedhæftet: raadsrapport-kreds-2026-Q3.pdf (application/pdf, 4 kB), Message-ID"
        " <kredsraad.2026-Q3.0123456789abcdef@politi.example>"
    ) in printed
