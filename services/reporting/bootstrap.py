"""Composition root of the reporting service: the one place that knows every part and wires them."""

from __future__ import annotations

from fastapi import FastAPI

from services.reporting.adapters.open_data import Licence
from services.reporting.adapters.repository import PostgresReadModel, SnapshotUnitOfWork
from services.reporting.entrypoints.consumer import SERVICE, read_model_consumer
from services.reporting.entrypoints.deliveries import council_delivery_loop
from services.reporting.entrypoints.http import reporting_router
from services.reporting.entrypoints.pages import HOME, SESSION_COOKIE, council_router, static_router
from services.reporting.entrypoints.public import PublicFigures, public_router
from services.reporting.handlers import HANDLERS
from services.reporting.metrics import set_freshness
from services.reporting.settings import ReportingSettings
from shared.app import service_app
from shared.asyncapi import asyncapi_document
from shared.auth import ApiKeys
from shared.clock import Clock
from shared.db import Migration, migrations_in, shared_migrations
from shared.inbox import purge_inbox_loop
from shared.runtime import ServiceRuntime
from shared.timers import every
from shared.websession import purge_web_sessions_loop, sign_in_router, web_sessions

VERSION = "1.0.0"
__all__ = ["SERVICE", "build_app", "migrations"]


def migrations() -> list[Migration]:
    return shared_migrations() + migrations_in("services.reporting.migrations")


def build_app(settings: ReportingSettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    settings = settings or ReportingSettings()
    settings.check_for_production()
    api_keys = ApiKeys.load(settings.api_keys_file)
    topics = settings.topics

    async def freshness_loop(runtime: ServiceRuntime) -> None:
        async def refresh() -> None:
            async with runtime.db.acquire() as conn:
                set_freshness(await PostgresReadModel(conn).freshness())

        await every(15.0, refresh, failure="freshness gauge not refreshed")

    runtime = ServiceRuntime(
        settings,
        service=SERVICE,
        migrations=migrations(),
        consumers=[read_model_consumer(topics)],
        # The delivery plan's e-mails (council_delivery_loop reads the plan file: a bad one stops start-up).
        loops=[freshness_loop, council_delivery_loop(settings), purge_inbox_loop, purge_web_sessions_loop],
        clock=clock,
    )
    # Council secretaries and police sign in to the council pages as themselves (the identity provider).
    sessions = web_sessions(settings, lambda: runtime.db, runtime.clock.now, cookie=SESSION_COOKIE,
                            home=HOME, public_url=settings.public_url)  # fmt: skip
    public_figures = PublicFigures(runtime.clock, settings.small_number_threshold, settings.public_cache_seconds)
    licence = Licence(navn=settings.open_data_licence, url=settings.open_data_licence_url)
    consumed = {
        t: [m for m in HANDLERS if m.topic == t.removeprefix(topics.prefix)] for t in read_model_consumer(topics).topics
    }
    app = service_app(
        service=SERVICE,
        title="MVSJ reporting",
        version=VERSION,
        description=(
            "Honest figures for the kredsråd and the ten lokalråd: KPIs per kommune, focus area, category and"
            " period, and council reports in Danish as JSON, HTML, PDF and CSV. Every rate with its count; no"
            f" percentage over fewer than {settings.small_number_threshold} cases. Beside the API: council pages"
            " (/raad/, signed in through the identity provider) and the public figures of guarantee compliance"
            " per kommune and quarter (/offentlig/politigarantier, with its open data below)."
        ),
        settings=settings,
        runtime=runtime,
        api_keys=api_keys,
        readiness={"postgres": runtime.postgres_ready, "kafka": runtime.kafka_ready},
        routers=[
            reporting_router(runtime.clock, settings.small_number_threshold),
            council_router(runtime.clock, settings.small_number_threshold),
            public_router(public_figures, licence),
            static_router(),
            sign_in_router(sessions),
        ],
        asyncapi_doc=asyncapi_document(
            service=SERVICE,
            version=VERSION,
            bootstrap=settings.kafka_bootstrap_servers,
            publishes={},
            consumes=consumed,
        ),
        asyncapi_summary="AsyncAPI: what this service consumes",
    )
    # Council reports' unit of work: one read-only snapshot of the read model per report.
    app.state.reports = SnapshotUnitOfWork(lambda: runtime.db)
    app.state.web_sessions = sessions
    return app
