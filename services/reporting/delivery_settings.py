"""Settings of the council report deliveries (the delivery plan): a base of ReportingSettings, read with its prefix.

Their own module, so the plan's settings and their start-up checks read in one place; ReportingSettings
(settings.py) is the one a service and its tests build.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, model_validator

from services.reporting.adapters.delivery_plan_file import DEFAULT_PLAN_FILE
from shared.settings import MailSettings

# Time a send's lease must leave after the longest send: recording the server's answer.
DELIVERY_LEASE_MARGIN_SECONDS = 2.0


class CouncilDeliverySettings(MailSettings):
    """Council reports by e-mail (the delivery plan): the plan file, the mail server, retries and leases."""

    council_delivery_plan_file: Path = Field(
        DEFAULT_PLAN_FILE, validation_alias=AliasChoices("COUNCIL_DELIVERY_PLAN_FILE", "council_delivery_plan_file")
    )
    smtp_from: str = "raadsrapporter@politi.example"
    # A send is bounded as a whole (connect to the server's last answer): a report is a large message.
    delivery_send_timeout_seconds: float = Field(60.0, gt=0)
    # Held by the instance sending (or rendering); renewed while it works, so only a dead one loses it.
    delivery_lease_seconds: float = Field(180.0, gt=0)
    # A failed send (the mail server away, a 4xx) is tried again after 1, 2, 4 ... minutes (half of it
    # jitter), at most an hour apart; after the last attempt it is failed, with its reason, and alerted on.
    delivery_retry_base_seconds: float = Field(60.0, gt=0)
    delivery_retry_cap_seconds: float = Field(3600.0, gt=0)
    delivery_max_attempts: int = Field(8, ge=1, le=100)
    delivery_concurrency: int = Field(5, ge=1, le=100)
    delivery_max_sleep_seconds: float = Field(30.0, gt=0)

    @model_validator(mode="after")
    def _lease_outlasts_a_send(self) -> CouncilDeliverySettings:
        if self.delivery_lease_seconds <= self.delivery_send_timeout_seconds + DELIVERY_LEASE_MARGIN_SECONDS:
            raise ValueError(
                f"REPORTING_DELIVERY_LEASE_SECONDS ({self.delivery_lease_seconds:g}) must be more than"
                f" REPORTING_DELIVERY_SEND_TIMEOUT_SECONDS ({self.delivery_send_timeout_seconds:g})"
                f" + {DELIVERY_LEASE_MARGIN_SECONDS:g} s, so a send in flight never loses its lease"
            )
        return self

    def check_for_production(self) -> None:
        super().check_for_production()
        if self.is_development:
            return
        if self.council_delivery_plan_file.resolve() == DEFAULT_PLAN_FILE.resolve():
            raise ValueError(
                "COUNCIL_DELIVERY_PLAN_FILE is the development plan (example addresses) and ENVIRONMENT is not"
                " development: set COUNCIL_DELIVERY_PLAN_FILE to the district's plan"
            )
        self.check_smtp_tls("council reports and the mail server's password would travel in clear")
