"""What a hostile client sees at the HTTP edge of every service: no redirects, no echoes, limits for all."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.deadlines.bootstrap import build_app as build_deadlines
from services.deadlines.settings import DeadlinesSettings
from services.intake.bootstrap import build_app as build_intake
from services.intake.settings import IntakeSettings

EVIL_HOST = "evil.example"


def intake(**over: Any) -> FastAPI:
    return build_intake(IntakeSettings(**over))


def deadlines(**over: Any) -> FastAPI:
    return build_deadlines(DeadlinesSettings(**over))


APPS: dict[str, Callable[..., FastAPI]] = {"intake": intake, "deadlines": deadlines}
PATHS = {"intake": ["/v1/reports/", "/v1/tips/", "/healthz/"], "deadlines": ["/v1/deadlines/", "/v1/rules/"]}


async def call(app: FastAPI, method: str, path: str, address: str = "203.0.113.7", **kw: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, client=(address, 50000), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        return await client.request(method, path, **kw)


@pytest.mark.parametrize("service", sorted(APPS))
async def test_a_trailing_slash_is_404_and_a_forged_host_is_never_reflected(service: str) -> None:
    app = APPS[service]()
    for path in PATHS[service]:
        for method in ("GET", "POST"):
            r = await call(app, method, path, headers={"Host": EVIL_HOST})
            assert r.status_code == 404, (method, path, r.status_code)
            assert r.headers["content-type"] == "application/problem+json"
            assert "location" not in r.headers
            assert EVIL_HOST not in r.text
            assert all(EVIL_HOST not in value for value in r.headers.values())
