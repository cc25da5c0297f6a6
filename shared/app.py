"""Builds a service's FastAPI app the one way: the HTTP edge every service shares, written once.

What every service gets here, so a new one cannot forget a part: no trailing-slash redirects (their
Location would reflect the client's Host header), rate limits from the shared settings, RFC 9457
problem answers, the request's log context (trace and request id, around everything), the HTTP
metrics middleware (outermost of the middleware), the cap on request bodies (right inside it,
before any other middleware, authentication, rate limit or route sees the request), the ops
routes (/healthz, /readyz, /metrics), the OpenAPI document with the problem schema, and
/asyncapi.json.

Not in shared/http.py: shared.openapi and shared.ratelimit import shared.http, and this module
uses both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from fastapi import APIRouter, FastAPI
from pydantic import BaseModel

from shared.auth import ApiKeys
from shared.http import (
    BodySizeLimit,
    MetricsMiddleware,
    PageHeaders,
    ReadinessCheck,
    install_problem_handlers,
    install_request_context,
    ops_router,
    page_policy,
)
from shared.oidc import OidcProvider
from shared.openapi import install_openapi
from shared.ratelimit import RateLimiter, rate_limits
from shared.runtime import ServiceRuntime
from shared.settings import ServiceSettings


def service_app(
    *,
    service: str,
    title: str,
    version: str,
    description: str,
    settings: ServiceSettings,
    runtime: ServiceRuntime,
    api_keys: ApiKeys,
    readiness: Mapping[str, ReadinessCheck],
    routers: Sequence[APIRouter],
    asyncapi_doc: dict[str, object],
    asyncapi_summary: str,
    rate_buckets: Mapping[str, RateLimiter] | None = None,
    openapi_bodies: Sequence[type[BaseModel]] = (),
    problem_handlers: Callable[[FastAPI], None] | None = None,
) -> FastAPI:
    """The app of `service`; the caller adds its own `app.state` entries after.

    `rate_buckets`: limiters beside the per-key and anonymous ones (intake's status polling).
    `problem_handlers`: the service's own exceptions as problem+json, installed after the shared ones.
    """
    app = FastAPI(
        title=title,
        version=version,
        description=description,
        lifespan=runtime.lifespan,
        # No trailing-slash redirect: its Location would be built from the client's Host header, and a
        # path that is not ours is a 404 like any other.
        redirect_slashes=False,
    )
    app.state.runtime = runtime
    app.state.api_keys = api_keys
    # People's access tokens on the API (shared/auth.py): the provider is read on the first one.
    app.state.oidc = OidcProvider(settings.oidc_issuer_url)
    app.state.rate_limits = rate_limits(
        settings.rate_limit_per_minute,
        settings.rate_limit_burst,
        settings.anonymous_rate_limit_per_minute,
        settings.anonymous_rate_limit_burst,
        **(rate_buckets or {}),
    )
    install_problem_handlers(app)
    if problem_handlers is not None:
        problem_handlers(app)
    # Every HTML answer of every service (pages, ack links, error pages) gets the security headers.
    app.add_middleware(PageHeaders, csp=page_policy(settings.oidc_issuer_url))
    # Before anything that reads a body, checks a key or routes; inside the metrics, which count its 413s.
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware, service=service)
    install_request_context(app)  # outside all of it: every line of a request carries its trace id
    # A loop held up only by a dependency /readyz does not require (intake's relay while Kafka is away)
    # keeps the service ready: it still takes requests, and the outbox keeps what it cannot send yet.
    runtime.health.required = set(readiness)
    app.include_router(ops_router(dict(readiness), stalled=runtime.stalled_loops, stuck=runtime.stuck_loops))
    for router in routers:
        app.include_router(router)
    install_openapi(app, openapi_bodies)

    @app.get("/asyncapi.json", tags=["operations"], summary=asyncapi_summary)
    async def asyncapi() -> dict[str, object]:
        return asyncapi_doc

    return app
