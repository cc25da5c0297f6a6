"""The lokalbetjent's follow-up list: his kommune's burglary victims whose tryghedsopfølgning is open.

A Danish page beside the console, for officers as themselves: the open deadlines of the rule
`tryghedsopfoelgning_burglary`, read from deadlines as the signed-in officer, nearest due first. It
shows the case's reference, kommune and times, nothing personal. "Vis telefon" reads the victim's
name and phone from intake for the purpose `followup`, as the officer (intake logs the read in his
name), and hands them to his browser only: notify never logs, stores or publishes them. "Udført"
records `followup_done` through intake's actions API as the officer; deadlines then meets the
deadline (deadlines.v1 `met`) and the row leaves the list. A lokalbetjent sees his own kommune, a
vagtchef every kommune (or one he picks); anyone else gets no list.
"""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from services.notify.adapters.police_api import FOLLOWUP, PoliceApiError, PoliceApis
from services.notify.domain.messages import kommune_name, local_time
from services.notify.entrypoints.console import CSRF_HEADER, render_page, signed_in_officer
from shared.reference import kommuner as district_kommuner
from shared.websession import WebSession, WebSessions, origin_of, same_origin

RULE = "tryghedsopfoelgning_burglary"
FOLLOWUP_DONE = "followup_done"
PATH = "/console/opfoelgning"
TEMPLATE = "opfoelgning.html"
# deadlines answers a page at most this long; a kommune's open follow-ups (14 days' burglaries) fit in a few.
PAGE = 500
MOST = 5000
# The Idempotency-Key of an officer's "udført" on a case: the same for every click, so it is recorded once.
_KEY_SPACE = uuid.UUID("5f0c8a4e-2b1d-4c6e-9a57-0f9d3c1e7b21")
NO_STORE = {"Cache-Control": "no-store"}
# intake's reasons that mean "it is recorded already", by this person (the key) or by a colleague.
_ALREADY = frozenset({"already_recorded", "idempotency_key_reused"})


@dataclass(frozen=True, slots=True)
class FollowupRow:
    """One victim's open follow-up as the list shows it: the case, never the person."""

    deadline_id: str
    case_id: str
    reference: str
    kommune_name: str
    reported: str
    due: str
    due_at: datetime
    overdue: bool


def followup_rows(items: Sequence[Mapping[str, Any]], now: datetime) -> list[FollowupRow]:
    """deadlines' open follow-up deadlines as rows, nearest due first, in Danish local time; overdue marked."""
    rows = []
    for item in items:
        due_at = datetime.fromisoformat(str(item["due_at"]))
        started_at = datetime.fromisoformat(str(item["started_at"]))
        rows.append(
            FollowupRow(
                deadline_id=str(item["id"]),
                case_id=str(item["case_id"]),
                reference=str(item.get("reference") or "uden reference"),
                kommune_name=kommune_name(str(item["kommune"])),
                reported=local_time(started_at),
                due=local_time(due_at),
                due_at=due_at,
                overdue=due_at <= now or item.get("state") == "breached",
            )
        )
    return sorted(rows, key=lambda r: (r.due_at, r.reference))


def followup_key(case_id: uuid.UUID | str, person_id: str) -> str:
    """The Idempotency-Key of `person_id`'s followup_done on the case: a double click records it once."""
    return str(uuid.uuid5(_KEY_SPACE, f"{FOLLOWUP_DONE}/{case_id}/{person_id}"))


def contact_shown(details: Mapping[str, Any]) -> dict[str, Any]:
    """Of intake's answer, what the list shows: the victim's name and phone, or why there are none."""
    contact = details.get("contact") or {}
    erased_at = details.get("contact_erased_at")
    shown: dict[str, Any]
    if details.get("anonymous"):
        shown = {"status": "anonym", "text": "Anonym anmeldelse: ingen kontaktoplysninger."}
    elif erased_at:
        erased = _day(datetime.fromisoformat(str(erased_at)))
        shown = {"status": "slettet", "text": f"Kontaktoplysningerne er slettet {erased}."}
    elif not contact.get("phone"):
        shown = {"status": "intet nummer", "text": "Borgeren har ikke oplyst et telefonnummer."}
    else:
        shown = {"status": "vist", "text": None}
    logged = details.get("logged") or {}
    at = logged.get("at")
    shown |= {"name": contact.get("name"), "phone": contact.get("phone"),
              "logged": f"Opslaget er logget i dit navn{' ' + local_time(datetime.fromisoformat(at)) if at else ''}"
                        ", formål: opfølgning."}  # fmt: skip
    return shown


def _day(at: datetime) -> str:
    """The date in Danish local time, e.g. 06.12.2026."""
    return local_time(at).split(" kl.", 1)[0]


def _problem(message: str, status: int) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status, headers=NO_STORE)


