"""Composition root of the reporting service: the one place that knows every part and wires them."""

from __future__ import annotations

from fastapi import FastAPI

from services.reporting.entrypoints.consumer import SERVICE, read_model_consumer
from services.reporting.entrypoints.http import reporting_router
from services.reporting.handlers import HANDLERS
from services.reporting.metrics import refresh_freshness
from services.reporting.settings import ReportingSettings
from shared.asyncapi import asyncapi_document
from shared.auth import ApiKeys
from shared.clock import Clock
from shared.db import Migration, migrations_in, shared_migrations
from shared.http import MetricsMiddleware, install_problem_handlers, ops_router
from shared.openapi import install_openapi
from shared.ratelimit import rate_limits
from shared.runtime import ServiceRuntime

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
        await refresh_freshness(runtime.db, 15.0)

    runtime = ServiceRuntime(
        settings,
        service=SERVICE,
        migrations=migrations(),
        consumers=[read_model_consumer(topics)],
        loops=[freshness_loop],
        clock=clock,
    )
    app = FastAPI(
        title="MVSJ reporting",
        version=VERSION,
        description=(
            "Honest figures for the kredsråd and the ten lokalråd: KPIs per kommune, focus area, category and"
            " period, and council reports in Danish as JSON, HTML, PDF and CSV. Every rate with its count; no"
            f" percentage over fewer than {settings.small_number_threshold} cases."
        ),
        lifespan=runtime.lifespan,
        # No trailing-slash redirect: its Location would be built from the client's Host header.
        redirect_slashes=False,
    )
    app.state.runtime = runtime
    app.state.api_keys = api_keys
    app.state.rate_limits = rate_limits(
        settings.rate_limit_per_minute,
        settings.rate_limit_burst,
        settings.anonymous_rate_limit_per_minute,
        settings.anonymous_rate_limit_burst,
    )
    install_problem_handlers(app)
    app.add_middleware(MetricsMiddleware, service=SERVICE)
    app.include_router(ops_router({"postgres": runtime.postgres_ready, "kafka": runtime.kafka_ready}))
    app.include_router(reporting_router(runtime.clock, settings.small_number_threshold))
    install_openapi(app)

    consumed = {
        t: [m for m in HANDLERS if m.topic == t.removeprefix(topics.prefix)] for t in read_model_consumer(topics).topics
    }
    document = asyncapi_document(
        service=SERVICE, version=VERSION, bootstrap=settings.kafka_bootstrap_servers, publishes={}, consumes=consumed
    )

    @app.get("/asyncapi.json", tags=["operations"], summary="AsyncAPI: what this service consumes")
    async def asyncapi() -> dict[str, object]:
        return document

    return app
