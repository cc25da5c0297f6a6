"""Settings of the reporting service (env prefix REPORTING_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.reporting.delivery_settings import CouncilDeliverySettings


class ReportingSettings(CouncilDeliverySettings):
    # hide_input_in_errors: a refused setting is named with its reason, never echoed (it may be a secret).
    model_config = SettingsConfigDict(
        env_prefix="REPORTING_", extra="ignore", populate_by_name=True, env_file=".env", hide_input_in_errors=True
    )

    db_schema: str = "reporting"
    port: int = 8004
    # REPORTING_MAX_BODY_BYTES: its API only reads (GET), so no request needs a body; 4 KiB is plenty.
    max_body_bytes: int = Field(4 * 1024, ge=1024)
    # No percentage is printed over fewer cases than this (DOMAIN.md: small samples mislead); the
    # count is always shown, and the text says "for få sager" instead of the rate.
    small_number_threshold: int = Field(10, ge=1, le=1000)
    # Rebuild reads the topics in batches and applies each batch in one transaction.
    rebuild_batch_size: int = Field(5000, ge=1, le=100_000)
    # Where browsers reach this service: the council pages' sign-in comes back here (/auth/callback).
    public_url: str = "http://127.0.0.1:8004"
    # The public figures (/offentlig/politigarantier) are computed at most once per this many seconds and
    # instance, whoever asks: a crowd of readers costs the database one read a period.
    public_cache_seconds: float = Field(300.0, ge=0, le=86_400)
    # The licence the open data are published under (the district's decision as publisher).
    open_data_licence: str = "Creative Commons Navngivelse 4.0 International (CC BY 4.0)"
    open_data_licence_url: str = "https://creativecommons.org/licenses/by/4.0/deed.da"

    def check_for_production(self) -> None:
        super().check_for_production()
        # Council secretaries and police sign in to the council pages (OIDC_CLIENT_SECRET, OIDC_ISSUER_URL).
        self.check_web_sign_in()
        if not self.is_development and not self.public_url.lower().startswith("https://"):
            raise ValueError(
                f"REPORTING_PUBLIC_URL ({self.public_url}) is not https and ENVIRONMENT is not development:"
                " the session cookie and the sign-in travel to it; set REPORTING_PUBLIC_URL to the https address"
                " council members reach"
            )
