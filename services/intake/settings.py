"""Settings of the intake service (env prefix INTAKE_; the shared names of docs/contract.md without a prefix)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class IntakeSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INTAKE_", extra="ignore", populate_by_name=True, env_file=".env")

    db_schema: str = "intake"
    port: int = 8001
    pool_max_size: int = Field(10, ge=1, le=200)
    # A request waits at most this long for a database connection, then answers 503: a citizen
    # is told to try again instead of watching a spinner while Postgres is away.
    db_acquire_timeout_seconds: float = Field(5.0, gt=0)
    # The largest body accepted: a 4,000-character description in any script fits many times over.
    max_body_bytes: int = Field(64 * 1024, ge=1024)
    # Per API key, per instance (the buckets live in process memory): N instances allow N times this.
    # A key is a whole system (the portal, a police system), not a person: the limit stops a runaway
    # client at 10/s, far under what one instance takes (~500/s), while a police system catching up
    # after an outage, or the accelerated demo, gets through.
    rate_limit_per_minute: float = Field(600.0, gt=0)
    rate_limit_burst: int = Field(120, ge=1)
    # Idempotency keys are kept this long; a replay after that is treated as a new request.
    idempotency_retention_hours: float = Field(7 * 24, gt=0)
