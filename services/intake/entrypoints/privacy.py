"""Intake's HTTP API for a report's personal content: police read it for a purpose; the data-protection role
reads who did, and erases it on request. docs/privacy.md is the whole story.

- `GET /v1/cases/{case_id}/details?purpose=...`: a police officer, as themselves (their access token), or
  a police system's key with `X-On-Behalf-Of: <roster id>` of the officer it acts for. Answered only
  once the read is in the access log (same transaction). `X-Access-Via: console` from notify's console.
- `GET /v1/cases/{case_id}/access-log`, `POST /v1/cases/{case_id}/erase`: a person with the
  `databeskyttelse` role, with their own access token; never a key.

Every answer here is `Cache-Control: no-store`: personal data (and officers' names) are not for caches.
"""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

from services.intake.domain.privacy import PURPOSE_MEANINGS, Purpose, Reader, StoredDetails, Via
from services.intake.entrypoints.checks import field_errors_from_validation_error
from services.intake.entrypoints.http import is_json
from services.intake.handlers import (
    AccessEntry,
    Erased,
    OutOfReach,
    PrivacyUow,
    erase_on_request,
    read_access_log,
    read_details,
)
from shared.auth import ApiClient
from shared.clock import Clock
from shared.http import Problem, instance, problem_response, validation_problem
from shared.officers import Officer
from shared.openapi import access, person_access, problem_responses
from shared.validation import SingleLine

DATA_PROTECTION_ROLE = "databeskyttelse"
NO_STORE = {"Cache-Control": "no-store"}
_ROSTER_ID = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,63}$")  # the roster's id form (services/notify/adapters/roster_file)

_PROBLEMS = {
    403: "The caller may not read this: not a police officer, a lokalbetjent asking for another kommune's case,"
    " a police system's key without X-On-Behalf-Of, or a key where only a person may act",
    404: "No such case",
    413: "The body is too large",
    415: "The body is not JSON",
    410: "The case's personal content was erased (`erased_at` says when); its facts remain at /v1/cases/{case_id}",
    422: "One entry per bad field, parameter or header in `errors` (a missing or unknown purpose; an"
    " X-On-Behalf-Of that names no officer of the roster, or comes with a person's own token)",
}


def _problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The problems, and the 200's Cache-Control header every route here sends."""
    no_store = {"description": "no-store: personal data is for this reader, not for caches", "required": True,
                "schema": {"type": "string", "enum": ["no-store"]}}  # fmt: skip
    return {200: {"headers": {"Cache-Control": no_store}}, **problem_responses(_PROBLEMS, *codes)}


# --- Answers ---------------------------------------------------------------------------------


class Position(BaseModel):
    lat: float
    lon: float


class ContactOut(BaseModel):
    name: str | None
    phone: str | None
    email: str | None


class AccessRecord(BaseModel):
    """This read as the access log holds it: the console shows that the look-up is logged."""

    id: int
    at: AwareDatetime
    purpose: Purpose


class CaseDetailsOut(BaseModel):
    """What the citizen reported. `fields` names the personal fields in this answer, as the access log does."""

    model_config = ConfigDict(extra="forbid")

    case_id: uuid.UUID
    reference: str
    kind: str
    category: str
    kommune: str
    received_at: AwareDatetime
    anonymous: bool = Field(description="An anonymous tip: intake keeps no contact details for it")
    description: str | None = Field(description="The citizen's own words, exactly as typed: escape it in HTML")
    address: str | None
    postcode: str | None
    position: Position | None
    institution: str | None = Field(description="drug_dealing_school: the school as the citizen typed it")
    contact: ContactOut | None = Field(description="null for an anonymous tip, or once erased (contact_erased_at)")
    contact_erased_at: AwareDatetime | None = Field(
        description="When the contact details were erased: their retention after the case's deadlines ended"
    )
    fields: list[str]
    logged: AccessRecord


class AccessEntryOut(BaseModel):
    id: int
    at: AwareDatetime
    action: Literal["read", "erase"]
    person_id: str = Field(description="The person's stable id: the roster id of an officer, else the provider's")
    person_name: str
    via: Literal["console", "api", "retention"] = Field(description="retention: the erasure job")
    via_key: str | None = Field(description="The police system's API key that acted for the person, if one did")
    purpose: Purpose | None = Field(description="Why it was read (reads)")
    reason: str | None = Field(description="Why it was erased (erasures)")
    fields: list[str] = Field(description="The personal fields read or erased: their names, never their values")


class AccessLogOut(BaseModel):
    case_id: uuid.UUID
    contact_erased_at: AwareDatetime | None
    details_erased_at: AwareDatetime | None
    items: list[AccessEntryOut]
    total: int
    limit: int
    offset: int


class EraseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, SingleLine] = Field(
        min_length=3,
        max_length=500,
        description="Why the case's personal data is erased now (e.g. 'the citizen asked, ref. DPO-2026-14')."
        " Kept in the access log: refer to the request, do not repeat the citizen's data.",
        examples=["Borgerens anmodning om sletning, j.nr. DPO-2026-14"],
    )

    @field_validator("reason")
    @classmethod
    def _said_something(cls, value: str) -> str:
        if len(value.strip()) < 3:
            raise ValueError("Say why, in a few words.")
        return value.strip()


class ErasedOut(BaseModel):
    case_id: uuid.UUID
    erased_at: AwareDatetime
    fields: list[str] = Field(description="The personal fields that held something and were blanked")
    already_erased: bool = Field(description="true: erased before (by the retention or an earlier request)")


def details_out(details: StoredDetails, fields: tuple[str, ...], entry_id: int, at: Any, purpose: Purpose) -> Any:
    position = (
        Position(lat=details.lat, lon=details.lon) if details.lat is not None and details.lon is not None else None
    )
    contact = details.contact
    shown = contact if any((contact.name, contact.phone, contact.email)) else None
    return CaseDetailsOut(
        case_id=details.case_id, reference=details.reference, kind=details.kind, category=details.category,
        kommune=details.kommune, received_at=details.received_at, anonymous=details.anonymous,
        description=details.description, address=details.address, postcode=details.postcode, position=position,
        institution=details.institution,
        contact=ContactOut(name=shown.name, phone=shown.phone, email=shown.email) if shown else None,
        contact_erased_at=details.contact_erased_at, fields=list(fields),
        logged=AccessRecord(id=entry_id, at=at, purpose=purpose),
    )  # fmt: skip


def entry_out(entry: AccessEntry) -> AccessEntryOut:
    assert entry.id is not None
    return AccessEntryOut(
        id=entry.id, at=entry.at, action=entry.action, person_id=entry.person_id, person_name=entry.person_name,
        via=entry.via, via_key=entry.via_key, purpose=entry.purpose, reason=entry.reason, fields=list(entry.fields),
    )  # fmt: skip


# --- Who reads -------------------------------------------------------------------------------

OnBehalfOf = Annotated[
    str | None,
    SingleLine,
    Header(
        alias="X-On-Behalf-Of",
        max_length=64,
        description="With a police system's API key: the roster id of the officer the system acts for (e.g."
        " vc-anne, lb-greve-1), who must be a vagtchef or lokalbetjent of the roster; the read is recorded in"
        " that officer's name, with the key's. Required with a key; refused with a person's own token.",
    ),
]
AccessVia = Annotated[
    Via,
    Header(
        alias="X-Access-Via",
        description="How the reader came: `console` from notify's duty console, else `api` (the default);"
        " recorded in the access log.",
    ),
]


def _header_problem(message: str) -> Problem:
    return validation_problem([{"field": "X-On-Behalf-Of", "in": "header", "message": message, "code": "invalid"}])


def reader_for(client: ApiClient, on_behalf_of: str | None, via: Via, officers: dict[str, Officer]) -> Reader:
    """The person a read is made by: the token's person, or the officer a police system's key acts for."""
    person = client.person
    if person is not None:
        if on_behalf_of is not None:
            raise _header_problem("With a person's own access token, leave X-On-Behalf-Of out: you read as yourself.")
        return Reader(id=person.id, name=person.name, kommuner=person.kommuner, via=via)
    if on_behalf_of is None:
        raise Problem(
            403,
            "Forbidden",
            "A police system reads a report's personal content only for an officer: send X-On-Behalf-Of with the"
            " roster id of the officer you act for, or the officer's own access token.",
        )
    officer = officers.get(on_behalf_of) if _ROSTER_ID.match(on_behalf_of) else None
    if officer is None:
        raise _header_problem("Not a police officer of the district's roster (a vagtchef's or lokalbetjent's id).")
    as_person = officer.as_person()
    return Reader(id=officer.id, name=officer.name, kommuner=as_person.kommuner, via=via, via_key=client.name)


async def parse_erase(request: Request) -> EraseIn:
    """The body, parsed here as intake's other routes do: a 415 for non-JSON, a 422 per bad field, never a 400."""
    content_type = request.headers.get("content-type")
    if content_type and not is_json(content_type):
        raise Problem(415, "Unsupported media type", "Send the body as application/json.", kind="unsupported-media")
    try:
        return EraseIn.model_validate_json(await request.body())
    except ValidationError as exc:
        errors = field_errors_from_validation_error(exc)
        raise validation_problem([e.as_problem_entry() for e in errors]) from None


