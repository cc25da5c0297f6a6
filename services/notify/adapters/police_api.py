"""Intake and deadlines as the signed-in officer: the console's calls to the other services' police API.

Every call carries the officer's own access token (`WebSessions.access_token`), so intake's access
log and its actions name the person, and each service applies its own rules (a lokalbetjent reads
only his kommune's cases). Nothing personal is kept here: an answer goes to the officer's browser
and nowhere else (not in notify's tables, events or logs).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

# Intake's purposes (services/intake/domain: Purpose); the console uses these two, chosen by the alert.
from services.notify.domain.report_access import ACUTE_RESPONSE, FOLLOWUP

__all__ = ["ACUTE_RESPONSE", "FOLLOWUP", "PoliceApiError", "PoliceApis"]


class PoliceApiError(Exception):
    """A refusal or failure the officer is told of in Danish; `status` is the other service's (or 503).

    `code`: the other service's reason for machines (intake's 409 `already_recorded`, `out_of_order`; its
    422 `idempotency_key_reused`), so a caller can tell "done before" from a real refusal."""

    def __init__(
        self, status: int, message: str, *, erased_at: datetime | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.erased_at = erased_at
        self.code = code


@dataclass(frozen=True, slots=True)
class PoliceApis:
    """The base URLs of intake and deadlines, and one HTTP client for both (closed with the app)."""

    intake_url: str
    deadlines_url: str
    http: httpx.AsyncClient

    async def case_details(self, token: str, case_id: uuid.UUID, purpose: str) -> dict[str, Any]:
        """What the citizen reported (intake's CaseDetailsOut as JSON), read as the officer for `purpose`.

        Intake logs the read (who, when, which fields, purpose, via console) before it answers.
        Raises PoliceApiError: 403 out of his reach, 404 no such case, 410 erased, 503 intake down.
        """
        answer = await self._call(
            "GET",
            f"{self.intake_url}/v1/cases/{case_id}/details",
            token,
            params={"purpose": purpose},
            headers={"X-Access-Via": "console"},
        )
        return dict(answer.json())

    async def record_action(
        self, token: str, case_id: uuid.UUID, action: str, occurred_at: datetime, idempotency_key: str
    ) -> dict[str, Any]:
        """Records `action` on the case through intake's actions API, as the officer (202 ActionAccepted).

        The same `idempotency_key` again (a double click, a retry) records nothing new."""
        answer = await self._call(
            "POST",
            f"{self.intake_url}/v1/cases/{case_id}/actions",
            token,
            json={"action": action, "occurred_at": occurred_at.isoformat()},
            headers={"Idempotency-Key": idempotency_key},
        )
        return dict(answer.json())

    async def open_deadlines(
        self, token: str, *, rule: str, kommune: str | None, limit: int = 500, offset: int = 0
    ) -> list[Any]:
        """The open (pending or breached) deadlines of `rule` (in `kommune`, if given), as the officer;
        deadlines answers the latest due first, a page of `limit` from `offset`."""
        params: dict[str, Any] = {"state": "open", "rule": rule, "limit": limit, "offset": offset}
        if kommune is not None:
            params["kommune"] = kommune
        answer = await self._call("GET", f"{self.deadlines_url}/v1/deadlines", token, params=params)
        body = answer.json()
        return list(body["items"] if isinstance(body, dict) else body)

    async def deadline(self, token: str, deadline_id: uuid.UUID) -> dict[str, Any]:
        """One deadline (deadlines' DeadlineDetail as JSON: case_id, rule_id, kommune, state, ...), as the officer."""
        answer = await self._call("GET", f"{self.deadlines_url}/v1/deadlines/{deadline_id}", token)
        return dict(answer.json())

    async def _call(self, method: str, url: str, token: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
        try:
            answer = await self.http.request(method, url, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise PoliceApiError(503, "Tjenesten svarer ikke lige nu. Prøv igen om et øjeblik.") from exc
        if answer.status_code < 300:
            return answer
        raise _refusal(answer)


def _refusal(answer: httpx.Response) -> PoliceApiError:
    status = answer.status_code
    try:
        problem = answer.json()
    except ValueError:
        problem = {}
    code = _code(problem)
    if status == 410:
        erased = problem.get("erased_at") if isinstance(problem, dict) else None
        at = datetime.fromisoformat(erased) if isinstance(erased, str) else None
        return PoliceApiError(410, "Anmeldelsens personoplysninger er slettet.", erased_at=at)
    messages = {
        401: "Din adgang kunne ikke bekræftes. Log ind igen.",
        403: "Sagen ligger uden for din adgang (en anden kommune, eller din rolle må ikke se den).",
        404: "Sagen findes ikke.",
        409: "Handlingen passer ikke til sagen, som den står nu.",
        429: "For mange opslag lige nu. Vent et øjeblik, og prøv igen.",
    }
    return PoliceApiError(status if status in messages else 503,
                          messages.get(status, "Tjenesten kunne ikke svare. Prøv igen om et øjeblik."),
                          code=code)  # fmt: skip


def _code(problem: Any) -> str | None:
    """The problem's `code` (a 409's), else its first field error's (a 422's), for machines."""
    if not isinstance(problem, dict):
        return None
    if isinstance(problem.get("code"), str):
        return str(problem["code"])
    errors = problem.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict) and isinstance(errors[0].get("code"), str):
        return str(errors[0]["code"])
    return None
