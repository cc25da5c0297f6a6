"""The reporting API for councils and police: KPIs, and council reports as JSON, HTML, PDF or CSV."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from services.reporting import handlers
from services.reporting.adapters import renderers
from services.reporting.domain.access import readership
from services.reporting.domain.periods import Period, PeriodError
from services.reporting.domain.report import CouncilReport, Scope, ScopeError
from services.reporting.metrics import RENDER_SECONDS, RENDERED
from shared.auth import ApiClient
from shared.clock import Clock
from shared.http import Problem, invalid_query, validation_problem
from shared.openapi import access, problem_responses
from shared.reference import focus_areas, kommuner
from shared.validation import SingleLine

FORMATS = ("json", "html", "pdf", "csv")

# Every error is problem+json; the document says which each route sends (shared/openapi.py).
_PROBLEMS = {
    403: "The key's role may not read reports, or a council person's access token asks for another kommune's figures",
    422: "One entry per bad parameter in `errors`: scope, period, focus_area, or the document's format",
}
_ANY_ROUTE = (401, 403, 422, 429, 503)

# What the document promises of the parameters, so that a client (and schemathesis) can form valid
# ones; the route still checks them itself and answers in the domain's words (a 422 per field).
_PERIOD_PATTERN = r"(20[0-9]{2}|2100)(-Q[1-4]|-(0[1-9]|1[0-2]))?"
_PERIOD = {"pattern": f"^{_PERIOD_PATTERN}$"}
_DOCUMENT = {"pattern": rf"^{_PERIOD_PATTERN}\.({'|'.join(FORMATS)})$"}


# The reference data is read when the document is built, not when this module is imported.
def _scope_enum(schema: dict[str, Any]) -> None:
    schema["enum"] = ["kreds", *sorted(kommuner())]


def _focus_area_enum(schema: dict[str, Any]) -> None:
    schema["enum"] = sorted(focus_areas())


def _parse(scope: str, period: str, focus_area: str | None, where: str) -> tuple[Scope, Period, str | None]:
    errors = []
    parsed_scope = parsed_period = None
    try:
        parsed_scope = Scope.parse(scope)
    except ScopeError as exc:
        errors.append({"field": "scope", "in": where, "message": str(exc), "code": "invalid"})
    try:
        parsed_period = Period.parse(period)
    except PeriodError as exc:
        errors.append({"field": "period", "in": where, "message": str(exc), "code": "invalid"})
    if focus_area is not None and focus_area not in focus_areas():
        errors.append(
            {
                "field": "focus_area",
                "in": "query",
                "message": f"Unknown focus area; known: {', '.join(focus_areas())}.",
                "code": "invalid",
            }
        )
    if errors:
        raise validation_problem(errors)
    assert parsed_scope is not None and parsed_period is not None
    return parsed_scope, parsed_period, focus_area


def may_read(client: ApiClient, scope: Scope) -> None:
    """A person's access token reads what that person may (domain/access.py); a machine key as its role allows."""
    if client.person is None:
        return
    readers = readership(client.role, client.person.kommune)
    if not readers.may_read(scope):
        allowed = ", ".join(str(s) for s in readers.choices()) or "none"
        raise Problem(403, "Forbidden", f"{client.person.username} may read these scopes only: {allowed}.")


def reporting_router(clock: Clock, threshold: int) -> APIRouter:
    router = APIRouter(
        prefix="/v1",
        tags=["reporting"],
        dependencies=[Depends(access("council", "police"))],
        responses=problem_responses(_PROBLEMS, *_ANY_ROUTE),
    )

    async def report(request: Request, scope: Scope, period: Period, focus_area: str | None) -> CouncilReport:
        may_read(request.state.client, scope)
        return await handlers.council_report(
            request.app.state.reports,
            scope=scope,
            period=period,
            focus_area=focus_area,
            threshold=threshold,
            now=clock.now(),
        )

    # JSONResponse directly: the document is plain JSON already, and FastAPI's validation and
    # encoding of a large nested dict against `dict[str, Any]` would cost more than computing it.
    @router.get(
        "/kpis",
        summary="KPIs of a scope and period, beside the previous period and a year earlier",
        response_class=JSONResponse,
    )
    async def kpis(
        request: Request,
        scope: Annotated[
            str, Query(description="kreds or a kommunekode, e.g. 0265", json_schema_extra=_scope_enum), SingleLine
        ],
        period: Annotated[str, Query(description="2026, 2026-Q1 or 2026-03", json_schema_extra=_PERIOD), SingleLine],
        focus_area: Annotated[
            str | None,
            Query(description="an indsatsområde id, e.g. indbrud", json_schema_extra=_focus_area_enum),
            SingleLine,
        ] = None,
    ) -> JSONResponse:
        started = time.perf_counter()
        parsed = _parse(scope, period, focus_area, "query")
        document = (await report(request, *parsed)).as_dict()
        for only_in_report in ("trend", "rules"):
            document.pop(only_in_report)
        RENDERED.labels("kpis").inc()
        RENDER_SECONDS.labels("kpis").observe(time.perf_counter() - started)
        return JSONResponse(document)

    @router.get(
        "/council-reports/{scope}/{document}",
        summary="A council report: /v1/council-reports/kreds/2026-Q1.pdf (json, html, pdf or csv)",
        response_class=Response,
        responses={200: {"content": {"application/pdf": {}, "text/html": {}, "text/csv": {}, "application/json": {}}}},
    )
    async def council_report(
        request: Request,
        scope: Annotated[
            str, Path(description="kreds or a kommunekode, e.g. 0265", json_schema_extra=_scope_enum), SingleLine
        ],
        document: Annotated[
            str, Path(description="<period>.<format>, e.g. 2026-Q1.pdf", json_schema_extra=_DOCUMENT), SingleLine
        ],
        focus_area: Annotated[
            str | None, Query(description="only this indsatsområde", json_schema_extra=_focus_area_enum), SingleLine
        ] = None,
    ) -> Response:
        started = time.perf_counter()
        period_text, dot, fmt = document.rpartition(".")
        if not dot or fmt not in FORMATS:
            raise invalid_query("document", f"Ask for <period>.<format> with a format of {', '.join(FORMATS)}.")
        parsed = _parse(scope, period_text, focus_area, "path")
        built = await report(request, *parsed)
        filename = f"raadsrapport-{built.scope}-{built.period}.{fmt}"
        disposition = {"Content-Disposition": f'inline; filename="{filename}"'}
        answer: Response
        if fmt == "json":
            answer = JSONResponse(renderers.to_json(built))
        elif fmt == "csv":
            answer = Response(renderers.to_csv(built), media_type="text/csv; charset=utf-8", headers=disposition)
        elif fmt == "html":
            html = await asyncio.to_thread(renderers.to_html, built)
            answer = HTMLResponse(html, headers={"Content-Security-Policy": renderers.document_policy()})
        else:
            pdf = await asyncio.to_thread(renderers.to_pdf, built)
            answer = Response(pdf, media_type="application/pdf", headers=disposition)
        RENDERED.labels(fmt).inc()
        RENDER_SECONDS.labels(fmt).observe(time.perf_counter() - started)
        return answer

    return router
