"""What every service's OpenAPI document says of errors and keys, so that it agrees with what the service sends.

Every error is RFC 9457 application/problem+json (shared/http.py), 422 included; FastAPI's own
default (a 422 as application/json with its HTTPValidationError) would be a promise the service
does not keep. Routes list their problems with `problem_responses` and take their caller through
`access` (which checks the key and documents the bearer scheme); `install_openapi` adds the
ProblemDetails schema (and a service's request bodies) to the document's components.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from shared.auth import ApiClient, require_person, require_role
from shared.http import PROBLEM_JSON
from shared.ratelimit import DEFAULT_BUCKET

# The bearer scheme every API declares (shared.auth checks the key; this only documents it).
bearer = HTTPBearer(
    auto_error=False,
    description="An API key per calling system, sent as 'Authorization: Bearer <key>'; its role (portal,"
    " police, council) decides what it may do. Or a person's access token from the district's identity"
    " provider, sent the same way; the person's roles decide.",
)


def access(*roles: str, bucket: str = DEFAULT_BUCKET) -> Callable[..., Coroutine[Any, Any, ApiClient]]:
    """The caller's key must have one of `roles` (401/403), and `bucket`'s rate must allow it (429).

    As a dependency it also puts the bearer scheme on the operation in the OpenAPI document.
    """
    check = require_role(*roles, bucket=bucket)

    async def dependency(
        request: Request, _documented: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    ) -> ApiClient:
        return await check(request)

    return dependency


def person_access(*person_roles: str, bucket: str = DEFAULT_BUCKET) -> Callable[..., Coroutine[Any, Any, ApiClient]]:
    """A person's access token with one of the provider's `person_roles` (401/403; keys are 403), documented
    with the bearer scheme as `access` is."""
    check = require_person(*person_roles, bucket=bucket)

    async def dependency(
        request: Request, _documented: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    ) -> ApiClient:
        return await check(request)

    return dependency


# The usual meanings; a service adds or overrides its own (e.g. what its 404 means).
PROBLEM_MEANINGS: Mapping[int, str] = {
    401: "No API key, or an unknown one",
    403: "The API key's role may not do this",
    422: "One entry per bad field or parameter in `errors`",
    429: "Too many requests for this API key (or, without a valid key, from this address); see Retry-After",
    503: "The database is not reachable; see Retry-After",
}


class FieldProblem(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    field: str = Field(description="Dotted path of the field, e.g. contact.phone, or a header's name")
    in_: Literal["body", "header", "query", "path"] = Field(alias="in")
    message: str = Field(description="A sentence a client can show beside the field; it never repeats the input")
    code: str | None = Field(None, description="A stable token for machines, e.g. kommune_ambiguous")


class ProblemDetails(BaseModel):
    """RFC 9457 problem details (application/problem+json)."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = Field(None, description="The route's template, e.g. /v1/cases/{case_id}")
    errors: list[FieldProblem] | None = Field(None, description="400, 422: one entry per bad field")


def problem_responses(meanings: Mapping[int, str], *codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these status codes, each application/problem+json with its meaning."""
    ref = {"$ref": "#/components/schemas/ProblemDetails"}
    known = {**PROBLEM_MEANINGS, **meanings}
    return {code: {"description": known[code], "content": {PROBLEM_JSON: {"schema": ref}}} for code in codes}


def install_openapi(app: FastAPI, bodies: Sequence[type[BaseModel]] = ()) -> None:
    """The document with ProblemDetails and `bodies` (request models a route validates itself) in its components."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            _, definitions = models_json_schema(
                [(m, "validation") for m in bodies] + [(ProblemDetails, "serialization")],
                ref_template="#/components/schemas/{model}",
            )
            document.setdefault("components", {}).setdefault("schemas", {}).update(definitions["$defs"])
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
