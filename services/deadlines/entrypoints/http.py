"""The police API of the deadlines service: open, met and breached deadlines, and one deadline's timeline."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AwareDatetime, BaseModel, Field

from services.deadlines.adapters import repository
from services.deadlines.adapters.repository import DeadlineFilter
from services.deadlines.domain.deadline import met_late, response_seconds
from services.deadlines.domain.rules import RuleSet
from shared.auth import require_role
from shared.http import Problem, invalid_query
from shared.openapi import bearer, problem_responses
from shared.reference import normalize_kommunekode
from shared.validation import SingleLine

StateFilter = Literal["open", "pending", "breached", "met", "cancelled"]


class DeadlineOut(BaseModel):
    id: uuid.UUID
    case_id: uuid.UUID
    reference: str | None = Field(None, description="The case's reference; null on deadlines older than the field")
    rule_id: str
    title: str
    basis: Literal["guarantee", "local_target"]
    window_set_by: Literal["law", "district"]
    kommune: str
    category: str
    focus_area: str
    state: Literal["pending", "met", "breached", "cancelled"]
    started_at: datetime
    due_at: datetime
    next_fire_at: datetime | None = Field(None, description="When the next warning or the breach fires")
    breached_at: datetime | None
    met_at: datetime | None
    met_action: str | None
    late: bool | None = Field(
        None,
        description="Met after the due time, or met in time but recorded too late to withdraw its breach "
        "(breach_stands)",
    )
    breach_stands: bool = Field(
        False, description="Met in time, recorded more than 7 days after the due time: the breach was not withdrawn"
    )
    response_seconds: float | None = Field(None, description="Start to the stop action")
    cancelled_at: datetime | None
    outcome: str | None
    rules_version: int


class TimelineEntry(BaseModel):
    event_id: uuid.UUID
    type: str
    at: datetime
    data: dict[str, Any]


class DeadlineDetail(DeadlineOut):
    timeline: list[TimelineEntry]


class DeadlinePage(BaseModel):
    items: list[DeadlineOut]
    total: int
    limit: int
    offset: int


def _out(row: Any) -> dict[str, Any]:
    rule = row["rule"]
    return {
        **{k: row[k] for k in DeadlineOut.model_fields if k in row.keys()},  # noqa: SIM118 - asyncpg Record
        "title": rule["title"],
        "window_set_by": rule.get("window_set_by", "district"),
        "late": _late(row),
        "response_seconds": response_seconds(row["started_at"], row["met_at"]),
    }


def _late(row: Any) -> bool | None:
    late = met_late(row["met_at"], row["due_at"])
    return late if late is None else late or row["breach_stands"]


# Every error is problem+json; the document says so (shared/openapi.py).
_NO_DEADLINE = {404: "No such deadline"}
_ANY_ROUTE = (401, 403, 429)


def deadlines_router(rules: RuleSet) -> APIRouter:
    router = APIRouter(
        prefix="/v1",
        tags=["deadlines"],
        dependencies=[Depends(bearer), Depends(require_role("police"))],
        responses=problem_responses({}, *_ANY_ROUTE),
    )

    @router.get(
        "/deadlines",
        response_model=DeadlinePage,
        summary="Deadlines, newest due first",
        responses=problem_responses({}, 422, 503),
    )
    async def list_deadlines(
        request: Request,
        state: Annotated[StateFilter | None, Query(description="open = pending or breached")] = None,
        kommune: Annotated[str | None, Query(description="kommunekode, e.g. 0265"), SingleLine] = None,
        rule: Annotated[str | None, Query(description="rule id, e.g. burglary_home_24h"), SingleLine] = None,
        due_before: Annotated[AwareDatetime | None, Query(description="only those due before this time")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> dict[str, Any]:
        code = None
        if kommune is not None:
            code = normalize_kommunekode(kommune)
            if code is None:
                raise invalid_query("kommune", "Not a kommunekode of the district, such as 0265.")
        if rule is not None and rule not in rules.ids:
            raise invalid_query("rule", f"Unknown rule; known: {', '.join(rules.ids)}.")
        total, rows = await repository.list_deadlines(
            request.app.state.runtime.db,
            DeadlineFilter(state=state, kommune=code, rule_id=rule, due_before=due_before),
            limit=limit,
            offset=offset,
        )
        return {"items": [_out(r) for r in rows], "total": total, "limit": limit, "offset": offset}

    @router.get(
        "/deadlines/{deadline_id}",
        response_model=DeadlineDetail,
        summary="One deadline and its timeline",
        responses=problem_responses(_NO_DEADLINE, 404, 422, 503),
    )
    async def get_deadline(request: Request, deadline_id: uuid.UUID) -> dict[str, Any]:
        found = await repository.get_deadline(request.app.state.runtime.db, deadline_id)
        if found is None:
            raise Problem(404, "Not found", "There is no such deadline.", kind="deadline-not-found")
        row, timeline = found
        return _out(row) | {"timeline": [dict(t) for t in timeline]}

    @router.get("/rules", summary="The guarantees and local targets in force")
    async def list_rules() -> dict[str, Any]:
        return {
            "version": rules.version,
            "rules": [r.to_snapshot() | {"window_seconds": r.window.total_seconds()} for r in rules.rules],
        }

    return router
