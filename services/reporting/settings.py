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
