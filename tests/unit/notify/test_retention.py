"""Notify's retention: the cut-offs follow the settings, and the settings read ISO 8601 durations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from services.notify.domain.retention import ACK_LINK_MARGIN, Retention
from services.notify.settings import NotifySettings
from tests.unit.platform.test_edge import notify

NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def test_cutoffs_count_back_from_now() -> None:
    cut = Retention(deliveries=timedelta(days=90), audit=timedelta(days=1825),
                    ack_link_max_age=timedelta(hours=24)).cutoffs(NOW)  # fmt: skip
    assert cut.deliveries_of_alerts_resolved_before == NOW - timedelta(days=90)
    assert cut.endpoints_disabled_before == NOW - timedelta(days=90)
    assert cut.alerts_resolved_before == cut.case_refs_seen_before == NOW - timedelta(days=1825)
    assert cut.ack_links_used_before == NOW - timedelta(hours=24) - ACK_LINK_MARGIN


def test_settings_default_to_90_days_and_5_years_and_read_durations(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = NotifySettings()
    assert (defaults.delivery_retention, defaults.audit_retention) == (timedelta(days=90), timedelta(days=1825))
    monkeypatch.setenv("NOTIFY_DELIVERY_RETENTION", "P30D")
    monkeypatch.setenv("NOTIFY_AUDIT_RETENTION", "P10Y")
    read = NotifySettings()
    assert (read.delivery_retention, read.audit_retention) == (timedelta(days=30), timedelta(days=3650))
    monkeypatch.setenv("NOTIFY_DELIVERY_RETENTION", "-P1D")
    with pytest.raises(ValidationError, match="cannot be negative"):
        NotifySettings()


def test_notify_runs_its_purge_with_the_settings_retentions() -> None:
    app = notify(delivery_retention=timedelta(days=30), ack_link_max_age_seconds=3600)
    purge = app.state.retention_purge
    assert purge.retention == Retention(
        deliveries=timedelta(days=30), audit=timedelta(days=1825), ack_link_max_age=timedelta(hours=1)
    )
    assert any(getattr(loop, "__name__", "") == "retention_loop" for loop in app.state.runtime.loops)
