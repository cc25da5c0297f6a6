"""The duty officers' console (vagtchefens konsol): a Danish live page of open alerts, for officers as themselves.

The page is one Jinja2 template (autoescaped) and a small script that draws alerts with
textContent only. Alerts arrive by server-sent events: one Postgres LISTEN per instance
(`ConsoleFeed`), so a change made by any notify instance reaches every open console, and each
change is read once and sent to all of them. Officers sign in through the district's identity
provider (shared/websession.py: code flow with PKCE, a server-side session); a vagtchef sees and
acknowledges every alert, a lokalbetjent those of his kommune; anyone else gets no console. An ack
names the signed-in person (their roster id and the provider's name for them) and carries the
session's CSRF token.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from importlib import resources
from typing import Any

import asyncpg
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from sse_starlette import EventSourceResponse, ServerSentEvent

from services.notify import handlers
from services.notify.adapters import repository as repo
from services.notify.adapters.changes import alert_changes
from services.notify.adapters.police_api import PoliceApiError, PoliceApis
from services.notify.domain.alert import AlreadyResolved
from services.notify.domain.messages import (
    COPENHAGEN,
    RESOLVED_DA,
    category_da,
    kommune_name,
    reason_da,
    stage_da,
    stage_kind,
    state_da,
    withdrawal_da,
)
from services.notify.domain.report_access import purpose_da, report_purpose
from services.notify.metrics import count_events, observe_ack
from shared.aio import within
from shared.backoff import Backoff
from shared.db import Conn
from shared.health import LoopProgress
from shared.http import Problem
from shared.ratelimit import DEFAULT_BUCKET, RateLimits
from shared.reference import kommuner as district_kommuner
from shared.runtime import ServiceRuntime
from shared.websession import WebSession, WebSessions, origin_of, same_origin

log = logging.getLogger(__name__)

SESSION_COOKIE = "notify_session"
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
}
_NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
# form-action also names the identity provider: signing out posts here and goes on to its end-session page.
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self';"
    " form-action 'self' {provider}; frame-ancestors 'none'; base-uri 'none'"
)
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
        "acknowledged_by_name": row["acknowledged_by_name"],
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
                # What the notice was (raised, escalated, reminder, ...): the page counts them by recipient and kind.
                "kind": stage_kind(d["stage"]),
                "state": _DELIVERY_DA.get(d["state"], d["state"]),
                "attempts": d["attempts"],
                "at": _iso(d["delivered_at"] or d["created_at"]),
            }
            for d in deliveries
        ],
    }


async def read_alerts(
    conn: Conn, ids: list[uuid.UUID] | None, *, kommuner: frozenset[str] | None = None
) -> list[dict[str, Any]]:
    """The given alerts, or (None) every unresolved one, most urgent first, as the page shows them.

    `kommuner`: only these kommuner's alerts in the list (a lokalbetjent's); None: all.
    """
    if ids is None:
        if kommuner is not None and len(kommuner) != 1:
            return []  # nobody's reach is several kommuner but all of them (None)
        kommune = next(iter(kommuner)) if kommuner else None
        rows, _ = await repo.list_alerts(
            conn, state="unresolved", kommune=kommune, severity=None, limit=SNAPSHOT_LIMIT, offset=0
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


def shown_report(details: dict[str, Any]) -> dict[str, Any]:
    """What "Vis anmeldelse" shows of intake's answer (CaseDetailsOut): the report and when its read was logged.

    Personal: it goes to the officer's browser only (no-store), never into a log line, table or event here.
    """
    contact = details.get("contact")
    logged = details["logged"]
    return {
        "reference": details["reference"],
        "category_da": category_da(details["category"]),
        "kommune_name": kommune_name(details["kommune"]),
        "received_at": details["received_at"],
        "anonymous": details["anonymous"],
        "description": details.get("description"),
        "address": details.get("address"),
        "postcode": details.get("postcode"),
        "position": details.get("position"),
        "institution": details.get("institution"),
        "contact": {k: contact.get(k) for k in ("name", "phone", "email")} if contact else None,
        "contact_erased_at": details.get("contact_erased_at"),
        "logged": {"at": logged["at"], "purpose": logged["purpose"], "purpose_da": purpose_da(logged["purpose"])},
    }


def refusal_da(exc: PoliceApiError) -> str:
    """Intake's refusal as the officer reads it; an erasure with its date (Copenhagen)."""
    if exc.status == 410 and exc.erased_at is not None:
        return f"{exc.message.rstrip('.')} den {exc.erased_at.astimezone(COPENHAGEN):%d.%m.%Y}."
    return exc.message


