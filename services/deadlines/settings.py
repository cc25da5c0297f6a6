"""Settings of the deadlines service (env prefix DEADLINES_; DEADLINE_RULES_FILE as docs/contract.md names it)."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from services.deadlines.adapters.rules_file import DEFAULT_RULES_FILE
from shared.settings import ServiceSettings


class DeadlinesSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DEADLINES_", extra="ignore", populate_by_name=True, env_file=".env")

    db_schema: str = "deadlines"
    port: int = 8002
    # DEADLINES_MAX_BODY_BYTES: its API only reads (GET), so no request needs a body; 4 KiB is plenty.
    max_body_bytes: int = Field(4 * 1024, ge=1024)
    rules_file: Path = Field(
        DEFAULT_RULES_FILE, validation_alias=AliasChoices("DEADLINE_RULES_FILE", "deadline_rules_file")
    )
    # The timer claims due deadlines in batches; the sleep cap only guards against a lost wake-up.
    scheduler_batch_size: int = Field(500, ge=1, le=10_000)
    scheduler_max_sleep_seconds: float = Field(5.0, gt=0)
    gauges_interval_seconds: float = Field(15.0, gt=0)
    # How often the consumer's progress on cases.v1 is recorded: the breach gate moves in these steps,
    # so a warning or breach fires up to this much (plus the timer's short poll) after its due time.
    progress_interval_seconds: float = Field(0.25, gt=0)
