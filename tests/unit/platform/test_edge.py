"""What a hostile client sees at the HTTP edge of every service: no redirects, no echoes, limits for all."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY

from services.deadlines.bootstrap import build_app as build_deadlines
from services.deadlines.settings import DeadlinesSettings
from services.intake.bootstrap import build_app as build_intake
from services.intake.settings import IntakeSettings
from shared.http import BodySizeLimit, MetricsMiddleware, PageHeaders

EVIL_HOST = "evil.example"


def intake(**over: Any) -> FastAPI:
    return build_intake(IntakeSettings(**over))


def deadlines(**over: Any) -> FastAPI:
    return build_deadlines(DeadlinesSettings(**over))


def notify(**over: Any) -> FastAPI:
    from services.notify.bootstrap import build_app
    from services.notify.settings import NotifySettings

    return build_app(NotifySettings(**over))


def reporting(**over: Any) -> FastAPI:
    from services.reporting.bootstrap import build_app
    from services.reporting.settings import ReportingSettings

    return build_app(ReportingSettings(**over))


APPS: dict[str, Callable[..., FastAPI]] = {"intake": intake, "deadlines": deadlines}
# Every service's HTTP edge, for what each must get from shared/app.py (service_app).
EVERY_APP: dict[str, Callable[..., FastAPI]] = {**APPS, "notify": notify, "reporting": reporting}
PATHS = {
    "intake": ["/v1/reports/", "/v1/tips/", "/healthz/"],
    "deadlines": ["/v1/deadlines/", "/v1/rules/"],
    "notify": ["/v1/alerts/", "/readyz/"],
    "reporting": ["/v1/kpis/", "/asyncapi.json/"],
}


async def call(app: FastAPI, method: str, path: str, address: str = "203.0.113.7", **kw: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, client=(address, 50000), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        return await client.request(method, path, **kw)


async def test_every_service_builds_its_app_with_the_shared_service_app() -> None:
    # One place sets up the edge (no slash redirects, limits, problems, metrics, ops routes, OpenAPI,
    # AsyncAPI): a bootstrap that calls FastAPI(...) itself could miss the Host-reflection fix.
    root = Path(__file__).resolve().parents[3] / "services"
    services = sorted(p.parent.name for p in root.glob("*/bootstrap.py"))
    assert services == sorted(EVERY_APP), "a new service belongs in EVERY_APP, so the edge tests cover it"
    for name in services:
        source = (root / name / "bootstrap.py").read_text(encoding="utf-8")
        assert "service_app(" in source and "FastAPI(" not in source, name
        app = EVERY_APP[name]()
        assert app.router.redirect_slashes is False
        for path in ("/healthz", "/metrics", "/asyncapi.json"):
            assert (await call(app, "GET", path)).status_code == 200, (name, path)


@pytest.mark.parametrize("service", sorted(EVERY_APP))
async def test_a_trailing_slash_is_404_and_a_forged_host_is_never_reflected(service: str) -> None:
    app = EVERY_APP[service]()
    for path in PATHS[service]:
        for method in ("GET", "POST"):
            r = await call(app, method, path, headers={"Host": EVIL_HOST})
            assert r.status_code == 404, (method, path, r.status_code)
            assert r.headers["content-type"] == "application/problem+json"
            assert "location" not in r.headers
            assert EVIL_HOST not in r.text
            assert all(EVIL_HOST not in value for value in r.headers.values())


# --- Bodies: capped before anything reads them --------------------------------------------------

# Each service's default cap (docs: README "Configuration", each service's README).
BODY_CAPS = {"intake": 64 * 1024, "deadlines": 4 * 1024, "notify": 4 * 1024, "reporting": 4 * 1024}
# A route per service that takes a body, or (deadlines, reporting: their API only reads) would
# answer 405: without the cap in front, a body there is read before the key is checked, or not refused.
BODY_ROUTES = {
    "intake": "/v1/reports",
    "deadlines": "/v1/deadlines",
    "notify": "/v1/alerts/0b6f6c1e-2c1a-4d8e-9f3b-7a5d2e4c1b90/ack",
    "reporting": "/v1/kpis",
}


def test_every_service_caps_bodies_outermost_with_its_own_default() -> None:
    assert set(BODY_CAPS) == set(EVERY_APP)
    for name, build in EVERY_APP.items():
        app = build()
        stack: list[object] = [m.cls for m in app.user_middleware]
        # Only the metrics (which count its 413s) are outside the cap; the keys, rate limits and
        # routes are inside. A bootstrap adding middleware after service_app would put it outside.
        # Inside the cap, the security headers every HTML answer gets; nothing else.
        assert stack == [MetricsMiddleware, BodySizeLimit, PageHeaders], (name, stack)
        assert app.user_middleware[1].kwargs == {"max_bytes": BODY_CAPS[name]}, name
        assert build(max_body_bytes=2048).user_middleware[1].kwargs == {"max_bytes": 2048}, name


async def chunks(size: int, total: int) -> AsyncIterator[bytes]:
    for _ in range(total // size):
        yield b"x" * size


@pytest.mark.parametrize("service", sorted(EVERY_APP))
@pytest.mark.parametrize("sent", ["content-length", "chunked"])
async def test_a_body_over_the_cap_without_a_key_is_413_before_anything_else(service: str, sent: str) -> None:
    app = EVERY_APP[service]()
    over = BODY_CAPS[service] + 1024
    content: bytes | AsyncIterator[bytes] = b"x" * over if sent == "content-length" else chunks(1024, over)
    counted = {"service": service, "method": "POST", "route": "unmatched", "status": "413"}
    before = REGISTRY.get_sample_value("http_requests_total", counted) or 0.0
    r = await call(app, "POST", BODY_ROUTES[service], content=content, headers={"Content-Type": "application/json"})
    assert r.status_code == 413, r.text
    assert r.headers["content-type"] == "application/problem+json" and r.headers["connection"] == "close"
    assert r.json()["detail"] == f"The body may be at most {BODY_CAPS[service]:,} bytes."
    assert REGISTRY.get_sample_value("http_requests_total", counted) == before + 1  # the metrics see it


# --- Text in query strings and paths: checked before it reaches a query ---------------------------

HOSTILE = {"nul": ("\x00", "U+0000"), "crlf": ("\r\n", "U+000D"), "bidi": ("\u202e", "U+202E")}
# (service, path, parameter, where, query parameters besides it): every text parameter of every API.
TEXT_PARAMETERS = [
    ("deadlines", "/v1/deadlines", "kommune", "query", {}),
    ("deadlines", "/v1/deadlines", "rule", "query", {}),
    ("notify", "/v1/alerts", "kommune", "query", {}),
    ("reporting", "/v1/kpis", "scope", "query", {"period": "2026"}),
    ("reporting", "/v1/kpis", "period", "query", {"scope": "kreds"}),
    ("reporting", "/v1/kpis", "focus_area", "query", {"scope": "kreds", "period": "2026"}),
    ("reporting", "/v1/council-reports/{}/2026.json", "scope", "path", {}),
    ("reporting", "/v1/council-reports/kreds/{}", "document", "path", {}),
    ("reporting", "/v1/council-reports/kreds/2026.json", "focus_area", "query", {}),
]


@pytest.mark.parametrize("hostile", sorted(HOSTILE))
@pytest.mark.parametrize(
    ("service", "path", "parameter", "where", "others"), TEXT_PARAMETERS, ids=lambda v: v if isinstance(v, str) else ""
)
async def test_a_control_or_bidi_character_in_a_text_parameter_is_a_422_naming_it(
    service: str, path: str, parameter: str, where: str, others: dict[str, str], hostile: str
) -> None:
    char, point = HOSTILE[hostile]
    value = f"0265{char}" if parameter != "document" else f"2026{char}.json"
    if where == "path":
        url, params = path.format(quote(value, safe="")), others
    else:
        url, params = path, others | {parameter: value}
    r = await call(EVERY_APP[service](), "GET", url, params=params, headers=POLICE)
    assert r.status_code == 422, r.text
    [error] = r.json()["errors"]
    assert (error["field"], error["in"]) == (parameter, where) and point in error["message"]


# --- Error answers never repeat what the client typed -------------------------------------------

PHONE = "+45 20 30 40 50"
PHONE_DIGITS = "20304050"
LONG = "Q" * 3000  # 3 KB of one letter: easy to spot in an answer, in full or in part
PORTAL = {"Authorization": "Bearer dev-portal-key", "Idempotency-Key": "echo-test"}
POLICE = {"Authorization": "Bearer dev-police-key"}


def never_echoed(r: httpx.Response) -> None:
    assert r.status_code == 422, r.text
    text = r.text.replace(" ", "")
    assert PHONE_DIGITS not in text and "QQQQ" not in text, r.text
    assert len(r.content) < 3000


def report(**over: Any) -> dict[str, Any]:
    body = {
        "category": "burglary_home",
        "description": "Terrassedøren brudt op.",
        "in_progress": False,
        "postcode": "4040",
        "address": "Strandvejen 12",
        "contact": {"phone": "+4520304050"},
    }
    return body | over


@pytest.mark.parametrize(
    "over",
    [
        {"kommune": PHONE},
        {"kommune": LONG},
        {"postcode": PHONE},
        {"postcode": LONG},
        {"category": LONG},
        {"category": PHONE},
        {"address": LONG},
        {"in_progress": PHONE},
        {"occurred_at": PHONE},
        {"occurred_at": LONG},
        {"contact": {"phone": LONG}},
        {"contact": {"email": PHONE}},
        {"position": PHONE},
        {LONG: PHONE},
    ],
    ids=lambda over: next(iter(over))[:12],
)
async def test_intake_errors_never_echo_the_input(over: dict[str, Any]) -> None:
    never_echoed(await call(intake(), "POST", "/v1/reports", json=report(**over), headers=PORTAL))


async def test_intake_path_and_action_errors_never_echo_the_input() -> None:
    app = intake()
    never_echoed(await call(app, "GET", f"/v1/cases/{PHONE_DIGITS}{LONG}", headers=PORTAL))
    never_echoed(await call(app, "GET", f"/v1/cases/x{PHONE_DIGITS}", headers=PORTAL))
    action = {"action": LONG, "occurred_at": PHONE, "outcome": LONG, "officer_id": PHONE}
    case = "0b6f6c1e-2c1a-4d8e-9f3b-7a5d2e4c1b90"
    never_echoed(await call(app, "POST", f"/v1/cases/{case}/actions", json=action, headers=POLICE))


@pytest.mark.parametrize(
    "params",
    [{"kommune": PHONE}, {"kommune": LONG}, {"rule": LONG}, {"state": PHONE}, {"due_before": PHONE}, {"limit": LONG}],
    ids=lambda p: next(iter(p)),
)
async def test_deadlines_errors_never_echo_the_input(params: dict[str, str]) -> None:
    never_echoed(await call(deadlines(), "GET", "/v1/deadlines", params=params, headers=POLICE))
    never_echoed(await call(deadlines(), "GET", f"/v1/deadlines/{PHONE_DIGITS}{LONG}", headers=POLICE))


# --- Rate limits: for everyone, on every service ------------------------------------------------

TIGHT = {
    "rate_limit_per_minute": 1,
    "rate_limit_burst": 2,
    "anonymous_rate_limit_per_minute": 1,
    "anonymous_rate_limit_burst": 3,
}
GUARDED = {"intake": ("POST", "/v1/reports"), "deadlines": ("GET", "/v1/rules")}


@pytest.mark.parametrize("service", sorted(APPS))
@pytest.mark.parametrize(
    "credentials",
    [{}, {"Authorization": "Bearer wrong-key"}, {"Authorization": "Basic x"}],
    ids=["none", "wrong", "basic"],
)
async def test_requests_without_a_valid_key_are_limited_per_client_address(
    service: str, credentials: dict[str, str]
) -> None:
    app = APPS[service](**TIGHT)
    method, path = GUARDED[service]
    statuses = [(await call(app, method, path, headers=credentials)).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    limited = await call(app, method, path, headers=credentials)
    assert limited.headers["retry-after"] == "60" and limited.headers["content-type"] == "application/problem+json"
    # Another address has its own bucket; a valid key is counted by key, not by address.
    assert (await call(app, method, path, address="198.51.100.9", headers=credentials)).status_code == 401
    keyed = {"intake": PORTAL, "deadlines": POLICE}[service]
    assert (await call(app, method, path, json={}, headers=keyed)).status_code in (200, 422)  # not 429


async def test_the_deadlines_api_has_a_rate_limit_per_key() -> None:
    app = deadlines(**TIGHT)
    statuses = [(await call(app, "GET", "/v1/rules", headers=POLICE)).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_every_service_takes_its_limits_from_the_shared_settings() -> None:
    for settings in (IntakeSettings, DeadlinesSettings):
        assert {"rate_limit_per_minute", "anonymous_rate_limit_per_minute"} <= set(settings.model_fields)
    for name, build in EVERY_APP.items():
        limits = build(rate_limit_per_minute=6.0, anonymous_rate_limit_per_minute=3.0).state.rate_limits
        assert limits is not None, name


# --- OpenAPI agrees with behaviour ---------------------------------------------------------------


@pytest.mark.parametrize("service", sorted(EVERY_APP))
async def test_every_error_an_api_route_documents_is_problem_json_and_every_route_names_its_scheme(
    service: str,
) -> None:
    document = (await call(EVERY_APP[service](), "GET", "/openapi.json")).json()
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    for path, item in document["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            errors = {code: r for code, r in responses.items() if code.startswith(("4", "5"))}
            for code, response in errors.items():
                assert list(response.get("content", {})) == ["application/problem+json"], (method, path, code)
            if path.startswith("/v1/"):
                assert operation["security"] == [{"HTTPBearer": []}], (method, path)
                assert {"401", "403", "429"} <= set(errors), (method, path, sorted(errors))
            if operation.get("parameters") or operation.get("requestBody"):
                assert "422" in errors, (method, path)
            if operation.get("requestBody"):
                assert "413" in errors, (method, path)
            # A route that looks something up by its id says what it answers when there is none
            # (reporting's /v1/council-reports/{scope}/{document} takes a scope and a period: a 422).
            if any(p["in"] == "path" and p["schema"].get("format") == "uuid" for p in operation.get("parameters", [])):
                assert "404" in errors, (method, path)


async def test_intake_schema_descriptions_carry_the_rules_across_fields() -> None:
    schemas = (await call(intake(), "GET", "/openapi.json")).json()["components"]["schemas"]

    def said(model: str, field: str) -> str:
        return str(schemas[model]["properties"][field].get("description", ""))

    from shared.reference import categories

    for category in categories().values():
        for flag in category.flags:
            assert category.id.split("_")[0] in said("ReportIn", flag) and "Required" in said("ReportIn", flag)
    assert "drug_dealing_school" in said("ReportIn", "institution") and "never published" in said(
        "ReportIn", "institution"
    )
    assert "burglary_home" in said("ReportIn", "address")
    for model in ("ReportIn", "TipIn", "OfficerRequestIn"):
        assert "postcode" in said(model, "kommune")
        assert "phone number or an e-mail" in said(model, "contact")
    assert "left out" in said("TipIn", "anonymous") and "required" in said("TipIn", "anonymous")
    assert "citizen_requested_later" in said("ActionIn", "requested_time")
    assert "closed" in said("ActionIn", "outcome")
    assert "2000-01-01" in said("ReportIn", "occurred_at") and "2000-01-01" in said("ActionIn", "occurred_at")