def render_page(template: str, provider: str, status: int = 200, **context: Any) -> HTMLResponse:
    headers = _HEADERS | {"Content-Security-Policy": _CSP.format(provider=provider)}
    return HTMLResponse(_templates.get_template(template).render(**context), status_code=status, headers=headers)


# The pages' scripts and styles (services/notify/static), served from /console/static/<name>: only these.
STATIC_FILES = {
    "console.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
    "opfoelgning.js": "text/javascript; charset=utf-8",
    "opfoelgning.css": "text/css; charset=utf-8",
}


def static_file(name: str) -> Response:
    media_type = STATIC_FILES.get(name)
    if media_type is None:
        return Response(status_code=404, headers={"X-Content-Type-Options": "nosniff"})
    body = resources.files("services.notify").joinpath("static", name).read_bytes()
    return Response(body, media_type=media_type, headers={"Cache-Control": "no-cache", "X-Content-Type-Options":
                                                          "nosniff"})  # fmt: skip


async def signed_in_officer(
    request: Request, sessions: WebSessions, template: str, no_access: str
) -> WebSession | Response:
    """The signed-in officer, or the answer to give instead: off to sign in, or `template` saying `no_access`
    (council, ops: the console's pages are for vagtchefer and lokalbetjente)."""
    session = await sessions.current(request)
    if session is None:
        return await sessions.sign_in_redirect(request)
    if not session.person.is_police:
        provider = origin_of(sessions.provider.issuer)
        return render_page(template, provider, 403, signed_in=False, person=session.person, csrf=session.csrf,
                           error=no_access)  # fmt: skip
    return session


