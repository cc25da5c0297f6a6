"""Settings of the notify service (env prefix NOTIFY_; ROSTER_FILE and ALERT_POLICY_FILE as SPEC names them)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from services.notify.adapters.policy_file import DEFAULT_POLICY_FILE
from services.notify.adapters.roster_file import DEFAULT_ROSTER_FILE
from shared.settings import MailSettings

DEV_ACK_SECRET = "dev-notify-ack-secret-not-for-production"  # noqa: S105 - refused in production
# Time a delivery's lease must leave after the longest send: recording the result. The delivery
# worker keeps it free at the start of every send (a send with less left is handed back, not started).
LEASE_MARGIN_SECONDS = 2.0


class NotifySettings(MailSettings):
    # hide_input_in_errors: a refused setting is named with its reason, never echoed (it may be a secret).
    model_config = SettingsConfigDict(
        env_prefix="NOTIFY_", extra="ignore", populate_by_name=True, env_file=".env", hide_input_in_errors=True
    )

    db_schema: str = "notify"
    port: int = 8003
    # The largest body taken (NOTIFY_MAX_BODY_BYTES): an ack ({"by": <64 characters>}), an ack link's
    # form (its token, a few hundred bytes) and the console's sign-out form are each under 1 KiB (the
    # sign-in comes back from the identity provider as a GET); 4 KiB is plenty.
    max_body_bytes: int = Field(4 * 1024, ge=1024)
    roster_file: Path = Field(DEFAULT_ROSTER_FILE, validation_alias=AliasChoices("ROSTER_FILE", "roster_file"))
    alert_policy_file: Path = Field(
        DEFAULT_POLICY_FILE, validation_alias=AliasChoices("ALERT_POLICY_FILE", "alert_policy_file")
    )
    # Where officers' ack links point (this service as they reach it).
    public_url: str = "http://127.0.0.1:8003"
    ack_secret: str = Field(DEV_ACK_SECRET, min_length=16, repr=False)
    # Secrets ack links were signed with before the last rotation: still accepted, never used to sign,
    # so links in flight keep working until they expire. Comma-separated in the environment.
    ack_previous_secrets: Annotated[list[str], NoDecode] = Field(default_factory=list, repr=False)
    ack_link_max_age_seconds: int = Field(24 * 3600, ge=60)
    smtp_from: str = "notify@politi.example"
    # Delivery: a lease longer than any one send, renewed while the worker sends and records (every
    # third of it), so a live worker never loses a delivery to another; a dead one's runs out.
    send_timeout_seconds: float = Field(10.0, gt=0)
    delivery_lease_seconds: float = Field(30.0, gt=0)
    delivery_batch_size: int = Field(200, ge=1, le=5000)
    delivery_concurrency: int = Field(50, ge=1, le=1000)
    retry_base_seconds: float = Field(1.0, gt=0)
    retry_cap_seconds: float = Field(300.0, gt=0)
    max_attempts: int = Field(6, ge=1)
    timer_batch_size: int = Field(200, ge=1, le=5000)
    # Consumers of deadlines.v1 in this instance: partitions are handled in parallel, each in order.
    consumer_workers: int = Field(3, ge=1, le=64)
    max_sleep_seconds: float = Field(5.0, gt=0)
    gauges_interval_seconds: float = Field(15.0, gt=0)
    # How far ahead the rota is checked for gaps at start-up.
    rota_check_days: int = Field(28, ge=1, le=366)
    # The police API of intake and deadlines, called as the signed-in officer from the console
    # (NOTIFY_INTAKE_URL, NOTIFY_DEADLINES_URL): "Vis anmeldelse" and the follow-up list.
    intake_url: str = "http://127.0.0.1:8001"
    deadlines_url: str = "http://127.0.0.1:8002"
    police_api_timeout_seconds: float = Field(5.0, gt=0)
    heartbeat_url: str | None = None
    heartbeat_interval_seconds: float = Field(60.0, gt=0)
    # Retention (docs/privacy.md, "Notify: officers' data"), ISO 8601 durations counted from an alert's
    # resolution; an unresolved alert keeps everything. Deliveries hold officers' addresses: kept long
    # enough to answer "was I told?"; the audit trail (who acknowledged, when) as long as the access log.
    delivery_retention: timedelta = timedelta(days=90)
    audit_retention: timedelta = timedelta(days=5 * 365)
    # The purge job: how often it looks, and how many rows one statement deletes at most.
    purge_interval_seconds: float = Field(3600.0, gt=0)
    purge_batch_size: int = Field(1000, ge=1, le=50_000)

    @field_validator("delivery_retention", "audit_retention")
    @classmethod
    def _not_negative(cls, value: timedelta) -> timedelta:
        if value < timedelta(0):
            raise ValueError("a retention cannot be negative")
        return value

    @field_validator("ack_previous_secrets", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("ack_previous_secrets")
    @classmethod
    def _previous_secrets_are_secrets(cls, value: list[str]) -> list[str]:
        if any(len(secret) < 16 for secret in value):
            # Never echo a secret in the error: say which one by position only.
            short = [str(i + 1) for i, secret in enumerate(value) if len(secret) < 16]
            raise ValueError(f"each secret needs at least 16 characters; too short: #{', #'.join(short)}")
        return value

    @model_validator(mode="after")
    def _lease_outlasts_a_send(self) -> NotifySettings:
        # A send is bounded by the send timeout; the lease must outlast it and the recording of its
        # result, or a live worker's delivery is taken over by another and sent twice.
        if self.delivery_lease_seconds <= self.send_timeout_seconds + LEASE_MARGIN_SECONDS:
            raise ValueError(
                f"NOTIFY_DELIVERY_LEASE_SECONDS ({self.delivery_lease_seconds:g}) must be more than"
                f" NOTIFY_SEND_TIMEOUT_SECONDS ({self.send_timeout_seconds:g}) + {LEASE_MARGIN_SECONDS:g} s,"
                " so a send in flight never loses its lease"
            )
        return self

    def check_for_production(self) -> None:
        super().check_for_production()
        if not self.is_development and self.ack_secret == DEV_ACK_SECRET:
            raise ValueError(
                "NOTIFY_ACK_SECRET is the development secret (it is public) and ENVIRONMENT is not development:"
                " set NOTIFY_ACK_SECRET to a long random value, or ENVIRONMENT=development on a developer's machine"
            )
        if not self.is_development and DEV_ACK_SECRET in self.ack_previous_secrets:
            raise ValueError(
                "NOTIFY_ACK_PREVIOUS_SECRETS holds the development secret (it is public: anyone could sign a link)"
                " and ENVIRONMENT is not development: remove it from the list"
            )
        # The console signs officers in through the identity provider (OIDC_CLIENT_SECRET, OIDC_ISSUER_URL).
        self.check_web_sign_in()
        if not self.is_development and not self.public_url.lower().startswith("https://"):
            # An ack link is a bearer credential: over plain http anyone on the path can take it.
            raise ValueError(
                f"NOTIFY_PUBLIC_URL ({self.public_url}) is not https and ENVIRONMENT is not development:"
                " ack links carry a credential; set NOTIFY_PUBLIC_URL to the https address officers reach"
            )
        self.check_smtp_tls("e-mails carry ack links")
