"""HTTP plumbing every service uses: problem+json errors, ops endpoints, request metrics, size limits."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import asyncpg
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from opentelemetry.trace import Span, SpanKind
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import tracing
from shared.db import TRANSIENT_DB_ERRORS, is_transient
from shared.logs import CONTEXT_FIELDS, log_context
from shared.metrics import HTTP_LATENCY, HTTP_REQUESTS
from shared.validation import readable, safe_name

log = logging.getLogger(__name__)
access_log = logging.getLogger("shared.http.access")

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://politi.example/problems/"

ReadinessCheck = Callable[[], Awaitable[bool]]


class Problem(Exception):
    """An RFC 9457 problem a route raises; rendered as application/problem+json."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        kind: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.kind = kind or title.lower().replace(" ", "-")
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra


def problem_response(problem: Problem, instance: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + problem.kind,
        "title": problem.title,
        "status": problem.status,
    }
    if problem.detail:
        body["detail"] = problem.detail
    if instance:
        body["instance"] = instance
    if problem.errors is not None:
        body["errors"] = problem.errors
    body.update(problem.extra)
    return JSONResponse(body, status_code=problem.status, media_type=PROBLEM_JSON, headers=problem.headers)


def instance(request: Request) -> str | None:
    """The problem's `instance`: the route's template (/v1/cases/{case_id}), never the path as typed,
    which may carry anything a client put there; None when no route matched."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else None


def field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """One entry per bad field, with a dotted path a portal can attach to its form field."""
    out: list[dict[str, Any]] = []
    for err in exc.errors():
        loc = [safe_name(p) for p in err.get("loc", ()) if p not in ("body",)]
        where = loc[0] if loc and loc[0] in ("query", "path", "header") else "body"
        if where != "body":
            loc = loc[1:]
        message = readable(err)
        out.append({"field": ".".join(loc) or where, "in": where, "message": message, "code": err.get("type")})
    return out


def validation_problem(errors: list[dict[str, Any]]) -> Problem:
    """The one 422 shape: `errors` has an entry per bad field ({field, in, message, code})."""
    return Problem(422, "Invalid request", f"{len(errors)} field(s) need attention.", kind="validation", errors=errors)


def invalid_query(field: str, message: str) -> Problem:
    return validation_problem([{"field": field, "in": "query", "message": message, "code": "invalid"}])


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc, instance=instance(request))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(validation_problem(field_errors(exc)), instance=instance(request))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        titles = {404: "Not found", 405: "Method not allowed", 401: "Unauthorized", 403: "Forbidden"}
        title = titles.get(exc.status_code, "Request failed")
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail != title else None
        return problem_response(
            Problem(exc.status_code, title, detail, headers=dict(exc.headers or {})),
            instance=instance(request),
        )

    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if is_transient(exc):
            log.warning("database unavailable during %s %s: %r", request.method, request.url.path, exc)
            return problem_response(
                Problem(
                    503,
                    "Service unavailable",
                    "The database is not reachable right now; nothing was saved, unless the connection broke"
                    " just as it confirmed. Retry shortly with the same Idempotency-Key: it is then saved once.",
                    kind="unavailable",
                    headers={"Retry-After": "5"},
                ),
                instance=instance(request),
            )
        log.exception("unhandled error in %s %s", request.method, request.url.path)
        return problem_response(
            Problem(500, "Internal error", "Something went wrong on our side; it has been logged."),
            instance=instance(request),
        )

    async def _gone(request: Request, exc: Exception) -> Response:
        # The client went away (or was cut off by the body deadline, shared/cli.py) mid-body:
        # nothing can be answered, nothing was stored. 499 as nginx counts it, for the metrics.
        log.info("client disconnected during %s %s", request.method, request.url.path)
        return Response(status_code=499)

    app.add_exception_handler(ClientDisconnect, _gone)
    app.add_exception_handler(Exception, _unexpected)
    # Starlette runs the handler for Exception outside every middleware and re-raises, so request
    # metrics would count a 500 and the server log a traceback. Registered per class, the database
    # errors are answered inside the middleware stack and counted as the 503s they are.
    database_errors: tuple[type[BaseException], ...] = (*TRANSIENT_DB_ERRORS, asyncpg.PostgresError)
    for error_type in database_errors:
        if issubclass(error_type, Exception):
            app.add_exception_handler(error_type, _unexpected)


# Served on the ops port only (`<SERVICE>_OPS_PORT`), never on the public API port: the metrics
# carry per-kommune counts, the AsyncAPI document the topology, and the OpenAPI pages (Swagger UI
# loads its scripts from a CDN) are for the teams that integrate, not for anyone on the internet.
OPS_ONLY_PATHS = frozenset({"/metrics", "/asyncapi.json", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})
# Served on both: a load balancer probes the public port, Kubernetes and Prometheus the ops port.
BOTH_PORTS_PATHS = frozenset({"/healthz", "/readyz"})


class OpsPort:
    """One app on two ports: the ops port answers only OPS_ONLY_PATHS and BOTH_PORTS_PATHS, the
    public port everything but OPS_ONLY_PATHS; anything else is a 404 before the app sees it.

    One mechanism for every service: whatever ops routes a bootstrap declared (`ops_router`, an
    `/asyncapi.json` route, FastAPI's own /docs) are reachable on the ops port only once
    `shared.cli.serve` runs the app, with no line of the service's own. The lifespan (pool,
    relay, consumers) is the app's, so /readyz answers alike on both ports. The OpenAPI document
    leaves the ops-only paths out, since the public port does not serve them.
    """

    def __init__(self, app: FastAPI, ops_port: int) -> None:
        self.app = app
        self.ops_port = ops_port
        openapi = app.openapi

        def public_openapi() -> dict[str, Any]:
            schema = openapi()
            for path in OPS_ONLY_PATHS:
                schema.get("paths", {}).pop(path, None)
            return schema

        app.openapi = public_openapi  # type: ignore[method-assign]

    def serves(self, port: int | None, path: str) -> bool:
        if port == self.ops_port:
            return path in OPS_ONLY_PATHS or path in BOTH_PORTS_PATHS
        return path not in OPS_ONLY_PATHS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            port = (scope.get("server") or (None, None))[1]
            if not self.serves(port, scope["path"]):
                if scope["type"] == "http":
                    await problem_response(Problem(404, "Not found"), instance=scope["path"])(scope, receive, send)
                return
        await self.app(scope, receive, send)


Stalled = Callable[[], Awaitable[dict[str, float]]]


def ops_router(
    checks: dict[str, ReadinessCheck], *, stalled: Stalled | None = None, stuck: Stalled | None = None
) -> APIRouter:
    """/healthz (the process answers and is not stuck), /readyz (it can do its work), /metrics (Prometheus).

    `stalled`: the background loops past their readiness bound (they make /readyz 503 and are named
    in its body); `stuck`: loops stalled past the liveness bound while the dependencies answer (they
    make /healthz 503, so an orchestrator restarts the process). shared/health.py says why two.
    """
    router = APIRouter(tags=["operations"])

    @router.get(
        "/healthz",
        summary="Liveness: the process answers and no loop is stuck while its dependencies answer",
        response_model=None,
    )
    async def healthz() -> JSONResponse:
        stuck_loops = await stuck() if stuck is not None else {}
        if stuck_loops:
            return JSONResponse({"status": "stuck", "stalled_loops": stuck_loops}, status_code=503)
        return JSONResponse({"status": "ok"})

    @router.get(
        "/readyz",
        summary="Readiness: Kafka and Postgres reachable, every background loop making progress",
        response_model=None,
    )
    async def readyz() -> JSONResponse:
        results = {name: await check() for name, check in checks.items()}
        stalled_loops = await stalled() if stalled is not None else {}
        if stalled is not None:
            results["loops"] = not stalled_loops
        ready = all(results.values())
        body: dict[str, Any] = {
            "status": "ready" if ready else "not ready",
            "checks": {k: "ok" if v else "failing" for k, v in results.items()},
        }
        if stalled_loops:
            body["stalled_loops"] = stalled_loops
        return JSONResponse(body, status_code=200 if ready else 503)

    router.add_api_route("/metrics", metrics, summary="Prometheus metrics", response_class=PlainTextResponse)
    return router


async def metrics() -> Response:
    """Prometheus metrics (on the ops port once served: `split_ops`)."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


