"""Intake's HTTP API: the citizen portal submits and reads status, police systems record actions.

Routes are thin: check the key and its rate, validate the body with the domain's rules (so its
readable messages reach the portal), hand the result to a use case (handlers.py), answer. The body is
parsed here rather than by FastAPI, so every 422 carries the domain's words, one per field;
the OpenAPI document still describes each body (`install_openapi`).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import random
import uuid
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.intake.domain.cases import CaseKind, CaseStatus
from services.intake.domain.fields import InvalidSubmission
from services.intake.entrypoints.bodies import ActionIn, OfficerRequestIn, ReportIn, SubmissionT, TipIn
from services.intake.entrypoints.checks import validate_submission
from services.intake.handlers import (
    ActionRefused,
    Answer,
    CaseDetails,
    CaseNotFound,
    IdempotencyKey,
    IdempotencyKeyReused,
    NewAction,
    NewCase,
    Uow,
    read_status,
    record_action,
    report_case,
)
from services.intake.metrics import REPLAYED
from shared.auth import ApiClient
from shared.clock import Clock
from shared.http import Problem, instance, problem_response, validation_problem
from shared.openapi import access, problem_responses
from shared.reference import categories

BODY_MODELS: tuple[type[BaseModel], ...] = (ReportIn, TipIn, OfficerRequestIn, ActionIn)


# --- Answers -----------------------------------------------------------------------------------


class Accepted(BaseModel):
    """202: stored, and its event is on its way to cases.v1."""

    case_id: uuid.UUID
    reference: str = Field(
        description="Short reference for the citizen, readable over the phone", examples=["MV-7K3Q-9FX"]
    )
    status_url: str = Field(description="Where the case's status can be read", examples=["/v1/cases/0b6f…"])


class ActionAccepted(Accepted):
    action_id: uuid.UUID


class CaseStatusOut(BaseModel):
    """What the portal may show the citizen: state and reference, nothing personal."""

    # The fields of domain.cases.CaseStatusView, then the case id.
    model_config = ConfigDict(frozen=True, extra="forbid")

    reference: str
    kind: CaseKind
    category: str
    status: CaseStatus
    label_da: str
    label_en: str
    since: AwareDatetime
    case_id: uuid.UUID


_PROBLEMS = {
    400: "No Idempotency-Key header (required on the portal's submissions)",
    404: "No such case",
    409: "The action does not fit the case now; `detail` says why, `code` names the rule",
    413: "The body is too large",
    415: "The body is not JSON",
    422: "One entry per bad field in `errors`, or an Idempotency-Key reused for a different request",
    503: "The database is not reachable; nothing was saved; see Retry-After",
}


def _problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    return problem_responses(_PROBLEMS, *codes)


def _body(model: type[BaseModel], example: dict[str, Any] | None = None) -> dict[str, Any]:
    """The request body for OpenAPI only; the route validates it itself."""
    media: dict[str, Any] = {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
    if example is not None:
        media["example"] = example
    return {"requestBody": {"required": True, "content": {"application/json": media}}}


TIP_EXAMPLE = {
    "category": "drug_dealing_street",
    "description": "Salg fra en hvid varevogn bag hallen hver aften omkring kl. 21.",
    "postcode": "4300",
    "anonymous": True,
}
OFFICER_REQUEST_EXAMPLE = {
    "request_type": "talk",
    "description": "Oplæg om tryghed for seniorklubben i forsamlingshuset.",
    "kommune": "0350",
    "contact": {"name": "Jens Nielsen", "email": "jens@example.dk"},
}
ACTION_EXAMPLE = {"action": "dispatched", "occurred_at": "2026-03-01T08:05:00+01:00", "officer_id": "MVSJ-1234"}


# --- Access: who calls, and how often --------------------------------------------------------


# The portal's status polling has a rate-limit bucket of its own (shared/ratelimit.py).
STATUS_BUCKET = "status"


Portal = Annotated[ApiClient, Depends(access("portal"))]
Police = Annotated[ApiClient, Depends(access("police"))]
StatusReader = Annotated[ApiClient, Depends(access("portal", "police", bucket=STATUS_BUCKET))]
IDEMPOTENCY_KEY_DESCRIPTION = (
    "Any unique string per request (a UUID is fine), 1 to 255 visible ASCII characters. A repeat gets"
    " the first answer and publishes nothing new; the same key with a different body is a 422."
)
_IDEMPOTENCY_KEY_RULES: dict[str, Any] = {"min_length": 1, "max_length": 255, "pattern": r"^[!-~]+$"}
IdempotencyKeyHeader = Annotated[
    str | None, Header(alias="Idempotency-Key", description=IDEMPOTENCY_KEY_DESCRIPTION, **_IDEMPOTENCY_KEY_RULES)
]
# On the portal's POSTs the key is required, but a missing one is a 400 naming the header (not a
# 422 among the body's fields): FastAPI checks its form, the route its presence, and the OpenAPI
# document says "required" through REQUIRED_IDEMPOTENCY_KEY.
PortalIdempotencyKeyHeader = Annotated[
    str | None, Header(alias="Idempotency-Key", include_in_schema=False, **_IDEMPOTENCY_KEY_RULES)
]
REQUIRED_IDEMPOTENCY_KEY: dict[str, Any] = {
    "parameters": [
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": True,
            "description": IDEMPOTENCY_KEY_DESCRIPTION
            + " Required: a retry after an unclear answer (a 503, a timeout) must carry the first try's key,"
            " or it makes a second case.",
            "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^[!-~]+$"},
        }
    ]
}
IDEMPOTENCY_KEY_REQUIRED = "Send an Idempotency-Key header (a new UUID per submission; the same one when retrying it)."


def require_idempotency_key(key: str | None) -> str:
    """The portal's key, or a 400 problem naming the header."""
    if key is None:
        raise Problem(
            400,
            "Idempotency-Key required",
            IDEMPOTENCY_KEY_REQUIRED,
            kind="idempotency-key-required",
            errors=[
                {"field": "Idempotency-Key", "in": "header", "message": IDEMPOTENCY_KEY_REQUIRED, "code": "missing"}
            ],
        )
    return key


