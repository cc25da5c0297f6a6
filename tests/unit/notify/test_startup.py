"""Start-up checks: a rota gap is a warning naming the span; a bad data file stops start-up naming the entry."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.notify.bootstrap import build_app
from services.notify.settings import DEV_ACK_SECRET, NotifySettings
from shared.clock import ManualClock
from shared.datafile import DataFileError
from tests.support.notify import roster_document, write_roster


def test_a_rota_gap_is_a_start_up_warning_naming_the_span(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    days_only = [{"officer": "vc-a", "rrule": "FREQ=DAILY", "from": "2026-01-01", "start": "07:00", "end": "19:00"}]
    roster = write_roster(tmp_path / "r.yaml", roster_document(rota=days_only))
    with caplog.at_level(logging.WARNING, logger="services.notify.bootstrap"):
        build_app(NotifySettings(roster_file=roster, rota_check_days=1),
                  clock=ManualClock(datetime(2026, 5, 4, 10, tzinfo=UTC)))  # fmt: skip
    assert "the vagtchef rota has gaps" in caplog.text
    assert "2026-05-04 19:00 - 2026-05-05 07:00" in caplog.text  # Danish local time


def test_a_bad_roster_stops_start_up_and_names_the_entry(tmp_path: Path) -> None:
    document = roster_document()
    document["kommuner"]["0265"]["lokalbetjente"][0]["channels"] = [{"type": "email", "to": "nobody"}]
    roster = write_roster(tmp_path / "r.yaml", document)
    with pytest.raises(DataFileError, match=r"kommuner\.0265\.lokalbetjente #1 \(lb-roskilde-1\)\.channels #1\.to"):
        build_app(NotifySettings(roster_file=roster))


def test_production_refuses_the_development_ack_secret() -> None:
    settings = NotifySettings(environment="production", api_keys_file=Path("/elsewhere/keys.yaml"),
                              database_url="postgresql://u:secret@db/politi")  # fmt: skip
    with pytest.raises(ValueError, match="NOTIFY_ACK_SECRET"):
        settings.check_for_production()


def _production(**over: object) -> NotifySettings:
    base: dict[str, object] = {
        "environment": "production", "api_keys_file": Path("/elsewhere/keys.yaml"),
        "database_url": "postgresql://u:secret@db/politi", "ack_secret": "a-long-random-production-secret",
        "oidc_client_secret": "another-long-random-production-secret",
        "oidc_issuer_url": "https://login.politi.example/realms/mvsj",
        "public_url": "https://varsler.politi.example", "smtp_starttls": True,
    }  # fmt: skip
    return NotifySettings(**(base | over))  # type: ignore[arg-type]


def test_production_refuses_ack_links_over_plain_http() -> None:
    with pytest.raises(ValueError, match=r"NOTIFY_PUBLIC_URL .* is not https"):
        _production(public_url="http://varsler.politi.example").check_for_production()


def test_production_refuses_smtp_without_tls() -> None:
    with pytest.raises(ValueError, match="NOTIFY_SMTP_STARTTLS=true"):
        _production(smtp_starttls=False).check_for_production()
    _production(smtp_starttls=False, smtp_use_tls=True).check_for_production()  # implicit TLS will do
    _production().check_for_production()


def test_production_refuses_the_development_ack_secret_among_the_previous_ones() -> None:
    with pytest.raises(ValueError, match="NOTIFY_ACK_PREVIOUS_SECRETS holds the development secret"):
        _production(ack_previous_secrets=[DEV_ACK_SECRET]).check_for_production()
    _production(ack_previous_secrets=["an-older-production-secret"]).check_for_production()


def test_development_may_use_plain_http_and_smtp() -> None:
    NotifySettings(environment="development", public_url="http://127.0.0.1:8003").check_for_production()