class MetricsMiddleware:
    """Counts requests by route template (not raw path, which would explode label cardinality)."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "GET")
            HTTP_REQUESTS.labels(self.service, method, template, str(status)).inc()
            HTTP_LATENCY.labels(self.service, method, template).observe(time.perf_counter() - start)


# What every HTML answer carries (PageHeaders): no MIME sniffing, no framing by another site (old browsers'
# header beside CSP's frame-ancestors), and the Referer only to the service itself. "same-origin" rather
# than "no-referrer": under no-referrer a browser sends `Origin: null` on a page's own POSTs (sign-out).
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
# FastAPI's own pages (Swagger UI, ReDoc; ops port only) load scripts from a CDN and run inline ones: a
# strict policy would blank them, so they get the framing rule alone.
DOCS_PAGES = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})


def page_policy(issuer: str) -> str:
    """The CSP of every page a service serves: no script, styles from the service only, data: images (charts);
    forms post to the service, and signing out goes on to the identity provider's end-session page. A page
    that needs more (notify's console runs its own script) states its own policy."""
    parts = urlsplit(issuer)
    return (
        "default-src 'none'; style-src 'self'; img-src 'self' data:;"
        f" form-action 'self' {parts.scheme}://{parts.netloc}; frame-ancestors 'none'; base-uri 'none'"
    )


class PageHeaders:
    """Gives every HTML answer the security headers it lacks: SECURITY_HEADERS and the service's CSP.

    A route that states its own header (a stricter policy, a style's hash) keeps it; answers that are
    not HTML (JSON, CSV, PDF) pass as they are. One place for it, so no page of the service can
    forget it, its error pages included.
    """

    def __init__(self, app: ASGIApp, csp: str) -> None:
        self.app = app
        self.csp = csp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = "frame-ancestors 'none'" if scope["path"] in DOCS_PAGES else self.csp
        wanted = {**SECURITY_HEADERS, "Content-Security-Policy": csp}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if headers.get("content-type", "").startswith("text/html"):
                    for name, value in wanted.items():
                        if name not in headers:
                            headers[name] = value
            await send(message)

        await self.app(scope, receive, send_wrapper)


class RequestContext:
    """Opens the request's span and gives every log line of the request its `trace_id`, `span_id` and
    `request_id`; logs the request once when answered.

    Wraps the whole app (`install_request_context`), outside Starlette's error middleware, so the
    line of an unhandled error carries the ids too. The span continues an incoming W3C `traceparent`
    (a portal or gateway that traces), else starts a trace; the outbox passes it on with every event
    the request causes (shared/outbox.py), so the consumers' spans and lines are in the same trace.
    `request_id` is the request's span id.

    The span is named by method and route template (`POST /v1/reports`) and carries the method, the
    template, the status and the ids in the path: never the path as typed, its query string, a
    header or the client's address. Probes and scrapes of the ops paths get no span of their own
    (a trace each would bury the reports') and their access lines are debug lines.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if path in OPS_ONLY_PATHS or path in BOTH_PORTS_PATHS:
            await self._call(scope, receive, send, None)
            return
        carrier = {
            k.decode("latin-1"): v.decode("latin-1")
            for k, v in scope.get("headers") or []
            if k in (b"traceparent", b"tracestate")
        }
        method = scope.get("method", "GET")
        with tracing.span(method, kind=SpanKind.SERVER, parent=tracing.extract(carrier)) as span:
            await self._call(scope, receive, send, span)

    async def _call(self, scope: Scope, receive: Receive, send: Send, span: Span | None) -> None:
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        found = tracing.ids(span) if span is not None else None
        with log_context(request_id=found[1] if found else None):
            try:
                await self.app(scope, receive, send_wrapper)
            finally:
                if span is not None:
                    self._describe(span, scope, status)
                self._log(scope, status, time.perf_counter() - start)

    @staticmethod
    def _describe(span: Span, scope: Scope, status: int) -> None:
        if not span.is_recording():
            return
        method = scope.get("method", "GET")
        route = getattr(scope.get("route"), "path", None) or "unmatched"
        span.update_name(f"{method} {route}")
        params = scope.get("path_params") or {}
        span.set_attributes(
            {"http.request.method": method, "http.route": route, "http.response.status_code": status}
            | {f"mvsj.{k}": str(params[k]) for k in CONTEXT_FIELDS if k in params}
        )
        if status >= 500:
            tracing.failed(span, str(status))

    @staticmethod
    def _log(scope: Scope, status: int, seconds: float) -> None:
        route = getattr(scope.get("route"), "path", None) or "unmatched"
        path = scope.get("path", "")
        level = logging.DEBUG if path in OPS_ONLY_PATHS or path in BOTH_PORTS_PATHS else logging.INFO
        if not access_log.isEnabledFor(level):
            return
        params = scope.get("path_params") or {}
        ids = {k: str(params[k]) for k in CONTEXT_FIELDS if k in params}
        method = scope.get("method", "GET")
        access_log.log(
            level,
            "%s %s %s",
            method,
            route,
            status,
            extra={"method": method, "route": route, "status": status, "duration_ms": round(seconds * 1000, 1)} | ids,
        )


def install_request_context(app: FastAPI) -> None:
    """Puts `RequestContext` around everything the app builds, Starlette's error middleware included."""
    build = app.build_middleware_stack

    def build_with_context() -> ASGIApp:
        return RequestContext(build())

    app.build_middleware_stack = build_with_context  # type: ignore[method-assign]


class BodySizeLimit:
    """Caps every request's body at `max_bytes` before anything reads, parses or authenticates it.

    `service_app` puts it around everything that could read a body, check a key or route (only the
    log context, the metrics that count its 413s and Starlette's last-resort error handler are
    outside, and none of them touches a body). Two cases:

    - a Content-Length over the cap: 413 at once; not one byte of the body is read;
    - any other body (chunked, or a Content-Length within the cap): read here and counted as it
      arrives; the moment it passes the cap, 413, with at most the cap held. Within the cap it is
      handed to the app as it came.

    Read here rather than by wrapping `receive` for the app: a limit raised inside the app would
    reach FastAPI's body parsing, which answers any exception while reading a body with a 400.
    The 413 says `Connection: close`, so the server stops reading the rest as well.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"").strip()
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        if declared in (b"", b"0") and b"transfer-encoding" not in headers:
            await self.app(scope, receive, send)  # no body (HTTP/1.1: no length and no chunks means none)
            return
        chunks: list[bytes] = []
        seen = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                # Gone before the body was complete: nothing to answer, nothing stored (499 as
                # shared/http.py's ClientDisconnect handler counts it).
                await Response(status_code=499)(scope, receive, send)
                return
            body = message.get("body", b"")
            seen += len(body)
            if seen > self.max_bytes:
                chunks.clear()
                await self._too_large(scope, receive, send)
                return
            chunks.append(body)
            more = bool(message.get("more_body", False))
        whole: Message | None = {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        async def replay() -> Message:
            # The body once, then the server's own messages (a streaming answer waits for the disconnect).
            nonlocal whole
            if whole is not None:
                message, whole = whole, None
                return message
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            Problem(
                413,
                "Request too large",
                f"The body may be at most {self.max_bytes:,} bytes.",
                kind="too-large",
                headers={"Connection": "close"},
            )
        )
        await response(scope, receive, send)
