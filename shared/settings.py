"""Settings every service shares (names as in docs/contract.md, local defaults); services add a prefix."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEV_API_KEYS_FILE = PROJECT_ROOT / "deploy" / "dev-api-keys.yaml"
DEV_OIDC_CLIENT_SECRET = "dev-mvsj-web-secret"  # noqa: S105 (the development realm's web client, public on purpose)
DEV_DATABASE_PASSWORD = "politi:politi@"  # noqa: S105 (user:password@ of `make up`'s local database)
SERVICES = ("intake", "deadlines", "notify", "reporting")
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _env(name: str) -> AliasChoices:
    return AliasChoices(name, name.lower())


@dataclass(frozen=True, slots=True)
class Topics:
    """Topic names of docs/contract.md; a prefix lets tests share one broker without sharing topics."""

    prefix: str = ""

    @property
    def cases(self) -> str:
        return f"{self.prefix}cases.v1"

    @property
    def deadlines(self) -> str:
        return f"{self.prefix}deadlines.v1"

    @property
    def alerts(self) -> str:
        return f"{self.prefix}alerts.v1"

    def dlq(self, service: str) -> str:
        return f"{self.prefix}dlq.{service}.v1"

    def dead_letters(self, services: tuple[str, ...] = SERVICES) -> list[str]:
        return [self.dlq(s) for s in services]

    def all(self, services: tuple[str, ...] = SERVICES) -> list[str]:
        return [self.cases, self.deadlines, self.alerts, *self.dead_letters(services)]


class CommonSettings(BaseSettings):
    """Names without a prefix are shared by all services (docs/contract.md)."""

    # hide_input_in_errors: a refused setting may be a secret (DATABASE_URL carries a password).
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, env_file=".env", hide_input_in_errors=True)

    # No default on purpose: the development key file and password are accepted only when a person
    # wrote ENVIRONMENT=development; a deployment that forgets the variable refuses to start instead.
    environment: str = Field("", validation_alias=_env("ENVIRONMENT"))
    # One broker or a comma-separated list ("b1:9092,b2:9092,b3:9092"; shared.kafka.bootstrap_servers
    # splits it for FastStream). Against a cluster list at least two, so a start survives one broker down;
    # `make up KAFKA_BROKERS=3` runs localhost:9092,localhost:9192,localhost:9292.
    kafka_bootstrap_servers: str = Field("localhost:9092", validation_alias=_env("KAFKA_BOOTSTRAP_SERVERS"))
    kafka_topic_prefix: str = Field("", validation_alias=_env("KAFKA_TOPIC_PREFIX"))
    # Six partitions per topic: enough for a consumer group of several instances per service,
    # few enough for a single-node broker. Production (and `make up KAFKA_BROKERS=3`) sets replication 3:
    # topics are then created with min.insync.replicas=2 and existing ones are checked at start.
    kafka_partitions: int = Field(6, ge=1, validation_alias=_env("KAFKA_PARTITIONS"))
    kafka_replication_factor: int = Field(1, ge=1, validation_alias=_env("KAFKA_REPLICATION_FACTOR"))
    kafka_send_timeout_seconds: float = Field(10.0, gt=0, validation_alias=_env("KAFKA_SEND_TIMEOUT_SECONDS"))
    database_url: str = Field("postgresql://politi:politi@localhost:5432/politi", validation_alias=_env("DATABASE_URL"))
    api_keys_file: Path = Field(DEV_API_KEYS_FILE, validation_alias=_env("API_KEYS_FILE"))
    log_level: str = Field("INFO", validation_alias=_env("LOG_LEVEL"))
    # json: one JSON object per line, for the log collector; console: a line a person reads in a
    # terminal. Unset: console with ENVIRONMENT=development, json everywhere else.
    log_format: Literal["json", "console"] | None = Field(None, validation_alias=_env("LOG_FORMAT"))
    # The district's OpenID Connect provider: people sign in there (pages) and send its access tokens
    # (API). The default is the development realm `make up` runs (deploy/local/keycloak.sh, realm
    # deploy/keycloak/realm-mvsj.json); its discovery document is <issuer>/.well-known/openid-configuration.
    oidc_issuer_url: str = Field("http://127.0.0.1:8180/realms/mvsj", validation_alias=_env("OIDC_ISSUER_URL"))
    # The client the services' pages (notify's console, reporting's council pages) sign people in as:
    # a confidential client with PKCE. The default secret is the development realm's (refused outside
    # development by check_web_sign_in, which only services with pages call).
    oidc_client_id: str = Field("mvsj-web", validation_alias=_env("OIDC_CLIENT_ID"))
    oidc_client_secret: str = Field(DEV_OIDC_CLIENT_SECRET, validation_alias=_env("OIDC_CLIENT_SECRET"), repr=False)
    # A page session: one shift at most; the provider is asked every recheck seconds whether the
    # person may still be signed in (a disabled user loses access within it); while the provider does
    # not answer, a session goes on at most the grace since its last answer.
    web_session_max_age_seconds: int = Field(12 * 3600, ge=300, validation_alias=_env("WEB_SESSION_MAX_AGE_SECONDS"))
    web_session_recheck_seconds: float = Field(60.0, gt=0, validation_alias=_env("WEB_SESSION_RECHECK_SECONDS"))
    web_session_offline_grace_seconds: float = Field(
        900.0, ge=0, validation_alias=_env("WEB_SESSION_OFFLINE_GRACE_SECONDS")
    )

    @field_validator("log_format", mode="before")
    @classmethod
    def _log_format_any_case(cls, value: object) -> object:
        if isinstance(value, str):
            return value.strip().lower() or None
        return value

    @property
    def topics(self) -> Topics:
        return Topics(self.kafka_topic_prefix)

    @property
    def is_development(self) -> bool:
        return self.environment.strip().lower() == "development"

    @property
    def logs_as(self) -> Literal["json", "console"]:
        """The log format in force: LOG_FORMAT, or by default console in development and json elsewhere."""
        if self.log_format is not None:
            return self.log_format
        return "console" if self.is_development else "json"

    def check_for_production(self) -> None:
        """Fails closed: development secrets only with ENVIRONMENT=development, set explicitly.

        Anything else (production, staging, a typo, unset) refuses the public development key file
        and the development database password, and the message says which variable to set.
        """
        if self.is_development:
            return
        where = f"ENVIRONMENT={self.environment!r}" if self.environment else "ENVIRONMENT is not set"
        if self.api_keys_file.resolve() == DEV_API_KEYS_FILE.resolve():
            raise ValueError(
                f"API_KEYS_FILE is the development key file (its keys are public) and {where}: set API_KEYS_FILE"
                " to your key file, or ENVIRONMENT=development on a developer's machine"
            )
        if DEV_DATABASE_PASSWORD in self.database_url:
            raise ValueError(
                f"DATABASE_URL uses the development password and {where}: set DATABASE_URL with a real"
                " password, or ENVIRONMENT=development on a developer's machine"
            )

    def check_web_sign_in(self) -> None:
        """For services with pages: the development realm's client secret only in development."""
        if not self.is_development and self.oidc_client_secret == DEV_OIDC_CLIENT_SECRET:
            raise ValueError(
                "OIDC_CLIENT_SECRET is the development realm's (it is public) and ENVIRONMENT is not development:"
                " set OIDC_CLIENT_SECRET to the web client's secret at your identity provider"
            )
        if not self.is_development and not self.oidc_issuer_url.lower().startswith("https://"):
            raise ValueError(
                f"OIDC_ISSUER_URL ({self.oidc_issuer_url}) is not https and ENVIRONMENT is not development:"
                " tokens and sign-ins must travel over TLS"
            )