def followups_router(now: Callable[[], datetime], sessions: WebSessions) -> APIRouter:
    router = APIRouter(prefix=PATH, include_in_schema=False)
    provider = origin_of(sessions.provider.issuer)

    async def officer(request: Request) -> WebSession | Response:
        return await signed_in_officer(
            request, sessions, TEMPLATE,
            "Din bruger har ikke adgang til opfølgningslisten. Den er for lokalbetjente og vagtchefer.",
        )  # fmt: skip

    @router.get("", response_model=None)
    async def followup_list(request: Request, kommune: str = "") -> Response:
        session = await officer(request)
        if isinstance(session, Response):
            return session
        person = session.person
        district = district_kommuner()
        # A lokalbetjent's list is his kommune's, whatever the address says; a vagtchef picks one or sees all.
        chosen: str | None = kommune if person.is_vagtchef and kommune in district else None
        if not person.is_vagtchef:
            chosen = person.kommune
        context: dict[str, Any] = {
            "signed_in": True, "person": person, "csrf": session.csrf, "chosen": chosen or "",
            "scope": kommune_name(chosen) if chosen else "alle kommuner",
            "kommuner": [(k.code, k.name) for k in district.values()] if person.is_vagtchef else [],
        }  # fmt: skip
        token = await sessions.access_token(session)
        if token is None:
            return await sessions.sign_in_redirect(request)
        apis: PoliceApis = request.app.state.police_apis
        items: list[Any] = []
        try:
            while len(items) < MOST:
                page = await apis.open_deadlines(token, rule=RULE, kommune=chosen, limit=PAGE, offset=len(items))
                items += page
                if len(page) < PAGE:
                    break
        except PoliceApiError as exc:
            status = 503 if exc.status == 503 else 200  # deadlines down: the page says so, and so does its status
            return render_page(TEMPLATE, provider, status, rows=[], error=exc.message, **context)
        # deadlines' answer is the authority on kommune, but a lokalbetjent's list never shows another's.
        # Pages read while deadlines changes may overlap: each deadline once.
        unique = {str(i["id"]): i for i in items}.values()
        visible = [i for i in unique if person.sees_kommune(str(i["kommune"]))]
        rows = followup_rows(visible, now())
        return render_page(TEMPLATE, provider, 200, rows=rows, overdue=sum(r.overdue for r in rows), **context)

    async def open_followup(request: Request, deadline_id: uuid.UUID) -> tuple[str, uuid.UUID, str] | JSONResponse:
        """(the officer's token, the case, his id) for an open follow-up in his reach; else the refusal to answer."""
        session = await sessions.current(request)
        if session is None:
            return _problem("Du er ikke logget ind længere; genindlæs siden.", 401)
        csrf = request.headers.get(CSRF_HEADER, "")
        if not same_origin(request) or not hmac.compare_digest(csrf, session.csrf):
            return _problem("Ugyldig formular; genindlæs siden.", 403)
        if not session.person.is_police:
            return _problem("Din bruger har ikke adgang til opfølgningslisten.", 403)
        token = await sessions.access_token(session)
        if token is None:
            return _problem("Du er ikke logget ind længere; genindlæs siden.", 401)
        try:
            deadline = await request.app.state.police_apis.deadline(token, deadline_id)
        except PoliceApiError as exc:
            return _problem("Opfølgningen findes ikke." if exc.status == 404 else exc.message, exc.status)
        # Only a follow-up of his kommune, still open: the purpose `followup` and the action are for nothing else.
        if deadline.get("rule_id") != RULE:
            return _problem("Opfølgningen findes ikke.", 404)
        if not session.person.sees_kommune(str(deadline.get("kommune"))):
            return _problem("Opfølgningen hører til en anden kommune end din.", 403)
        if deadline.get("state") not in ("pending", "breached"):
            return _problem("Opfølgningen er allerede afsluttet; genindlæs listen.", 409)
        return token, uuid.UUID(str(deadline["case_id"])), session.person.id

    @router.post("/{deadline_id}/telefon", response_model=None)
    async def phone(request: Request, deadline_id: uuid.UUID) -> Response:
        checked = await open_followup(request, deadline_id)
        if isinstance(checked, Response):
            return checked
        token, case_id, _ = checked
        try:
            details = await request.app.state.police_apis.case_details(token, case_id, FOLLOWUP)
        except PoliceApiError as exc:
            if exc.status == 410:
                when = f" {_day(exc.erased_at)}" if exc.erased_at else ""
                return JSONResponse({"status": "slettet", "name": None, "phone": None, "logged": None,
                                     "text": f"Anmeldelsens personoplysninger er slettet{when}."},
                                    headers=NO_STORE)  # fmt: skip
            return _problem(exc.message, exc.status)
        # Straight to the officer's browser: nothing of it is logged or kept here.
        return JSONResponse(contact_shown(details), headers=NO_STORE)

    @router.post("/{deadline_id}/udfoert", response_model=None)
    async def done(request: Request, deadline_id: uuid.UUID) -> Response:
        checked = await open_followup(request, deadline_id)
        if isinstance(checked, Response):
            return checked
        token, case_id, person_id = checked
        apis: PoliceApis = request.app.state.police_apis
        try:
            await apis.record_action(token, case_id, FOLLOWUP_DONE, now(), followup_key(case_id, person_id))
        except PoliceApiError as exc:
            if exc.code in _ALREADY:
                return JSONResponse({"state": "registreret", "text": "Opfølgningen var allerede registreret."},
                                    headers=NO_STORE)  # fmt: skip
            if exc.code == "out_of_order":
                return _problem("Patruljens besøg er ikke registreret på sagen endnu; opfølgningen kan først"
                                " registreres efter det.", 409)  # fmt: skip
            return _problem(exc.message, exc.status)
        return JSONResponse({"state": "registreret", "text": "Opfølgningen er registreret som udført."},
                            headers=NO_STORE)  # fmt: skip

    return router