# --- Parsing ---------------------------------------------------------------------------------


def is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


async def parse(request: Request, model: type[SubmissionT]) -> tuple[SubmissionT, bytes]:
    """The validated body and its raw bytes; 415 or 422 problem+json when it is not acceptable."""
    clock: Clock = request.app.state.clock
    content_type = request.headers.get("content-type")
    if content_type and not is_json(content_type):
        raise Problem(415, "Unsupported media type", "Send the body as application/json.", kind="unsupported-media")
    raw = await request.body()
    try:
        return validate_submission(model, raw, clock.now()), raw
    except InvalidSubmission as exc:
        raise validation_problem([e.as_problem_entry() for e in exc.errors]) from None


def request_hash(path: str, raw: bytes) -> str:
    """SHA-256 of the path and the body as canonical JSON: the same request, however it is formatted."""
    try:
        canonical = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except ValueError:
        canonical = raw.decode("utf-8", "replace")
    return hashlib.sha256(f"{path}\n{canonical}".encode()).hexdigest()


def client_ip(host: str | None) -> str | None:
    """The caller's IP address as Postgres' inet takes it, or None when the server gave none."""
    if not host:
        return None
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def _key(client: ApiClient, key: str | None, request: Request, raw: bytes) -> IdempotencyKey | None:
    if key is None:
        return None
    return IdempotencyKey(client=client.name, key=key, request_hash=request_hash(request.url.path, raw))


def _answer(request: Request, answer: Answer) -> JSONResponse:
    headers = {"Location": str(answer.body["status_url"])}
    if answer.replayed:
        headers["Idempotent-Replayed"] = "true"
        route = getattr(request.scope.get("route"), "path", request.url.path)
        REPLAYED.labels(route).inc()
    return JSONResponse(answer.body, status_code=answer.status_code, headers=headers)


CaseSubmission = ReportIn | TipIn | OfficerRequestIn


def new_case(
    submission: CaseSubmission, *, case_id: uuid.UUID, received_at: datetime, client_address: str | None
) -> NewCase:
    """The command for a validated report, tip or Bestil en betjent request; the person goes to CaseDetails only."""
    anonymous = isinstance(submission, TipIn) and submission.anonymous
    contact = None if anonymous else submission.contact
    details = CaseDetails(
        description=submission.description,
        address=submission.address,
        postcode=submission.postcode,
        lat=submission.position.lat if submission.position else None,
        lon=submission.position.lon if submission.position else None,
        contact_name=contact.name if contact else None,
        contact_phone=contact.phone if contact else None,
        contact_email=contact.email if contact else None,
        # An anonymous tipster leaves no trace, not even where the request came from.
        client_address=None if anonymous else client_address,
        institution=submission.institution if isinstance(submission, ReportIn) else None,
    )
    common: dict[str, Any] = {
        "case_id": case_id,
        "category": submission.category,
        "focus_area": categories()[submission.category].focus_area,
        "kommune": submission.kommunekode(),
        "received_at": received_at,
        "details": details,
    }
    match submission:
        case ReportIn():
            return NewCase(
                kind="report",
                occurred_at=submission.occurred_at,
                in_progress=submission.in_progress,
                acute=submission.acute,
                **common,
            )
        case TipIn():
            return NewCase(kind="tip", occurred_at=submission.occurred_at, anonymous=anonymous, **common)
        case OfficerRequestIn():
            return NewCase(kind="officer_request", request_type=submission.request_type, **common)


# --- Routes ----------------------------------------------------------------------------------


