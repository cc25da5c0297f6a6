"""The public page of guarantee compliance (/offentlig/politigarantier) and its open data (.csv, .json): no sign-in.

Per kommune and quarter, for each politigaranti: met within the window ÷ concluded, as the council
reports count it (domain/public.py), small cells suppressed. It is served on the service's API port
(REPORTING_PORT, the port shared/cli.py calls public): council pages and the council API are reached
from outside the police network as well, so a port of its own would shield nothing; a proxy that
should publish only the open figures forwards `/offentlig/` and `/static/`. Anyone may ask, so the
figures are computed at most once per REPORTING_PUBLIC_CACHE_SECONDS per instance, and each address
takes from the anonymous rate bucket.
"""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.reporting import handlers
from services.reporting.adapters import open_data, renderers
from services.reporting.domain.periods import Period, PeriodError
from services.reporting.domain.public import GuaranteeCompliance
from services.reporting.metrics import RENDER_SECONDS, RENDERED
from shared.clock import Clock
from shared.openapi import problem_responses
from shared.ratelimit import ANONYMOUS, RateLimits
from shared.reference import kommuner
from shared.unit_of_work import UnitOfWork

_PROBLEMS = {
    429: "Too many requests from this address; see Retry-After",
    503: "The database is not reachable; see Retry-After",
}


class PublicFigures:
    """The public figures, computed at most once per `max_age` seconds in this instance, whoever asks."""

    def __init__(self, clock: Clock, threshold: int, max_age: float) -> None:
        self.clock = clock
        self.threshold = threshold
        self.max_age = max_age
        self._lock = asyncio.Lock()
        self._value: GuaranteeCompliance | None = None
        self._at = float("-inf")

    async def get(self, uow: UnitOfWork[handlers.ReadModel]) -> GuaranteeCompliance:
        # One computation at a time: a crowd arriving at once waits for the first one's answer.
        async with self._lock:
            if self._value is None or time.monotonic() - self._at >= self.max_age:
                self._value = await handlers.guarantee_compliance(uow, threshold=self.threshold, now=self.clock.now())
                self._at = time.monotonic()
            return self._value


def public_router(figures: PublicFigures, licence: open_data.Licence) -> APIRouter:
    router = APIRouter(prefix="/offentlig", tags=["open data"], responses=problem_responses(_PROBLEMS, 429, 503))
    # Anyone's to keep for a while, as the figures are; the licence travels with every answer.
    headers = {"Cache-Control": f"public, max-age={int(figures.max_age)}", "Link": f'<{licence.url}>; rel="license"'}

    async def compliance(request: Request) -> GuaranteeCompliance:
        limits: RateLimits = request.app.state.rate_limits
        limits.check(ANONYMOUS, request.client.host if request.client else "unknown", anonymous=True)
        return await figures.get(request.app.state.reports)

    @router.get("/politigarantier", include_in_schema=False, response_model=None)
    async def page(request: Request, kvartal: str = "") -> Response:
        started = time.perf_counter()
        c = await compliance(request)
        quarter, error, status = c.latest_complete, None, 200
        if kvartal:
            try:
                asked = Period.parse(kvartal[:16])
            except PeriodError:
                asked = None
            if asked in c.quarters:
                quarter = asked
            else:
                error, status = "Der er ingen tal for det kvartal. Vælg et kvartal fra listen.", 404
        html = await asyncio.to_thread(
            renderers.render, "politigarantier.html", c=c, quarter=quarter, quarters=list(reversed(c.quarters)),
            error=error, kommune_names={code: k.name for code, k in kommuner().items()}, cell_text=open_data.cell_da,
            method=open_data.method_da(c.threshold), licence=licence, publisher=open_data.PUBLISHER,
            schema=open_data.SCHEMA,
        )  # fmt: skip
        RENDERED.labels("public").inc()
        RENDER_SECONDS.labels("public").observe(time.perf_counter() - started)
        return HTMLResponse(html, status_code=status, headers=headers)

    @router.get(
        "/politigarantier.json",
        summary="Open data: each politigaranti met within its window ÷ concluded, per kommune and quarter",
        response_model=open_data.OpenData,
    )
    async def as_json(request: Request, response: Response) -> open_data.OpenData:
        response.headers.update(headers)
        return open_data.open_data(await compliance(request), licence)

    @router.get(
        "/politigarantier.csv",
        summary="Open data as CSV: the JSON document's rows, one per quarter, kommune and guarantee, and the licence",
        response_class=Response,
        responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
    )
    async def as_csv(request: Request) -> Response:
        document = open_data.open_data(await compliance(request), licence)
        disposition = {"Content-Disposition": 'attachment; filename="politigarantier.csv"'}
        return Response(open_data.to_csv(document), media_type="text/csv; charset=utf-8",
                        headers=headers | disposition)  # fmt: skip

    return router
