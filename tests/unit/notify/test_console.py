"""The console's pure parts: what an alert shows (Danish labels, no addresses) and the production secret check."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.notify.adapters.police_api import PoliceApiError
from services.notify.entrypoints.console import ConsoleFeed, console_alert, refusal_da, shown_report
from services.notify.settings import NotifySettings


def _row(**over: object) -> dict[str, object]:
    at = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    return {
        "id": uuid.uuid4(), "reference": "MV-1234-ABC", "title": "Frist", "category": "burglary_home",
        "kommune": "0265", "severity": "critical", "state": "escalated", "reason": "deadline_breached", "level": 1,
        "due_at": at, "raised_at": at, "acknowledged_at": None, "acknowledged_by": None, "acknowledged_by_name": None,
        "resolved_at": None,
        "next_timer_at": at, "resolved_reason": None,
    } | over  # fmt: skip


def test_an_alert_shows_danish_labels_and_recipients_by_name_only() -> None:
    delivery = {"recipient_name": "Vagtchef A", "channel": "email", "stage": "n-escalated-1", "state": "delivered",
                "attempts": 2, "delivered_at": None, "created_at": datetime(2026, 3, 29, tzinfo=UTC),
                "target": "vagtchef@politi.example"}  # fmt: skip
    shown = console_alert(_row(), [delivery])
    assert (shown["kommune_name"], shown["category_da"]) == ("Roskilde", "Indbrud i privat hjem")
    assert (shown["severity_da"], shown["state_da"], shown["reason_da"]) == (
        "Kritisk",
        "Eskaleret",
        "Frist overskredet",
    )
    assert shown["deliveries"] == [{"recipient": "Vagtchef A", "channel": "e-mail", "stage": "Eskaleret (trin 1)",
                                    "kind": "escalated", "state": "leveret", "attempts": 2, "at": "2026-03-29T00:00:00+00:00"}]  # fmt: skip
    assert "politi.example" not in str(shown)  # an officer's address is not the console's business


def test_a_withdrawn_breach_shows_why_it_was_taken_back() -> None:
    # Due 00:30 Copenhagen time (29 March): the patrol was on scene at 00:20, before it.
    due = datetime(2026, 3, 28, 23, 30, tzinfo=UTC)
    shown = console_alert(_row(state="resolved", resolved_reason="breach_withdrawn", due_at=due, case_id=uuid.uuid4(),
                               generation=0, resolved_action="on_scene",
                               resolved_action_at=datetime(2026, 3, 28, 23, 20, tzinfo=UTC)), [])  # fmt: skip
    assert (shown["state_da"], shown["resolved_reason"], shown["resolved_da"]) == (
        "Afsluttet", "breach_withdrawn", "overskridelsen er trukket tilbage",
    )  # fmt: skip
    assert shown["withdrawal_da"].startswith("Fristoverskridelsen er trukket tilbage, fordi handlingen (Patrulje")
    assert "kl. 00:20 (29.03.2026), før fristen (29.03.2026 kl. 00:30)" in shown["withdrawal_da"]
    assert console_alert(_row(), [])["withdrawal_da"] is None


def test_an_unknown_code_is_shown_as_it_is() -> None:
    shown = console_alert(_row(kommune="9999", category="new_category"), [])
    assert (shown["kommune_name"], shown["category_da"]) == ("9999", "new_category")


def test_production_refuses_the_development_realms_client_secret_and_a_plain_http_provider() -> None:
    settings = NotifySettings(environment="production", api_keys_file=Path("/elsewhere/keys.yaml"),
                              database_url="postgresql://u:secret@db/politi", ack_secret="a-real-ack-secret-0123456789",
                              public_url="https://varsler.politi.example", smtp_starttls=True)  # fmt: skip
    with pytest.raises(ValueError, match="OIDC_CLIENT_SECRET"):
        settings.check_for_production()
    with pytest.raises(ValueError, match=r"OIDC_ISSUER_URL .* is not https"):
        settings.model_copy(update={"oidc_client_secret": "x" * 40}).check_for_production()
    settings.model_copy(update={"oidc_client_secret": "x" * 40,
                                "oidc_issuer_url": "https://login.politi.example/realms/mvsj"}).check_for_production()  # fmt: skip


async def test_a_console_that_falls_behind_is_told_to_start_again_and_dropped() -> None:
    feed = ConsoleFeed("notify", queue_size=2)
    with feed.subscribe() as slow, feed.subscribe() as quick:
        for n in range(3):
            feed.publish([{"n": n}])
            assert await quick.get() == [{"n": n}]
        assert slow.qsize() == 1 and slow.get_nowait() is None  # its backlog gone, one last word
        feed.publish([{"n": 3}])
        assert slow.empty() and await quick.get() == [{"n": 3}]


def test_the_report_view_shows_the_report_and_its_logged_read_and_an_erasure_has_its_date() -> None:
    details = {
        "case_id": str(uuid.uuid4()), "reference": "MV-1234-ABC", "kind": "report", "category": "burglary_home",
        "kommune": "0265", "received_at": "2026-03-29T00:30:00+00:00", "anonymous": False,
        "description": "Døren brudt op", "address": "Strandvejen 12", "postcode": "4040", "position": None,
        "institution": None, "contact": {"name": "Mette", "phone": "+4520304050", "email": None},
        "contact_erased_at": None, "fields": ["description", "address"],
        "logged": {"id": 7, "at": "2026-03-29T01:00:00+00:00", "purpose": "acute_response"},
    }  # fmt: skip
    shown = shown_report(details)
    assert (shown["address"], shown["postcode"], shown["description"]) == ("Strandvejen 12", "4040", "Døren brudt op")
    assert (shown["kommune_name"], shown["category_da"]) == ("Roskilde", "Indbrud i privat hjem")
    assert shown["contact"] == {"name": "Mette", "phone": "+4520304050", "email": None}
    assert shown["logged"] == {"at": "2026-03-29T01:00:00+00:00", "purpose": "acute_response",
                               "purpose_da": "akut indsats (acute_response)"}  # fmt: skip
    assert shown_report(details | {"contact": None, "anonymous": True})["contact"] is None

    # Erased late on 4 December (UTC) is the 5th in Copenhagen: the officer's own date.
    erased = PoliceApiError(410, "Anmeldelsens personoplysninger er slettet.",
                            erased_at=datetime(2026, 12, 4, 23, 30, tzinfo=UTC))  # fmt: skip
    assert refusal_da(erased) == "Anmeldelsens personoplysninger er slettet den 05.12.2026."
    assert refusal_da(PoliceApiError(403, "Sagen ligger uden for din adgang.")) == "Sagen ligger uden for din adgang."