def console_router(handler_ctx: handlers.Context, feed: ConsoleFeed, now: Callable[[], datetime],
                   sessions: WebSessions) -> APIRouter:  # fmt: skip
    router = APIRouter(prefix="/console", include_in_schema=False)
    provider = origin_of(sessions.provider.issuer)

    async def officer(request: Request) -> WebSession | Response:
        return await signed_in_officer(
            request, sessions, "console.html",
            "Din bruger har ikke adgang til konsollen. Den er for vagtchefer og lokalbetjente.",
        )  # fmt: skip

    @router.get("", response_model=None)
    async def console(request: Request) -> Response:
        session = await officer(request)
        if isinstance(session, Response):
            return session
        person = session.person
        scope = "alle kommuner" if person.is_vagtchef else kommune_name(person.kommune or "")
        # The filters' choices: every kommune for whoever sees them all (a lokalbetjent's list is one kommune's).
        kommuner = [(k.code, k.name) for k in district_kommuner().values()] if person.kommuner is None else []
        return render_page("console.html", provider, signed_in=True, person=person, scope=scope, csrf=session.csrf,
                     kommuner=kommuner, severities=list(_SEVERITY_DA.items()))  # fmt: skip

    @router.get("/events", response_model=None)
    async def events(request: Request) -> Response:
        session = await sessions.current(request)
        if session is None or not session.person.is_police:
            return JSONResponse({"detail": "Ikke logget ind."}, status_code=401)
        pool = request.app.state.runtime.db
        cookie = request.cookies.get(sessions.config.cookie)
        person = session.person
        recheck = min(30.0, sessions.config.recheck_seconds)

        async def stream() -> AsyncIterator[ServerSentEvent]:
            # Subscribe before reading the list: a change between the two then arrives after it, not never.
            with feed.subscribe() as queue:
                async with pool.acquire() as conn:
                    snapshot = await read_alerts(conn, None, kommuner=person.kommuner)
                yield ServerSentEvent(json.dumps(snapshot), event="snapshot", retry=2000)
                while True:
                    try:
                        batch = await within(queue.get(), recheck)
                    except TimeoutError:
                        # A stream outlives no session: signed out, disabled at the provider, or the shift is over.
                        if await sessions.get(cookie) is None:
                            yield ServerSentEvent("{}", event="signed-out")
                            return
                        continue
                    if batch is None:
                        yield ServerSentEvent("{}", event="restart")
                        return
                    visible = [a for a in batch if person.sees_kommune(a["kommune"])]
                    if visible:
                        yield ServerSentEvent(json.dumps(visible), event="alerts")

        return EventSourceResponse(stream(), ping=15, headers={"Cache-Control": "no-store"})

    @router.post("/alerts/{alert_id}/ack", response_model=None)
    async def acknowledge(request: Request, alert_id: uuid.UUID) -> Response:
        session = await sessions.current(request)
        if session is None:
            return JSONResponse({"detail": "Du er ikke logget ind længere; genindlæs siden."}, status_code=401)
        token = request.headers.get(CSRF_HEADER, "")
        if not same_origin(request) or not hmac.compare_digest(token, session.csrf):
            return JSONResponse({"detail": "Ugyldig formular; genindlæs siden."}, status_code=403)
        person = session.person
        async with request.app.state.runtime.db.acquire() as conn:
            current = await repo.get_alert(conn, alert_id)
        if current is None:
            return JSONResponse({"detail": "Alarmen findes ikke."}, status_code=404)
        if not person.sees_kommune(current["kommune"]):
            return JSONResponse({"detail": "Alarmen hører til en anden kommune end din."}, status_code=403)
        at = now()
        uow: handlers.Uow = request.app.state.uow
        try:
            # The signed-in person is the record: their stable id and the provider's name for them.
            applied = await handlers.acknowledge(uow, alert_id, person.id, "console", handler_ctx, at,
                                                 by_name=person.name)  # fmt: skip
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
                             "acknowledged_by_name": alert.acknowledged_by_name,
                             "acknowledged_at": _iso(alert.acknowledged_at)})  # fmt: skip

    @router.get("/alerts/{alert_id}/report", response_model=None)
    async def report(request: Request, alert_id: uuid.UUID) -> Response:
        """Vis anmeldelse: the alert's report read from intake as this officer, for the purpose the alert fits.

        Intake logs the read in the officer's name; a link followed from another site cannot make one (the
        session's CSRF token, which only the page has, is required). Nothing of the answer is kept or logged here.
        """
        session = await sessions.current(request)
        if session is None or not session.person.is_police:
            return JSONResponse({"detail": "Du er ikke logget ind længere; genindlæs siden."}, status_code=401,
                                headers=_NO_STORE)  # fmt: skip
        token = request.headers.get(CSRF_HEADER, "")
        if not same_origin(request) or not hmac.compare_digest(token, session.csrf):
            return JSONResponse({"detail": "Ugyldig forespørgsel; genindlæs siden."}, status_code=403,
                                headers=_NO_STORE)  # fmt: skip
        person = session.person
        limits: RateLimits = request.app.state.rate_limits
        try:
            limits.check(DEFAULT_BUCKET, f"person:{person.id}")
        except Problem as exc:
            return JSONResponse({"detail": "For mange opslag lige nu. Vent et øjeblik, og prøv igen."},
                                status_code=429, headers=_NO_STORE | exc.headers)  # fmt: skip
        async with request.app.state.runtime.db.acquire() as conn:
            alert = await repo.get_alert(conn, alert_id)
        if alert is None:
            return JSONResponse({"detail": "Alarmen findes ikke."}, status_code=404, headers=_NO_STORE)
        if not person.sees_kommune(alert["kommune"]):
            return JSONResponse({"detail": "Alarmen hører til en anden kommune end din."}, status_code=403,
                                headers=_NO_STORE)  # fmt: skip
        access_token = await sessions.access_token(session)
        if access_token is None:
            return JSONResponse({"detail": "Du er ikke logget ind længere; genindlæs siden."}, status_code=401,
                                headers=_NO_STORE)  # fmt: skip
        apis: PoliceApis = request.app.state.police_apis
        purpose = report_purpose(alert["deadline_rule"])
        try:
            details = await apis.case_details(access_token, alert["case_id"], purpose)
        except PoliceApiError as exc:
            # The status and the case id only: intake's answer may be about a person.
            log.info("report look-up refused by intake", extra={"alert_id": alert_id, "status": exc.status})
            body: dict[str, Any] = {"detail": refusal_da(exc)}
            if exc.erased_at is not None:
                body["erased_at"] = exc.erased_at.isoformat()
            return JSONResponse(body, status_code=exc.status, headers=_NO_STORE)
        return JSONResponse(shown_report(details), headers=_NO_STORE)

    @router.get("/static/{name}")
    async def static(name: str) -> Response:
        return static_file(name)

    return router
