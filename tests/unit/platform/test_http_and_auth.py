"""Shared HTTP behaviour: problem+json errors, bearer-key roles, body size limit, ops endpoints."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import Depends, FastAPI
from pydantic import BaseModel, Field

from shared.auth import ApiKeys, hash_key, require_role
from shared.http import BodySizeLimit, MetricsMiddleware, Problem, install_problem_handlers, ops_router
from shared.ratelimit import rate_limits
from shared.settings import DEV_API_KEYS_FILE


class Thing(BaseModel):
    name: str = Field(max_length=5)
    count: int


def make_app(ready: bool = True) -> FastAPI:
    app = FastAPI()
    app.state.api_keys = ApiKeys.load(DEV_API_KEYS_FILE)
    app.state.rate_limits = rate_limits(6000, 100, 6000, 100)
    install_problem_handlers(app)

    async def check() -> bool:
        return ready

    app.include_router(ops_router({"postgres": check}))

    @app.post("/things", dependencies=[Depends(require_role("portal"))])
    async def create(thing: Thing) -> dict[str, str]:
        if thing.name == "taken":
            raise Problem(409, "Conflict", "That thing exists.")
        return {"ok": thing.name}

    app.add_middleware(MetricsMiddleware, service="unit")
    app.add_middleware(BodySizeLimit, max_bytes=200)
    return app


async def call(app: FastAPI, method: str, path: str, **kw: object) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        return await client.request(method, path, **kw)  # type: ignore[arg-type]


PORTAL = {"Authorization": "Bearer dev-portal-key"}


async def test_validation_errors_are_problem_json_with_one_entry_per_field() -> None:
    r = await call(make_app(), "POST", "/things", json={"name": "toolong"}, headers=PORTAL)
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == 422 and body["title"]
    fields = {e["field"]: e["message"] for e in body["errors"]}
    assert set(fields) == {"name", "count"}
    assert fields["count"] == "This field is required."


async def test_missing_and_wrong_keys_are_401_and_wrong_role_is_403() -> None:
    app = make_app()
    r = await call(app, "POST", "/things", json={"name": "a", "count": 1})
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"] == "Bearer"
    r = await call(app, "POST", "/things", json={"name": "a", "count": 1}, headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401
    r = await call(app, "POST", "/things", json={"name": "a", "count": 1},
                   headers={"Authorization": "Bearer dev-police-key"})  # fmt: skip
    assert r.status_code == 403 and "portal" in r.json()["detail"]
    r = await call(app, "POST", "/things", json={"name": "a", "count": 1}, headers=PORTAL)
    assert r.status_code == 200


async def test_raised_problem_and_unknown_route_render_as_problem_json() -> None:
    app = make_app()
    r = await call(app, "POST", "/things", json={"name": "taken", "count": 1}, headers=PORTAL)
    assert (r.status_code, r.json()["detail"]) == (409, "That thing exists.")
    r = await call(app, "GET", "/nowhere")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"


async def test_body_over_the_limit_is_413_before_parsing() -> None:
    r = await call(
        make_app(),
        "POST",
        "/things",
        content=b"x" * 500,
        headers=PORTAL | {"content-type": "application/json"},
    )
    assert r.status_code == 413 and r.json()["status"] == 413


async def test_readyz_reports_each_check_and_metrics_count_routes() -> None:
    assert (await call(make_app(ready=False), "GET", "/readyz")).status_code == 503
    app = make_app()
    ready = await call(app, "GET", "/readyz")
    assert ready.json() == {"status": "ready", "checks": {"postgres": "ok"}}
    await call(app, "POST", "/things", json={"name": "a", "count": 1}, headers=PORTAL)
    metrics = (await call(app, "GET", "/metrics")).text
    assert 'http_requests_total{method="POST",route="/things",service="unit",status="200"}' in metrics


def test_key_file_holds_hashes_only_and_bad_entries_name_themselves(tmp_path: Path) -> None:
    text = DEV_API_KEYS_FILE.read_text()
    assert "dev-portal-key" not in text.split("\nkeys:")[1]  # only the hash below the comment header
    assert hash_key("dev-portal-key") in text
    bad = tmp_path / "keys.yaml"
    bad.write_text("keys:\n  - {name: ops, role: admin, sha256: " + "a" * 64 + "}\n")
    with pytest.raises(ValueError, match="key ops: role"):
        ApiKeys.load(bad)
    bad.write_text("keys:\n  - {name: short, role: police, sha256: abc}\n")
    with pytest.raises(ValueError, match="key short: sha256"):
        ApiKeys.load(bad)