# The ops port of each service (`<SERVICE>_OPS_PORT` overrides): /metrics, /asyncapi.json, /docs.
DEFAULT_OPS_PORTS = {"intake": 9001, "deadlines": 9002, "notify": 9003, "reporting": 9004}


class ServiceSettings(CommonSettings):
    """Base of a service's settings: its own schema and ports, read with the service's env prefix."""

    db_schema: str = "public"
    port: int = 8000
    host: str = "127.0.0.1"
    # 0 means the service's entry in DEFAULT_OPS_PORTS (or port + 1000), found from the env prefix,
    # so a new service gets its ops port without a line of its own.
    ops_port: int = Field(0, ge=0, le=65535)
    ops_host: str = ""  # empty: the same as `host`
    # Slow clients: from connecting (or the first byte of a next request) to the end of the headers,
    # then for the whole body; an idle keep-alive connection is closed after http_keep_alive_seconds.
    http_header_timeout_seconds: float = Field(10.0, gt=0)
    http_body_timeout_seconds: float = Field(30.0, gt=0)
    http_keep_alive_seconds: int = Field(5, ge=1)
    # The largest request body taken (shared/http.py BodySizeLimit): a larger Content-Length is a 413
    # before a byte of the body is read, a chunked body a 413 the moment it passes this. A service
    # sets its own default from its largest legitimate body (intake keeps the 64 KiB here).
    max_body_bytes: int = Field(64 * 1024, ge=1024)
    outbox_poll_seconds: float = Field(1.0, gt=0)
    # A background loop (relay, timer, consumer) stalled this long makes /readyz 503; stalled this
    # long while Postgres and Kafka answer makes /healthz 503 (shared/health.py: why two).
    loop_ready_bound_seconds: float = Field(30.0, gt=0)
    loop_live_bound_seconds: float = Field(300.0, gt=0)
    outbox_batch_size: int = Field(200, ge=1, le=5000)
    # Request rate limits (shared/ratelimit.py), per instance: N instances allow N times these.
    # Per API key: a key is a whole system (the portal, a police system), not a person; 10/s stops a
    # runaway client far under what one instance takes, while a system catching up gets through.
    rate_limit_per_minute: float = Field(600.0, gt=0)
    rate_limit_burst: int = Field(120, ge=1)
    # Per client address, for requests with no key or a wrong one: enough for a person setting up
    # a client, too few to guess keys or to load the service without one.
    anonymous_rate_limit_per_minute: float = Field(60.0, gt=0)
    anonymous_rate_limit_burst: int = Field(20, ge=1)
    # The inbox (processed_events) keeps a row as long as its event can come back: by default the
    # longest retention of the consumed topics plus that of the dead-letter topics (read from Kafka)
    # plus this margin; none is purged while a topic keeps its events for ever. A number of hours
    # set here replaces that reckoning (shared/inbox.py says what that risks).
    inbox_retention_hours: float | None = Field(None, gt=0)
    inbox_retention_margin_hours: float = Field(24.0, ge=0)

    @model_validator(mode="after")
    def _default_ops_port(self) -> ServiceSettings:
        if self.ops_port == 0:
            name = str(self.model_config.get("env_prefix", "")).rstrip("_").lower()
            self.ops_port = DEFAULT_OPS_PORTS.get(name, self.port + 1000)
        if self.ops_port == self.port:
            raise ValueError(f"the ops port and the API port are both {self.port}; give them different numbers")
        return self

    @field_validator("db_schema")
    @classmethod
    def _plain_schema_name(cls, value: str) -> str:
        if not _SCHEMA_NAME.match(value):
            raise ValueError(f"{value!r} is not a plain lower-case schema name")
        return value


class MailSettings(ServiceSettings):
    """A service that sends e-mail (notify's alerts, reporting's council reports): its mail server, with
    the service's prefix (NOTIFY_SMTP_HOST, REPORTING_SMTP_HOST ...); the sender is the service's own."""

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_from: str = "noreply@politi.example"
    smtp_starttls: bool = False
    # Implicit TLS (SMTPS, usually port 465); outside development one of the two TLS modes is required.
    smtp_use_tls: bool = False
    smtp_username: str | None = None
    smtp_password: str | None = Field(None, repr=False)

    def check_smtp_tls(self, why: str) -> None:
        """Outside development, mail goes over TLS; `why` says what would travel in clear otherwise."""
        if self.is_development or self.smtp_starttls or self.smtp_use_tls:
            return
        prefix = str(self.model_config.get("env_prefix", ""))
        raise ValueError(
            f"SMTP without TLS and ENVIRONMENT is not development: {why}; set {prefix}SMTP_STARTTLS=true"
            f" (port 587) or {prefix}SMTP_USE_TLS=true (implicit TLS, port 465)"
        )