def intake_router(rng: random.Random | None = None) -> APIRouter:
    """The routes; `rng` draws case references (the OS's secure source unless a test gives a seeded one)."""
    router = APIRouter(prefix="/v1")

    async def submit(
        request: Request, parsed: tuple[CaseSubmission, bytes], client: ApiClient, idempotency_key: str
    ) -> JSONResponse:
        uow: Uow = request.app.state.uow
        clock: Clock = request.app.state.clock
        submission, raw = parsed
        case = new_case(
            submission,
            case_id=uuid.uuid4(),
            received_at=clock.now(),
            client_address=client_ip(request.client.host if request.client else None),
        )
        return _answer(request, await report_case(uow, case, _key(client, idempotency_key, request, raw), rng=rng))

    submitted: dict[str, Any] = {
        "status_code": 202,
        "response_model": Accepted,
        "tags": ["citizen portal"],
        "responses": _problems(400, 401, 403, 413, 415, 422, 429, 503),
    }

    @router.post(
        "/reports",
        summary="Report a crime (anmeldelse)",
        openapi_extra=_body(ReportIn) | REQUIRED_IDEMPOTENCY_KEY,
        **submitted,
    )
    async def post_report(request: Request, client: Portal, idempotency_key: PortalIdempotencyKeyHeader = None) -> Any:
        """Category, description and where it happened (kommunekode, or a postcode that settles it) are
        always needed; some categories need more (a burglary: in_progress and the address; violence
        and rape: acute; drug dealing at a school: the institution). Contact details stay in intake."""
        key = require_idempotency_key(idempotency_key)
        return await submit(request, await parse(request, ReportIn), client, key)

    @router.post(
        "/tips",
        summary="Send a tip (tip til politiet)",
        openapi_extra=_body(TipIn, TIP_EXAMPLE) | REQUIRED_IDEMPOTENCY_KEY,
        **submitted,
    )
    async def post_tip(request: Request, client: Portal, idempotency_key: PortalIdempotencyKeyHeader = None) -> Any:
        """An anonymous tip carries no contact details, and intake keeps neither them nor the sender's address."""
        key = require_idempotency_key(idempotency_key)
        return await submit(request, await parse(request, TipIn), client, key)

    @router.post(
        "/officer-requests",
        summary="Order an officer (Bestil en betjent): a traffic control or a talk",
        openapi_extra=_body(OfficerRequestIn, OFFICER_REQUEST_EXAMPLE) | REQUIRED_IDEMPOTENCY_KEY,
        **submitted,
    )
    async def post_officer_request(
        request: Request, client: Portal, idempotency_key: PortalIdempotencyKeyHeader = None
    ) -> Any:
        key = require_idempotency_key(idempotency_key)
        return await submit(request, await parse(request, OfficerRequestIn), client, key)

    @router.get(
        "/cases/{case_id}",
        response_model=CaseStatusOut,
        tags=["citizen portal"],
        summary="A case's status and reference (nothing personal)",
        responses=_problems(401, 403, 404, 422, 429, 503),
    )
    async def get_case(request: Request, case_id: uuid.UUID, _client: StatusReader) -> CaseStatusOut:
        uow: Uow = request.app.state.uow
        view = await read_status(uow, case_id)
        return CaseStatusOut(case_id=case_id, **asdict(view))

    @router.post(
        "/cases/{case_id}/actions",
        status_code=202,
        response_model=ActionAccepted,
        tags=["police"],
        summary="Record a police action on a case",
        openapi_extra=_body(ActionIn, ACTION_EXAMPLE),
        responses=_problems(401, 403, 404, 409, 413, 415, 422, 429, 503),
    )
    async def post_action(
        request: Request, case_id: uuid.UUID, client: Police, idempotency_key: IdempotencyKeyHeader = None
    ) -> Any:
        """The action must fit the case's kind, category and what was recorded before (409 says why not).
        Published as case.action_recorded with the case's category."""
        uow: Uow = request.app.state.uow
        clock: Clock = request.app.state.clock
        submission, raw = await parse(request, ActionIn)
        action = NewAction(
            action_id=uuid.uuid4(),
            case_id=case_id,
            request=submission,
            recorded_at=clock.now(),
            recorded_by=client.name,
            # A lokalbetjent acting as himself records on his own kommune's cases only (403 otherwise).
            only_kommune=None if client.person is None or client.person.is_vagtchef else client.person.kommune or "",
        )
        return _answer(request, await record_action(uow, action, _key(client, idempotency_key, request, raw)))

    return router


def install_intake_problems(app: FastAPI) -> None:
    """The store's refusals as problem+json."""

    @app.exception_handler(CaseNotFound)
    async def _not_found(request: Request, exc: CaseNotFound) -> JSONResponse:
        return problem_response(
            Problem(404, "Not found", "There is no such case.", kind="case-not-found"),
            instance=instance(request),
        )

    @app.exception_handler(ActionRefused)
    async def _refused(request: Request, exc: ActionRefused) -> JSONResponse:
        return problem_response(
            Problem(409, "Action not allowed", exc.reason, kind="action-not-allowed", code=exc.code),
            instance=instance(request),
        )

    @app.exception_handler(IdempotencyKeyReused)
    async def _reused(request: Request, exc: IdempotencyKeyReused) -> JSONResponse:
        message = (
            "This Idempotency-Key was already used with a different request. Use a new key for a new"
            " request, or repeat the first request unchanged."
        )
        return problem_response(
            Problem(
                422,
                "Idempotency-Key reused",
                message,
                kind="idempotency-key-reused",
                errors=[
                    {"field": "Idempotency-Key", "in": "header", "message": message, "code": "idempotency_key_reused"}
                ],
            ),
            instance=instance(request),
        )