Police = Annotated[ApiClient, Depends(access("police"))]
DataProtection = Annotated[ApiClient, Depends(person_access(DATA_PROTECTION_ROLE))]

PURPOSE_DESCRIPTION = "Why the report is read; recorded in the access log. One of: " + "; ".join(
    f"`{p}`: {meaning}" for p, meaning in PURPOSE_MEANINGS.items()
)


def privacy_router(officers: dict[str, Officer]) -> APIRouter:
    """The routes; `officers` are the roster's, whom a police system's key may act for."""
    router = APIRouter(prefix="/v1", tags=["personal data"])

    @router.get(
        "/cases/{case_id}/details",
        response_model=CaseDetailsOut,
        summary="What the citizen reported (personal: read for a purpose, logged)",
        responses=_problems(401, 403, 404, 410, 422, 429, 503),
    )
    async def get_details(
        request: Request,
        response: Response,
        case_id: uuid.UUID,
        client: Police,
        purpose: Annotated[Purpose, Query(description=PURPOSE_DESCRIPTION)],
        on_behalf_of: OnBehalfOf = None,
        via: AccessVia = "api",
    ) -> Any:
        """The report's text, address, postcode, position and institution, and (unless anonymous) the
        citizen's contact details. A vagtchef reads any case, a lokalbetjent his own kommune's; council
        and portal keys never. Answered only once the read is in the case's access log (who, when,
        purpose, which fields), in the same transaction."""
        uow: PrivacyUow = request.app.state.privacy_uow
        clock: Clock = request.app.state.clock
        reader = reader_for(client, on_behalf_of, via, officers)
        read = await read_details(uow, case_id, reader, purpose, clock.now())
        response.headers.update(NO_STORE)
        return details_out(read.details, read.fields, read.entry_id, read.at, purpose)

    @router.get(
        "/cases/{case_id}/access-log",
        response_model=AccessLogOut,
        summary="Who read or erased a case's personal content, and when (data-protection role)",
        responses=_problems(401, 403, 404, 422, 429, 503),
    )
    async def get_access_log(
        request: Request,
        response: Response,
        case_id: uuid.UUID,
        _client: DataProtection,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> Any:
        """Oldest first. Read-only: no API changes or deletes an entry; entries older than the access log's
        retention are deleted by the erasure job."""
        uow: PrivacyUow = request.app.state.privacy_uow
        page = await read_access_log(uow, case_id, limit=limit, offset=offset)
        response.headers.update(NO_STORE)
        return AccessLogOut(
            case_id=page.case_id, contact_erased_at=page.contact_erased_at, details_erased_at=page.details_erased_at,
            items=[entry_out(e) for e in page.entries], total=page.total, limit=limit, offset=offset,
        )  # fmt: skip

    @router.post(
        "/cases/{case_id}/erase",
        response_model=ErasedOut,
        summary="Erase a case's personal content now, with a reason (data-protection role)",
        responses=_problems(401, 403, 404, 413, 415, 422, 429, 503),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/EraseIn"}}},
            }
        },
    )
    async def post_erase(request: Request, response: Response, case_id: uuid.UUID, client: DataProtection) -> Any:
        """Blanks the text, address, postcode, position, institution, contact details and client address;
        keeps the case's facts (kind, category, kommune, times, actions), so deadlines and council figures
        are unchanged. Recorded in the access log with the reason. A repeat answers the first erasure."""
        body = await parse_erase(request)
        uow: PrivacyUow = request.app.state.privacy_uow
        clock: Clock = request.app.state.clock
        person = client.person
        assert person is not None
        by = Reader(id=person.id, name=person.name, kommuner=None, via="api")
        erased = await erase_on_request(uow, case_id, by, body.reason, clock.now())
        response.headers.update(NO_STORE)
        return ErasedOut(
            case_id=case_id, erased_at=erased.erased_at, fields=list(erased.fields), already_erased=erased.already
        )

    return router


def install_privacy_problems(app: FastAPI) -> None:
    @app.exception_handler(OutOfReach)
    async def _out_of_reach(request: Request, exc: OutOfReach) -> JSONResponse:
        return problem_response(
            Problem(403, "Forbidden", "This case belongs to a kommune your role does not reach.", headers=NO_STORE),
            instance=instance(request),
        )

    @app.exception_handler(Erased)
    async def _erased(request: Request, exc: Erased) -> JSONResponse:
        return problem_response(
            Problem(
                410,
                "Erased",
                f"The personal content of this case was erased on {exc.erased_at.date().isoformat()}; its facts"
                " remain at /v1/cases/{case_id}.",
                kind="erased",
                headers=NO_STORE,
                erased_at=exc.erased_at.isoformat(),
            ),
            instance=instance(request),
        )
