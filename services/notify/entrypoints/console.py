"""The duty officers' console (vagtchefens konsol): a Danish live page of open alerts, signed in with a police key.

The page is one Jinja2 template (autoescaped) and a small script that draws alerts with
textContent only. Alerts arrive by server-sent events: one Postgres LISTEN per instance
(`ConsoleFeed`), so a change made by any notify instance reaches every open console, and each
change is read once and sent to all of them. The session is Starlette's signed cookie
(HttpOnly, SameSite=Strict, path /console); the ack also carries the session's CSRF token.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from sse_starlette import EventSourceResponse, ServerSentEvent

from services.notify import handlers
from services.notify.adapters import repository as repo
from services.notify.adapters.changes import alert_changes
from services.notify.domain.alert import AlreadyResolved
from services.notify.domain.messages import (
    RESOLVED_DA,
    category_da,
    kommune_name,
    reason_da,
    stage_da,
    state_da,
    withdrawal_da,
)
from services.notify.metrics import count_events, observe_ack
from shared.aio import within
from shared.auth import ApiKeys
from shared.backoff import Backoff
from shared.db import Conn
from shared.health import LoopProgress
from shared.ratelimit import ANONYMOUS, RateLimits
from shared.runtime import ServiceRuntime

log = logging.getLogger(__name__)

SESSION_COOKIE = "notify_console"
CSRF_HEADER = "x-csrf-token"
# Enough for any real shift; past it the page says so rather than growing without bound.
SNAPSHOT_LIMIT = 500
_SEVERITY_DA = {"critical": "Kritisk", "warning": "Advarsel", "info": "Info"}
_CHANNEL_DA = {"webhook": "webhook", "email": "e-mail", "console": "konsol"}
_DELIVERY_DA = {"pending": "afventer", "delivered": "leveret", "failed": "fejlet", "cancelled": "annulleret"}
# No inline script or style: even a markup slip could then run nothing. "same-origin" rather than
# "no-referrer": under no-referrer a browser sends `Origin: null` on the page's own POSTs.
_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self';"
        " form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}
_templates = Environment(
    loader=PackageLoader("services.notify", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def console_alert(row: Any, deliveries: list[Any]) -> dict[str, Any]:
    """What the page shows of an alert: the case's reference, category, kommune and due time, never citizen data;
    deliveries by recipient name and channel, never their address."""
    return {
        "id": str(row["id"]),
        "reference": row["reference"],
        "title": row["title"],
        "category": row["category"],
        "category_da": category_da(row["category"]),
        "kommune": row["kommune"],
        "kommune_name": kommune_name(row["kommune"]),
        "severity": row["severity"],
        "severity_da": _SEVERITY_DA.get(row["severity"], row["severity"]),
        "state": row["state"],
        "state_da": state_da(row["state"], capital=True),
        "reason": row["reason"],
        "reason_da": reason_da(row["reason"]),
        "level": row["level"],
        "due_at": _iso(row["due_at"]),
        "raised_at": _iso(row["raised_at"]),
        "acknowledged_at": _iso(row["acknowledged_at"]),
        "acknowledged_by": row["acknowledged_by"],
        "resolved_at": _iso(row["resolved_at"]),
        "resolved_reason": row["resolved_reason"],
        "resolved_da": RESOLVED_DA.get(row["resolved_reason"], row["resolved_reason"]),
        # A breach withdrawn: the sentence every recipient was sent (why it is taken back).
        "withdrawal_da": withdrawal_da(repo.view_from_row(row)) if row["resolved_reason"] else None,
        "next_escalation_at": _iso(row["next_timer_at"]),
        "deliveries": [
            {
                "recipient": d["recipient_name"],
                "channel": _CHANNEL_DA.get(d["channel"], d["channel"]),
                "stage": stage_da(d["stage"]),
                "state": _DELIVERY_DA.get(d["state"], d["state"]),
                "attempts": d["attempts"],
                "at": _iso(d["delivered_at"] or d["created_at"]),
            }
            for d in deliveries
        ],
    }


async def read_alerts(conn: Conn, ids: list[uuid.UUID] | None) -> list[dict[str, Any]]:
    """The given alerts, or (None) every unresolved one, most urgent first, as the page shows them."""
    if ids is None:
        rows, _ = await repo.list_alerts(
            conn, state="unresolved", kommune=None, severity=None, limit=SNAPSHOT_LIMIT, offset=0
        )
    else:
        rows = list((await repo.alert_rows(conn, ids)).values())
    deliveries = await repo.deliveries_of(conn, [r["id"] for r in rows]) if rows else []
    by_alert: dict[uuid.UUID, list[Any]] = {}
    for d in deliveries:
        by_alert.setdefault(d["alert_id"], []).append(d)
    return [console_alert(r, by_alert.get(r["id"], [])) for r in rows]


class ConsoleFeed:
    """Fans alert changes out to every open console of this instance.

    One LISTEN connection, whoever is watching; changes that come close together are read in one
    query (`coalesce` seconds) and sent to all. A console that cannot keep up is dropped; its browser
    reconnects and starts again from a fresh list, so it never shows a stale alert as current.
    """

    def __init__(self, schema: str, *, coalesce: float = 0.15, queue_size: int = 200) -> None:
        self.schema = schema
        self.coalesce = coalesce
        self.queue_size = queue_size
        self._subscribers: set[asyncio.Queue[list[dict[str, Any]] | None]] = set()

    @contextlib.contextmanager
    def subscribe(self) -> Iterator[asyncio.Queue[list[dict[str, Any]] | None]]:
        queue: asyncio.Queue[list[dict[str, Any]] | None] = asyncio.Queue(self.queue_size)
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)

    def publish(self, alerts: list[dict[str, Any]]) -> None:
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(alerts)
            except asyncio.QueueFull:
                self._restart(queue)

    def _restart(self, queue: asyncio.Queue[list[dict[str, Any]] | None]) -> None:
        """Drops a console from the feed with a last word, None: "start again from a fresh list"."""
        self._subscribers.discard(queue)
        with contextlib.suppress(asyncio.QueueEmpty):
            while True:
                queue.get_nowait()
        queue.put_nowait(None)

    async def run(self, runtime: ServiceRuntime) -> None:
        """The background loop: listens, reads what changed, publishes; reconnects after a database error."""
        backoff = Backoff()
        progress = runtime.health.loop("console feed", sleeps_up_to=self.coalesce)
        while True:
            started = time.monotonic()
            try:
                await self._listen(runtime.db, progress)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                progress.failed()
                if time.monotonic() - started > 60:
                    backoff.reset()  # it had been working: this is a new outage
                delay = backoff.next()
                log.warning("console feed lost its Postgres listener (%r); reconnecting in %.1fs", exc, delay)
                # Consoles may have missed changes: they start again from a fresh list.
                for queue in list(self._subscribers):
                    self._restart(queue)
                await asyncio.sleep(delay)

    async def _listen(self, pool: asyncpg.Pool, progress: LoopProgress) -> None:
        pending: set[uuid.UUID] = set()
        first = 0.0
        async for changed in alert_changes(pool, self.schema, idle=self.coalesce):
            progress.round_done()  # listening: a change, or `coalesce` quiet seconds on a live connection
            if changed is not None:
                if not pending:
                    first = time.monotonic()
                pending.add(changed)
                if time.monotonic() - first < self.coalesce and len(pending) < 200:
                    continue
            if not pending:
                continue
            ids, pending = list(pending), set()
            if not self._subscribers:
                continue
            async with pool.acquire() as conn:
                alerts = await read_alerts(conn, ids)
            self.publish(alerts)


def _session(request: Request) -> dict[str, Any] | None:
    """The signed-in officer's session, or None.

    The cookie's own age slides (Starlette signs it anew with each answer); `until`, set at
    sign-in, ends a sign-in after one shift however busy the page has been.
    """
    session: dict[str, Any] = request.session
    if not (session.get("officer") and session.get("csrf")):
        return None
    if float(session.get("until", 0)) <= time.time():
        session.clear()
        return None
    return session


def _same_origin(request: Request) -> bool:
    """A browser names the page a POST came from; one from another site is refused (besides SameSite=Strict)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return urlsplit(origin).netloc == host


