"""Start-up checks of the council deliveries: a bad plan stops start-up; production refuses the example plan and plain SMTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from services.reporting.bootstrap import build_app
from services.reporting.settings import ReportingSettings
from shared.datafile import DataFileError


def production(**over: Any) -> ReportingSettings:
    values: dict[str, Any] = {
        "environment": "production",
        "api_keys_file": Path("/elsewhere/keys.yaml"),
        "database_url": "postgresql://u:secret@db/politi",
        "council_delivery_plan_file": Path("/etc/mvsj-politi/council-delivery-plan/council-delivery-plan.yaml"),
        "smtp_starttls": True,
        # The council pages' sign-in, as production sets it (its own checks: tests/unit/reporting).
        "oidc_client_secret": "a-real-web-client-secret-0123456789",
        "oidc_issuer_url": "https://login.politi.example/realms/mvsj",
        "public_url": "https://raad.politi.example",
    }
    return ReportingSettings(**(values | over))


def test_a_bad_plan_stops_start_up_and_names_the_entry(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text("version: 1\ndeliveries:\n  - {id: kredsraad, council: kreds, recipients: [nobody]}\n")
    with pytest.raises(DataFileError, match=r"delivery 'kredsraad'\.recipients #1: 'nobody' is not an e-mail address"):
        build_app(ReportingSettings(council_delivery_plan_file=plan))


def test_production_refuses_the_development_plan_and_smtp_without_tls() -> None:
    production().check_for_production()  # the district's plan, STARTTLS: fine
    with pytest.raises(ValueError, match="COUNCIL_DELIVERY_PLAN_FILE is the development plan"):
        production(council_delivery_plan_file=ReportingSettings().council_delivery_plan_file).check_for_production()
    with pytest.raises(ValueError, match="REPORTING_SMTP_STARTTLS=true"):
        production(smtp_starttls=False).check_for_production()
    production(smtp_starttls=False, smtp_use_tls=True).check_for_production()
    ReportingSettings(environment="development").check_for_production()  # a developer's machine: no TLS needed


def test_the_lease_must_outlast_a_send_and_its_recording() -> None:
    with pytest.raises(ValidationError, match="REPORTING_DELIVERY_LEASE_SECONDS"):
        ReportingSettings(delivery_send_timeout_seconds=60, delivery_lease_seconds=61)
    assert ReportingSettings(delivery_send_timeout_seconds=60, delivery_lease_seconds=63).delivery_lease_seconds == 63
