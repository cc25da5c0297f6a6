"""The police API of notify: alerts with their audit trail; acknowledgement by an officer's access token, by a
police system's key for a roster officer, or by signed link."""

from __future__ import annotations

import html
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from services.notify import handlers
from services.notify.adapters import repository as repo
from services.notify.adapters.ack_links import AckClaim, AckLinks, InvalidLink
from services.notify.domain.alert import AlreadyResolved, MovedOn, ack_scope
from services.notify.domain.roster import VAGTCENTRAL_ID
from services.notify.metrics import count_events, observe_ack
from shared.auth import ApiClient
from shared.http import Problem, invalid_query, validation_problem
from shared.openapi import access, problem_responses
from shared.ratelimit import ANONYMOUS, RateLimits
from shared.reference import normalize_kommunekode
from shared.validation import SingleLine

StateFilter = Literal["open", "acknowledged", "escalated", "resolved", "unresolved"]
SeverityFilter = Literal["info", "warning", "critical"]
# Module level, so FastAPI can resolve the annotation (routes are defined in a closure).
Police = Annotated[ApiClient, Depends(access("police"))]

# Every error is problem+json; the document says which each route sends (shared/openapi.py).
_PROBLEMS = {
    400: "The body could not be read as JSON text (e.g. it is not UTF-8)",
    404: "No such alert",
    409: "The alert was resolved before this acknowledgement",
    413: "The body is larger than NOTIFY_MAX_BODY_BYTES",
    422: "One entry per bad field or parameter in `errors` (`by`: not an officer id of the roster)",
}
_ANY_ROUTE = (401, 403, 429)


class DeliveryOut(BaseModel):
    id: uuid.UUID
    stage: str
    recipient_id: str
    recipient_name: str
    channel: str
    state: str
    attempts: int
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class AlertOut(BaseModel):
    id: uuid.UUID
    case_id: uuid.UUID
    deadline_id: uuid.UUID
    rule_id: str = Field(description="The deadline rule (politigaranti or local target)")
    reference: str | None = Field(description="The case's reference; null until notify has seen the case")
    category: str
    kommune: str
    title: str
    severity: Literal["info", "warning", "critical"]
    state: Literal["open", "acknowledged", "escalated", "resolved"]
    reason: str
    level: int = Field(description="Escalation step reached (0: the first recipients)")
    due_at: datetime
    raised_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None = Field(description="Who acknowledged: the person's roster id or provider subject")
    acknowledged_by_name: str | None = Field(description="Their name, from the identity provider or the roster")
    resolved_at: datetime | None
    resolved_reason: str | None
    next_escalation_at: datetime | None
    deliveries: list[DeliveryOut]


class AuditEntry(BaseModel):
    at: datetime
    kind: str
    actor: str | None
    detail: dict[str, Any]


class AlertDetail(AlertOut):
    audit: list[AuditEntry]


class AlertPage(BaseModel):
    items: list[AlertOut]
    total: int
    limit: int
    offset: int


class AckOut(BaseModel):
    """The alert after the acknowledgement (the first one stands: a repeat answers the same)."""

    id: uuid.UUID
    state: Literal["open", "acknowledged", "escalated", "resolved"]
    acknowledged_by: str | None
    acknowledged_by_name: str | None
    acknowledged_at: datetime | None


class AckBody(BaseModel):
    by: Annotated[str | None, SingleLine] = Field(
        None,
        max_length=64,
        description="With an API key: the roster id of the officer who takes the alert (e.g. vc-a), required; a"
        " person, not the vagtcentral's shared desk. The key's name is recorded in the audit trail beside it."
        " With a person's access token: leave it out, the token says who.",
        examples=["vc-a"],
    )


# Fixed wording, Danish for the officer with the English beside it for the API's other readers.
MOVED_ON = (
    "Alarmen er skærpet, siden dette link blev sendt (f.eks. er fristen nu overskredet): linket gælder kun den"
    " tidligere besked. Kvittér med linket i den nyeste besked eller i konsollen. / The alert has moved on since"
    " this link was sent; acknowledge it from the latest message or the console."
)


DESK_ACK = (
    "Den fælles kanal kvitterer ikke: kvittér i konsollen, logget ind som dig selv, så det står, hvem der tog"
    " sagen. / The shared desk does not acknowledge: acknowledge on the console, signed in as yourself."
)


def alert_out(row: Any, deliveries: list[Any]) -> dict[str, Any]:
    return {
        **{k: row[k] for k in AlertOut.model_fields if k in row.keys()},  # noqa: SIM118 - asyncpg Record
        "rule_id": row["deadline_rule"],
        "next_escalation_at": row["next_timer_at"],
        "deliveries": [dict(d) for d in deliveries],
    }


