"""Settings of the intake service (env prefix INTAKE_; the shared names of docs/contract.md without a prefix)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import SettingsConfigDict

from shared.officers import DEFAULT_ROSTER_FILE
from shared.settings import ServiceSettings


class IntakeSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INTAKE_", extra="ignore", populate_by_name=True, env_file=".env")

    db_schema: str = "intake"
    port: int = 8001
    pool_max_size: int = Field(10, ge=1, le=200)
    # A request waits at most this long for a database connection, then answers 503: a citizen
    # is told to try again instead of watching a spinner while Postgres is away.
    db_acquire_timeout_seconds: float = Field(5.0, gt=0)
    # The largest body taken (INTAKE_MAX_BODY_BYTES): the largest valid report, every text field at
    # its longest and written as JSON escapes of characters outside the BMP (12 bytes each), is
    # 56 KiB (tests/unit/intake/test_http.py); 64 KiB keeps room for it and not much more.
    max_body_bytes: int = Field(64 * 1024, ge=1024)
    # Rate limits: RATE_LIMIT_* and ANONYMOUS_RATE_LIMIT_* (shared ServiceSettings) for submissions,
    # actions and unauthenticated requests; the portal's status polling has a bucket of its own,
    # so citizens refreshing status pages never use up the portal's submissions (and the reverse).
    status_rate_limit_per_minute: float = Field(1200.0, gt=0)
    status_rate_limit_burst: int = Field(240, ge=1)
    # Idempotency keys are kept this long; a replay after that is treated as a new request.
    idempotency_retention_hours: float = Field(7 * 24, gt=0)
    # The roster (ROSTER_FILE, the same file notify reads): the officers a police system's key may read
    # a report for (X-On-Behalf-Of). Only their ids, names, roles and kommuner are read here.
    roster_file: Path = Field(DEFAULT_ROSTER_FILE, validation_alias=AliasChoices("ROSTER_FILE", "roster_file"))
    # How long personal data is kept (ISO 8601 durations: P30D, P5Y); docs/privacy.md gives each default's
    # grounds. Contact details and the client address: after the case's last deadline concluded (or its
    # reception, when none ran). The report's text, address, position, institution, and anything
    # personal left: after the case's reception. The access log: after each entry.
    contact_retention: timedelta = timedelta(days=30)
    report_retention: timedelta = timedelta(days=90)
    access_log_retention: timedelta = timedelta(days=5 * 365)
    # The erasure job: how often it looks for what is due, and how many cases per transaction.
    erasure_interval_seconds: float = Field(300.0, gt=0)
    erasure_batch_size: int = Field(200, ge=1, le=10_000)

    @field_validator("contact_retention", "report_retention", "access_log_retention")
    @classmethod
    def _not_negative(cls, value: timedelta) -> timedelta:
        if value < timedelta(0):
            raise ValueError("a retention cannot be negative")
        return value