def _page(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(_templates.get_template(template).render(**context), status_code=status, headers=_HEADERS)


def _static(name: str, media_type: str) -> Response:
    body = resources.files("services.notify").joinpath("static", name).read_bytes()
    return Response(body, media_type=media_type, headers={"Cache-Control": "no-cache", "X-Content-Type-Options":
                                                          "nosniff"})  # fmt: skip


def console_router(
    handler_ctx: handlers.Context, feed: ConsoleFeed, now: Callable[[], datetime], session_max_age: float
) -> APIRouter:
    router = APIRouter(prefix="/console", include_in_schema=False)

    @router.get("", response_class=HTMLResponse)
    async def console(request: Request) -> HTMLResponse:
        session = _session(request)
        if session is None:
            return _page("console.html", signed_in=False)
        return _page("console.html", signed_in=True, officer=session["officer"], csrf=session["csrf"])

    @router.post("/login", response_model=None)
    async def login(request: Request) -> Response:
        if not _same_origin(request):
            return _page("console.html", 403, signed_in=False, error="Forespørgslen kom fra en anden side.")
        # A plain urlencoded form, read by hand: no multipart dependency for two fields.
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        key = (form.get("key") or [""])[0].strip()
        name = (form.get("navn") or [""])[0].strip()[:64]
        keys: ApiKeys = request.app.state.api_keys
        client = keys.identify(key) if key else None
        if client is None:
            # Guessing keys through the form costs what it costs on the API: the per-address bucket.
            limits: RateLimits = request.app.state.rate_limits
            limits.check(ANONYMOUS, request.client.host if request.client else "unknown", anonymous=True)
            return _page("console.html", 401, signed_in=False, error="Nøglen er ikke gyldig.", navn=name)
        if client.role != "police":
            return _page("console.html", 403, signed_in=False, error="Nøglen giver ikke adgang til konsollen.",
                         navn=name)  # fmt: skip
        request.session.clear()
        # Who acknowledges is the officer's own name when given; else the key's name, as the API does.
        request.session.update({"officer": name or client.name, "key": client.name,
                                "csrf": secrets.token_urlsafe(32), "until": time.time() + session_max_age})  # fmt: skip
        log.info("console sign-in", extra={"key": client.name})
        return RedirectResponse("/console", status_code=303, headers={"Cache-Control": "no-store"})

    @router.post("/logout", response_model=None)
    async def logout(request: Request) -> Response:
        session = _session(request)
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        token = (form.get("csrf") or [""])[0]
        if session is not None and _same_origin(request) and hmac.compare_digest(token, session["csrf"]):
            request.session.clear()
        return RedirectResponse("/console", status_code=303, headers={"Cache-Control": "no-store"})

    @router.get("/events", response_model=None)
    async def events(request: Request) -> Response:
        session = _session(request)
        if session is None:
            return JSONResponse({"detail": "Ikke logget ind."}, status_code=401)
        pool = request.app.state.runtime.db
        # A stream outlives no session: at the sign-in's end it stops, and the reconnect is refused.
        ends_at = float(session["until"])

        async def stream() -> AsyncIterator[ServerSentEvent]:
            # Subscribe before reading the list: a change between the two then arrives after it, not never.
            with feed.subscribe() as queue:
                async with pool.acquire() as conn:
                    snapshot = await read_alerts(conn, None)
                yield ServerSentEvent(json.dumps(snapshot), event="snapshot", retry=2000)
                while True:
                    try:
                        batch = await within(queue.get(), max(0.0, ends_at - time.time()))
                    except TimeoutError:
                        return
                    if batch is None:
                        yield ServerSentEvent("{}", event="restart")
                        return
                    yield ServerSentEvent(json.dumps(batch), event="alerts")

        return EventSourceResponse(stream(), ping=15, headers={"Cache-Control": "no-store"})

    @router.post("/alerts/{alert_id}/ack", response_model=None)
    async def acknowledge(request: Request, alert_id: uuid.UUID) -> Response:
        session = _session(request)
        if session is None:
            return JSONResponse({"detail": "Ikke logget ind."}, status_code=401)
        token = request.headers.get(CSRF_HEADER, "")
        if not _same_origin(request) or not hmac.compare_digest(token, session["csrf"]):
            return JSONResponse({"detail": "Ugyldig formular; genindlæs siden."}, status_code=403)
        at = now()
        uow: handlers.Uow = request.app.state.uow
        try:
            # The key that signed in is the audit's actor, as for the API: the name was typed, the key checked.
            applied = await handlers.acknowledge(uow, alert_id, session["officer"], "console", handler_ctx, at,
                                                 key=session.get("key"))  # fmt: skip
        except handlers.NotFound:
            return JSONResponse({"detail": "Alarmen findes ikke."}, status_code=404)
        except AlreadyResolved:
            return JSONResponse({"detail": "Alarmen er allerede afsluttet."}, status_code=409)
        count_events(applied.events, applied.shown, at)
        alert = applied.alert
        assert alert is not None
        if applied.events and alert.acknowledged_at is not None:
            observe_ack(alert.severity, alert.raised_at, alert.acknowledged_at)
        return JSONResponse({"id": str(alert.id), "state": alert.state, "acknowledged_by": alert.acknowledged_by,
                             "acknowledged_at": _iso(alert.acknowledged_at)})  # fmt: skip

    @router.get("/static/console.js")
    async def script() -> Response:
        return _static("console.js", "text/javascript; charset=utf-8")

    @router.get("/static/console.css")
    async def style() -> Response:
        return _static("console.css", "text/css; charset=utf-8")

    return router
