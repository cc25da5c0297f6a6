"""Composition root of the intake service: the one place that knows every part and wires them."""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from datetime import timedelta

from fastapi import FastAPI

from services.intake.adapters.privacy import PostgresPrivacyRepository
from services.intake.adapters.repository import PostgresCaseRepository, purge_idempotency_keys
from services.intake.domain.privacy import RetentionPolicy
from services.intake.entrypoints.consumer import DEADLINE_EVENTS, deadline_consumer
from services.intake.entrypoints.erasure import ErasureJob
from services.intake.entrypoints.http import (
    BODY_MODELS,
    STATUS_BUCKET,
    install_intake_problems,
    intake_router,
)
from services.intake.entrypoints.privacy import EraseIn, install_privacy_problems, privacy_router
from services.intake.handlers import PrivacyUow, Uow
from services.intake.settings import IntakeSettings
from shared.app import service_app
from shared.asyncapi import asyncapi_document
from shared.auth import ApiKeys
from shared.clock import Clock
from shared.db import Migration, migrations_in, shared_migrations
from shared.events.cases import ActionRecorded, CaseReported, OfficerRequested, TipReceived
from shared.inbox import purge_inbox_loop
from shared.officers import load_officers
from shared.ratelimit import RateLimiter
from shared.runtime import ServiceRuntime
from shared.timers import every
from shared.unit_of_work import PostgresUnitOfWork

SERVICE = "intake"
VERSION = "1.0.0"
CASE_EVENTS = (CaseReported, TipReceived, OfficerRequested, ActionRecorded)

log = logging.getLogger(__name__)


def migrations() -> list[Migration]:
    return shared_migrations() + migrations_in("services.intake.migrations")


def install_problems(app: FastAPI) -> None:
    """The use cases' refusals as problem+json."""
    install_intake_problems(app)
    install_privacy_problems(app)


def build_app(
    settings: IntakeSettings | None = None,
    *,
    clock: Clock | None = None,
    rng: random.Random | None = None,
    uow: Uow | None = None,
    privacy_uow: PrivacyUow | None = None,
    before_commit: Callable[[], Awaitable[None]] | None = None,
) -> FastAPI:
    """Builds the service; a bad key file or roster stops start-up. `uow` and `privacy_uow` replace the
    units of work on Postgres (unit tests)."""
    settings = settings or IntakeSettings()
    settings.check_for_production()
    api_keys = ApiKeys.load(settings.api_keys_file)
    officers = load_officers(settings.roster_file)
    topics = settings.topics
    policy = RetentionPolicy(
        contact=settings.contact_retention, report=settings.report_retention, access_log=settings.access_log_retention
    )

    async def erasure_loop(_runtime: ServiceRuntime) -> None:
        job: ErasureJob = app.state.erasure
        await job.run()

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
        # deadlines.v1 tells when a case's deadlines concluded: its contact details' retention counts from then.
        consumers=[deadline_consumer(topics)],
        loops=[forget_old_keys, purge_inbox_loop, erasure_loop],
        pool_max_size=settings.pool_max_size,
        clock=clock,
    )
    app = service_app(
        service=SERVICE,
        title="MVSJ intake",
        version=VERSION,
        description=(
            "Takes citizens' reports, tips and Bestil en betjent requests from the citizen portal, and police"
            " actions on cases from police systems. Every accepted submission is stored and its event written"
            " to the outbox in one transaction, then published on cases.v1; requests never wait on Kafka."
            " Citizen contact details and report text stay here; events carry none. Police officers read them for a"
            " stated purpose, each read on record in the case's access log; they are erased when their retention"
            " ends (docs/privacy.md). Errors are RFC 9457 application/problem+json. Rate limits are per API key and"
            " per instance."
        ),
        settings=settings,
        runtime=runtime,
        api_keys=api_keys,
        # Readiness is Postgres only: intake is built to accept reports while Kafka is away (the outbox
        # holds them), so a Kafka outage must not take it out of a load balancer. /metrics shows the backlog.
        readiness={"postgres": runtime.postgres_ready},
        routers=[intake_router(rng), privacy_router(officers)],
        asyncapi_doc=asyncapi_document(
            service=SERVICE,
            version=VERSION,
            bootstrap=settings.kafka_bootstrap_servers,
            publishes={topics.cases: list(CASE_EVENTS)},
            consumes={topics.deadlines: list(DEADLINE_EVENTS)},
        ),
        asyncapi_summary="AsyncAPI: what this service publishes and consumes",
        rate_buckets={
            STATUS_BUCKET: RateLimiter(settings.status_rate_limit_per_minute, settings.status_rate_limit_burst)
        },
        openapi_bodies=(*BODY_MODELS, EraseIn),
        problem_handlers=install_problems,
    )
    app.state.clock = runtime.clock  # `clock` (or the host's) corrected to Postgres's once started
    # The use cases' unit of work for the HTTP routes: a transaction of its own per request, whose
    # acquire timeout bounds a request while Postgres is away (a 503, never a hang).
    app.state.uow = uow or PostgresUnitOfWork(
        lambda: runtime.db,
        lambda conn: PostgresCaseRepository(conn, topic=topics.cases, rng=rng),
        acquire_timeout=settings.db_acquire_timeout_seconds,
        before_commit=before_commit,
    )
    # A report's personal content and its access log: a transaction of its own per request or job batch.
    app.state.privacy_uow = privacy_uow or PostgresUnitOfWork(
        lambda: runtime.db, PostgresPrivacyRepository, acquire_timeout=settings.db_acquire_timeout_seconds
    )
    app.state.erasure = ErasureJob(
        app.state.privacy_uow,
        policy,
        runtime.clock,
        interval=settings.erasure_interval_seconds,
        batch_size=settings.erasure_batch_size,
    )
    return app
