"""Composition root of the intake service: the one place that knows every part and wires them."""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from datetime import timedelta

from fastapi import FastAPI

from services.intake.adapters.repository import PostgresUnitOfWork, purge_idempotency_keys
from services.intake.entrypoints.http import (
    STATUS_BUCKET,
    install_intake_openapi,
    install_intake_problems,
    intake_router,
)
from services.intake.handlers import CaseHandlers, Handlers
from services.intake.settings import IntakeSettings
from shared.asyncapi import asyncapi_document
from shared.auth import ApiKeys
from shared.clock import Clock
from shared.db import Migration, migrations_in, shared_migrations
from shared.events.cases import ActionRecorded, CaseReported, OfficerRequested, TipReceived
from shared.http import BodySizeLimit, MetricsMiddleware, install_problem_handlers, ops_router
from shared.ratelimit import RateLimiter, rate_limits
from shared.runtime import ServiceRuntime
from shared.timers import every

SERVICE = "intake"
VERSION = "1.0.0"
CASE_EVENTS = (CaseReported, TipReceived, OfficerRequested, ActionRecorded)

log = logging.getLogger(__name__)


def migrations() -> list[Migration]:
    return shared_migrations() + migrations_in("services.intake.migrations")


def build_app(
    settings: IntakeSettings | None = None,
    *,
    clock: Clock | None = None,
    rng: random.Random | None = None,
    handlers: CaseHandlers | None = None,
    before_commit: Callable[[], Awaitable[None]] | None = None,
) -> FastAPI:
    """Builds the service; a bad key file stops start-up. `handlers` replaces the use cases on Postgres (unit tests)."""
    settings = settings or IntakeSettings()
    settings.check_for_production()
    api_keys = ApiKeys.load(settings.api_keys_file)
    topics = settings.topics

    async def forget_old_keys(runtime: ServiceRuntime) -> None:
        retention = timedelta(hours=settings.idempotency_retention_hours)

        async def purge() -> None:
            purged = await purge_idempotency_keys(runtime.db, retention)
            if purged:
                log.info("idempotency keys purged", extra={"purged": purged})

        await every(3600, purge, failure="idempotency keys not purged")

    runtime = ServiceRuntime(
        settings,
        service=SERVICE,
        migrations=migrations(),
        consumers=[],
        loops=[forget_old_keys],
        pool_max_size=settings.pool_max_size,
        clock=clock,
    )
    app = FastAPI(
        title="MVSJ intake",
        version=VERSION,
        description=(
            "Takes citizens' reports, tips and Bestil en betjent requests from the citizen portal, and police"
            " actions on cases from police systems. Every accepted submission is stored and its event written"
            " to the outbox in one transaction, then published on cases.v1; requests never wait on Kafka."
            " Citizen contact details and report text stay here; events carry none. Errors are RFC 9457"
            " application/problem+json. Rate limits are per API key and per instance."
        ),
        lifespan=runtime.lifespan,
        # No trailing-slash redirect: its Location would be built from the client's Host header, and a
        # path that is not ours is a 404 like any other.
        redirect_slashes=False,
    )
    app.state.runtime = runtime
    app.state.api_keys = api_keys
    app.state.clock = runtime.clock  # `clock` (or the host's) corrected to Postgres's once started
    app.state.rate_limits = rate_limits(
        settings.rate_limit_per_minute,
        settings.rate_limit_burst,
        settings.anonymous_rate_limit_per_minute,
        settings.anonymous_rate_limit_burst,
        **{STATUS_BUCKET: RateLimiter(settings.status_rate_limit_per_minute, settings.status_rate_limit_burst)},
    )
    app.state.handlers = handlers or Handlers(
        PostgresUnitOfWork(
            lambda: runtime.db,
            topic=topics.cases,
            acquire_timeout=settings.db_acquire_timeout_seconds,
            rng=rng,
            before_commit=before_commit,
        ),
        rng=rng,
    )
    install_problem_handlers(app)
    install_intake_problems(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware, service=SERVICE)  # outermost: counts 413s too
    # Readiness is Postgres only: intake is built to accept reports while Kafka is away (the outbox
    # holds them), so a Kafka outage must not take it out of a load balancer. /metrics shows the backlog.
    app.include_router(ops_router({"postgres": runtime.postgres_ready}))
    app.include_router(intake_router())
    install_intake_openapi(app)

    document = asyncapi_document(
        service=SERVICE,
        version=VERSION,
        bootstrap=settings.kafka_bootstrap_servers,
        publishes={topics.cases: list(CASE_EVENTS)},
    )

    @app.get("/asyncapi.json", tags=["operations"], summary="AsyncAPI: what this service publishes")
    async def asyncapi() -> dict[str, object]:
        return document

    return app
