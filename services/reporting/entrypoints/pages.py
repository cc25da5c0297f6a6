"""The council pages (rådssider) under /raad/: a council secretary or an officer, signed in as themselves, picks a
report (scope, period, focus area: all in the URL, so a link can be bookmarked and sent), reads it with its charts
beside the previous period and a year earlier, and downloads it as PDF or CSV.

People sign in through the district's identity provider (shared/websession.py: code flow with PKCE, a
server-side session in reporting's schema, the cookie `reporting_session`). Who reads which report is
domain/access.py: a council secretary her kommune's and the kredsråd's, the kredsråd's secretary and police
every one; anyone else gets a page saying so (403). The pages are server-rendered Danish (Jinja2,
autoescaped) and run no script; the report inside them is the same template the PDF is printed from,
so page, PDF and CSV hold the same figures.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.reporting import handlers
from services.reporting.adapters import renderers
from services.reporting.domain.access import Readership, readership
from services.reporting.domain.periods import Kind, Period, PeriodError
from services.reporting.domain.report import CouncilReport, Scope, ScopeError
from services.reporting.metrics import RENDER_SECONDS, RENDERED
from shared.auth import role_of
from shared.clock import Clock
from shared.reference import focus_areas
from shared.websession import WebSession

SESSION_COOKIE = "reporting_session"
HOME = "/raad/"
# A person's own session: nothing of it may sit in a shared cache.
_PRIVATE = {"Cache-Control": "no-store"}
# How far back the form offers periods (any period can still be asked for in the URL).
YEARS_OFFERED = 4
MONTHS_OFFERED = 24


class Sessions(Protocol):
    """What the pages need of shared.websession.WebSessions: `app.state.web_sessions` (a unit test's stand-in)."""

    async def current(self, request: Request) -> WebSession | None: ...

    async def sign_in_redirect(self, request: Request) -> Response: ...


@dataclass(frozen=True, slots=True)
class Choice:
    """A report as the URL names it; `scope` and `period` as typed when they could not be read."""

    scope: str
    period: str
    focus_area: str

    @property
    def query(self) -> str:
        """The choice as a query string, for links to the same report (focus area only when one is chosen)."""
        fields = {"scope": self.scope, "period": self.period}
        if self.focus_area:
            fields["focus_area"] = self.focus_area
        return urlencode(fields)


@dataclass(frozen=True, slots=True)
class PageError:
    title: str
    lines: tuple[str, ...]


# A report the URL names: scope, period, focus area (None: all of them).
Named = tuple[Scope, Period, str | None]


def read_choice(scope: str, period: str, focus_area: str) -> tuple[Choice, Named | None, list[str]]:
    """The choice, what it names when it names a report, and what is wrong with it in Danish (never echoing it)."""
    problems = []
    parsed_scope = parsed_period = None
    try:
        parsed_scope = Scope.parse(scope)
    except ScopeError:
        problems.append("Vælg hele kredsen eller en af kredsens kommuner.")
    try:
        parsed_period = Period.parse(period)
    except PeriodError:
        problems.append("Vælg en periode: et år (2026), et kvartal (2026-Q3) eller en måned (2026-08).")
    if focus_area and focus_area not in focus_areas():
        problems.append("Vælg et af indsatsområderne, eller alle.")
    # Canonical spellings in links (`265` and `0265` name the same kommune).
    choice = Choice(
        scope=str(parsed_scope) if parsed_scope else scope,
        period=str(parsed_period) if parsed_period else period,
        focus_area=focus_area if focus_area in focus_areas() else "",
    )
    if problems or parsed_scope is None or parsed_period is None:
        return choice, None, problems
    return choice, (parsed_scope, parsed_period, focus_area or None), []


def period_groups(now: datetime, chosen: Period | None) -> list[tuple[str, list[tuple[str, str]]]]:
    """The form's periods, newest first: quarters, months and years of the last few years (the one under way
    says so), and the chosen one wherever it lies."""
    offered: tuple[tuple[Kind, str, int], ...] = (
        ("quarter", "Kvartaler", 4 * YEARS_OFFERED),
        ("month", "Måneder", MONTHS_OFFERED),
        ("year", "År", YEARS_OFFERED),
    )
    groups: dict[str, list[Period]] = {}
    for kind, group, count in offered:
        running = Period.containing(now, kind)
        groups[group] = [running.shifted(-i) for i in range(count)]
        if chosen is not None and chosen.kind == kind and chosen not in groups[group]:
            groups[group] = sorted([*groups[group], chosen], reverse=True)
    return [
        (name, [(str(p), p.label_da() + (" (i gang)" if p.contains(now) else "")) for p in periods])
        for name, periods in groups.items()
    ]


def latest_quarter(now: datetime) -> Period:
    """The quarter a council meets about: the last one that has ended."""
    return Period.containing(now, "quarter").previous()


def council_router(clock: Clock, threshold: int) -> APIRouter:
    router = APIRouter(prefix="/raad", include_in_schema=False)

    def page(status: int, **context: Any) -> HTMLResponse:
        return HTMLResponse(renderers.render("raad.html", **context), status_code=status, headers=_PRIVATE)

    async def reader(request: Request) -> tuple[WebSession, Readership] | Response:
        """The signed-in reader and what she may read; or the answer instead: sign in first, or no access."""
        sessions: Sessions = request.app.state.web_sessions
        session = await sessions.current(request)
        if session is None:
            return await sessions.sign_in_redirect(request)
        person = session.person
        readers = readership(role_of(person), person.kommune)
        if not readers.reads_any:
            error = PageError("Ingen adgang til rådsrapporterne", (
                "Din bruger har ikke adgang til rådsrapporterne. De er for lokalrådenes og kredsrådets sekretærer"
                " og for politiet.",))  # fmt: skip
            return page(403, person=person, csrf=session.csrf, choices=[], error=error, r=None)
        return session, readers

    def form(session: WebSession, readers: Readership, choice: Choice, period: Period | None) -> dict[str, Any]:
        return {
            "person": session.person,
            "csrf": session.csrf,
            "choices": readers.choices(),
            "chosen": choice,
            "period_groups": period_groups(clock.now(), period),
            "focus_choices": [(fa.id, fa.da) for fa in focus_areas().values()],
        }

    async def chosen_report(
        request: Request, scope: str, period: str, focus_area: str
    ) -> tuple[WebSession, Readership, Choice, CouncilReport] | Response:
        """The report the URL names, once the reader may read it; or the page that says why not."""
        who = await reader(request)
        if isinstance(who, Response):
            return who
        session, readers = who
        choice, parsed, problems = read_choice(scope[:64], period[:64], focus_area[:64])
        if parsed is None:
            error = PageError("Den rapport findes ikke", tuple(problems))
            return page(400, r=None, error=error, **form(session, readers, choice, None))
        report_scope, report_period, report_focus = parsed
        if not readers.may_read(report_scope):
            allowed = " og ".join(s.label_da() for s in readers.choices())
            error = PageError("Ingen adgang til den rapport", (
                f"Du har ikke adgang til rådsrapporten for {report_scope.label_da()}.",
                f"Du kan læse rapporterne for {allowed}.",
            ))  # fmt: skip
            return page(403, r=None, error=error, **form(session, readers, choice, report_period))
        report = await handlers.council_report(
            request.app.state.reports, scope=report_scope, period=report_period, focus_area=report_focus,
            threshold=threshold, now=clock.now(),
        )  # fmt: skip
        return session, readers, choice, report

    async def download(request: Request, scope: str, period: str, focus_area: str, fmt: str) -> Response:
        started = time.perf_counter()
        found = await chosen_report(request, scope, period, focus_area)
        if isinstance(found, Response):
            return found
        report = found[3]
        focus = f"-{report.focus_area}" if report.focus_area else ""
        filename = f"raadsrapport-{report.scope}-{report.period}{focus}.{fmt}"
        headers = _PRIVATE | {"Content-Disposition": f'attachment; filename="{filename}"'}
        if fmt == "pdf":
            answer = Response(await asyncio.to_thread(renderers.to_pdf, report), media_type="application/pdf",
                              headers=headers)  # fmt: skip
        else:
            answer = Response(renderers.to_csv(report), media_type="text/csv; charset=utf-8", headers=headers)
        RENDERED.labels(fmt).inc()
        RENDER_SECONDS.labels(fmt).observe(time.perf_counter() - started)
        return answer

    @router.get("", response_model=None)
    @router.get("/", response_model=None)
    async def home(request: Request) -> Response:
        """The reader's own report of the last quarter that has ended (her kommune's, else the district's)."""
        who = await reader(request)
        if isinstance(who, Response):
            return who
        _, readers = who
        choice = Choice(str(readers.own), str(latest_quarter(clock.now())), "")
        return RedirectResponse(f"/raad/rapport?{choice.query}", status_code=303, headers=_PRIVATE)

    @router.get("/rapport", response_model=None)
    async def report_page(request: Request, scope: str = "", period: str = "", focus_area: str = "") -> Response:
        started = time.perf_counter()
        found = await chosen_report(request, scope, period, focus_area)
        if isinstance(found, Response):
            return found
        session, readers, choice, report = found
        context = form(session, readers, choice, report.period)
        html = await asyncio.to_thread(
            renderers.render, "raad.html", error=None, query=choice.query, **context,
            **renderers.report_context(report),
        )  # fmt: skip
        RENDERED.labels("page").inc()
        RENDER_SECONDS.labels("page").observe(time.perf_counter() - started)
        return HTMLResponse(html, headers=_PRIVATE)

    @router.get("/rapport.pdf", response_model=None)
    async def report_pdf(request: Request, scope: str = "", period: str = "", focus_area: str = "") -> Response:
        return await download(request, scope, period, focus_area, "pdf")

    @router.get("/rapport.csv", response_model=None)
    async def report_csv(request: Request, scope: str = "", period: str = "", focus_area: str = "") -> Response:
        return await download(request, scope, period, focus_area, "csv")

    return router


STYLESHEETS = ("pages.css", "report.css")


def static_router() -> APIRouter:
    """The pages' stylesheets (the council pages' and the public page's): no sign-in, no script anywhere."""
    router = APIRouter(prefix="/static", include_in_schema=False)
    for name in STYLESHEETS:
        router.add_api_route(f"/{name}", _stylesheet(name), methods=["GET"], response_model=None)
    return router


def _stylesheet(name: str) -> Callable[[], Awaitable[Response]]:
    async def stylesheet() -> Response:
        headers = {"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"}
        return Response(renderers.static_text(name), media_type="text/css; charset=utf-8", headers=headers)

    return stylesheet