def alerts_router(ctx: handlers.Context, links: AckLinks, now: Callable[[], datetime]) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["alerts"], responses=problem_responses(_PROBLEMS, *_ANY_ROUTE))
    anonymous = Depends(_limit_anonymous)

    @router.get("/alerts", response_model=AlertPage, summary="Alerts, most urgent first",
                responses=problem_responses(_PROBLEMS, 422, 503))  # fmt: skip
    async def list_alerts(
        request: Request,
        client: Police,
        state: Annotated[StateFilter | None, Query(description="unresolved = open, escalated or acknowledged")] = None,
        kommune: Annotated[str | None, Query(description="kommunekode, e.g. 0265"), SingleLine] = None,
        severity: Annotated[SeverityFilter | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> dict[str, Any]:
        code = None
        if kommune is not None:
            code = normalize_kommunekode(kommune)
            if code is None:
                raise invalid_query("kommune", "Not a kommunekode of the district, such as 0265.")
        person = client.person
        if person is not None and not person.is_vagtchef:
            # A lokalbetjent's list is his own kommune's alerts, whatever he asks for.
            if code is not None and code != person.kommune:
                return {"items": [], "total": 0, "limit": limit, "offset": offset}
            code = person.kommune
        async with request.app.state.runtime.db.acquire() as conn:
            rows, total = await repo.list_alerts(
                conn, state=state, kommune=code, severity=severity, limit=limit, offset=offset
            )
            deliveries = await repo.deliveries_of(conn, [r["id"] for r in rows])
        by_alert: dict[uuid.UUID, list[Any]] = {}
        for d in deliveries:
            by_alert.setdefault(d["alert_id"], []).append(d)
        items = [alert_out(r, by_alert.get(r["id"], [])) for r in rows]
        return {"items": items, "total": total, "limit": limit, "offset": offset}

    @router.get("/alerts/{alert_id}", response_model=AlertDetail,
                summary="One alert with its whole audit trail",
                responses=problem_responses(_PROBLEMS, 404, 422, 503))  # fmt: skip
    async def get_alert(request: Request, alert_id: uuid.UUID, client: Police) -> dict[str, Any]:
        async with request.app.state.runtime.db.acquire() as conn:
            row = await repo.get_alert(conn, alert_id)
            if row is None:
                raise Problem(404, "Not found", f"No alert {alert_id}.")
            _within_reach(client, row["kommune"])
            deliveries = await repo.deliveries_of(conn, [alert_id])
            audit = await repo.audit_of(conn, alert_id)
        return alert_out(row, deliveries) | {"audit": [dict(a) for a in audit]}

    async def _ack(request: Request, alert_id: uuid.UUID, by: str, via: Literal["api", "link", "console"],
                   link: AckClaim | None = None, key: str | None = None,
                   by_name: str | None = None) -> dict[str, Any]:  # fmt: skip
        at = now()
        uow: handlers.Uow = request.app.state.uow
        try:
            applied = await handlers.acknowledge(uow, alert_id, by, via, ctx, at, key=key, by_name=by_name,
                                                 for_reason=link.reason if link else None,
                                                 link=link.delivery_id if link else None)  # fmt: skip
        except handlers.LinkUsed as exc:
            raise Problem(409, "Link already used", "Dette link er allerede brugt.", kind="ack-link-used") from exc
        except handlers.NotFound as exc:
            raise Problem(404, "Not found", f"No alert {alert_id}.") from exc
        except AlreadyResolved as exc:
            raise Problem(409, "Alert resolved", "The alert was resolved before this acknowledgement.",
                          kind="alert-resolved") from exc  # fmt: skip
        except MovedOn as exc:  # the transaction rolled back: the link stays unused
            raise Problem(409, "Alert moved on", MOVED_ON, kind="alert-moved-on") from exc
        count_events(applied.events, applied.shown, at)
        alert = applied.alert
        assert alert is not None
        if applied.events and alert.acknowledged_at is not None:
            observe_ack(alert.severity, alert.raised_at, alert.acknowledged_at)
        return {"id": str(alert.id), "state": alert.state, "acknowledged_by": alert.acknowledged_by,
                "acknowledged_by_name": alert.acknowledged_by_name,
                "acknowledged_at": alert.acknowledged_at}  # fmt: skip

    @router.post("/alerts/{alert_id}/ack", response_model=AckOut,
                 summary="Acknowledge: take responsibility; escalation and reminders stop",
                 responses=problem_responses(_PROBLEMS, 400, 404, 409, 413, 422, 503))  # fmt: skip
    async def acknowledge(
        request: Request, alert_id: uuid.UUID, client: Police, body: AckBody | None = None
    ) -> dict[str, Any]:
        person = client.person
        if person is not None:
            # A person acknowledges as themselves (their access token says who): never for someone else.
            if body is not None and body.by and body.by != person.id:
                message = "With a person's access token, leave 'by' out: you acknowledge as yourself."
                raise validation_problem([{"field": "by", "in": "body", "code": "invalid", "message": message}])
            async with request.app.state.runtime.db.acquire() as conn:
                row = await repo.get_alert(conn, alert_id)
            if row is None:
                raise Problem(404, "Not found", f"No alert {alert_id}.")
            _within_reach(client, row["kommune"])
            return await _ack(request, alert_id, person.id, "api", by_name=person.name)
        # A police system's key acknowledges for a person of the roster, named in `by`: a record of an
        # acknowledgement names who took responsibility, never a key or a desk (free text would go out on
        # alerts.v1 and into e-mails, so only a roster id).
        if body is None or not body.by:
            raise validation_problem([{"field": "by", "in": "body", "code": "missing",
                                       "message": "A key acknowledges for an officer: give the officer's roster id"
                                       " in 'by' (or call with the officer's own access token)."}])  # fmt: skip
        officer = ctx.roster().find(body.by)
        if officer is None or officer.kind == "vagtcentral":
            message = ("The vagtcentral is a shared desk, not a person: name the officer who takes the alert."
                       if officer is not None else "Not an officer id of the roster.")  # fmt: skip
            raise validation_problem([{"field": "by", "in": "body", "message": message, "code": "invalid"}])
        return await _ack(request, alert_id, officer.id, "api", key=client.name)

    @router.get("/alerts/{alert_id}/ack-link", response_class=HTMLResponse, include_in_schema=False,
                dependencies=[anonymous])  # fmt: skip
    async def ack_link_page(request: Request, alert_id: uuid.UUID, token: str = "") -> HTMLResponse:
        # A GET never acknowledges: mail scanners and link previews fetch links. It shows a form that posts back.
        try:
            claim = links.read(token)
        except InvalidLink as exc:
            return _page("Kvittering", f"<p>{html.escape(str(exc))}</p>", 400)
        if claim.alert_id != alert_id:
            return _page("Kvittering", "<p>Linket er ikke gyldigt.</p>", 400)
        if claim.recipient == VAGTCENTRAL_ID:
            return _page("Kvittering", f"<p>{html.escape(DESK_ACK)}</p>", 400)
        async with request.app.state.runtime.db.acquire() as conn:
            current = await repo.get_alert(conn, alert_id)
        scope = ack_scope(current["reason"], current["generation"]) if current is not None else None
        if current is not None and current["state"] != "resolved" and scope != claim.reason:
            return _page("Kvittering", f"<p>{html.escape(MOVED_ON)}</p>", 409)
        form = (
            f"<p>Kvittér for alarmen som <strong>{html.escape(claim.recipient)}</strong>? "
            "Så stopper eskalering og påmindelser, og de andre får besked.</p>"
            f'<form method="post" action="/v1/alerts/{html.escape(str(alert_id))}/ack-link">'
            f'<input type="hidden" name="token" value="{html.escape(token, quote=True)}">'
            '<button type="submit">Kvittér</button></form>'
        )
        return _page("Kvittér for alarm", form, 200)

    @router.post("/alerts/{alert_id}/ack-link", response_class=HTMLResponse, include_in_schema=False,
                 dependencies=[anonymous])  # fmt: skip
    async def ack_link_post(request: Request, alert_id: uuid.UUID) -> HTMLResponse:
        # A plain urlencoded form; read by hand, which spares a multipart dependency for one field.
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        token = (form.get("token") or [""])[0]
        try:
            claim = links.read(token)
        except InvalidLink as exc:
            return _page("Kvittering", f"<p>{html.escape(str(exc))}</p>", 400)
        if claim.alert_id != alert_id:
            return _page("Kvittering", "<p>Linket er ikke gyldigt.</p>", 400)
        if claim.recipient == VAGTCENTRAL_ID:  # a link sent before the shared desk's messages lost theirs
            return _page("Kvittering", f"<p>{html.escape(DESK_ACK)}</p>", 400)
        try:
            result = await _ack(request, alert_id, claim.recipient, "link", link=claim)
        except Problem as problem:
            return _page("Kvittering", f"<p>{html.escape(problem.detail or problem.title)}</p>", problem.status)
        who = result["acknowledged_by_name"] or result["acknowledged_by"]
        return _page("Kvitteret", f"<p>Alarmen er kvitteret af {html.escape(str(who))}.</p>",
                     200)  # fmt: skip

    return router


def _within_reach(client: ApiClient, kommune: str) -> None:
    """A lokalbetjent with his own token reaches his kommune's alerts only; keys and vagtchefer reach all."""
    if client.person is not None and not client.person.sees_kommune(kommune):
        raise Problem(403, "Forbidden", "The alert belongs to another kommune than yours.")


async def _limit_anonymous(request: Request) -> None:
    """Ack links carry no API key: they take from the anonymous bucket, per client address, as a keyless call does."""
    limits: RateLimits = request.app.state.rate_limits
    limits.check(ANONYMOUS, request.client.host if request.client else "unknown", anonymous=True)


def _page(title: str, body: str, status: int) -> HTMLResponse:
    """`body` is already escaped by the caller."""
    return HTMLResponse(
        f'<!doctype html><html lang="da"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><meta name="robots" content="noindex">'
        f"</head><body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>",
        status_code=status,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )
