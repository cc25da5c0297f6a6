"""The sign-in edge's pure parts: where a sign-in may send the browser back to, and the callback's and sign-out's
answers when something is wrong (the flow itself runs against the real provider: tests/integration/identity)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from shared.oidc import OidcProvider, Person, ProviderUnavailable
from shared.websession import (
    SIGNED_OUT_PATH,
    SignInConfig,
    SignInFailed,
    WebSession,
    WebSessions,
    _expiry,
    origin_of,
    safe_return_to,
    sign_in_router,
)

CONFIG = SignInConfig(client_id="web", client_secret="s", public_url="http://127.0.0.1:8003/", cookie="svc_session",
                      home="/console", secure_cookies=False)  # fmt: skip
ANNE = Person(subject="sub-1", username="vc-anne", name="Anne Holm", roles=frozenset({"vagtchef"}), roster_id="vc-anne")


@pytest.mark.parametrize(
    ("asked", "back"),
    [
        ("/console?kommune=0265", "/console?kommune=0265"),
        (None, "/console"),
        ("", "/console"),
        ("https://evil.example/", "/console"),
        ("//evil.example/x", "/console"),
        ("/\\evil.example", "/console"),
        ("/console\r\nSet-Cookie: x=1", "/console"),
        ("console", "/console"),
    ],
)
def test_a_sign_in_goes_back_only_to_a_path_of_this_service(asked: str | None, back: str) -> None:
    assert safe_return_to(asked, "/console") == back


def test_the_callback_and_the_provider_origin() -> None:
    assert CONFIG.redirect_uri == "http://127.0.0.1:8003/auth/callback"
    assert CONFIG.binding_cookie == "svc_session_signin"
    assert origin_of("https://login.politi.example/realms/mvsj") == "https://login.politi.example"


def test_a_token_lifetime_becomes_a_time_or_none() -> None:
    now = datetime(2026, 12, 6, tzinfo=UTC)
    assert _expiry(now, 300) == now + timedelta(seconds=300)
    assert _expiry(now, "300") == now + timedelta(seconds=300)
    assert _expiry(now, None) is None and _expiry(now, "soon") is None


class ScriptedSessions(WebSessions):
    """WebSessions whose provider and database answers are scripted: only the HTTP edge is under test."""

    def __init__(self, *, finish: Exception | None = None, current: WebSession | None = None) -> None:
        super().__init__(OidcProvider("http://127.0.0.1:9/realms/none"), lambda: None, CONFIG,  # type: ignore[arg-type,return-value]
                         lambda: datetime.now(UTC))  # fmt: skip
        self._finish_error = finish
        self._current = current
        self.ended: list[WebSession] = []

    async def finish(self, state: str, code: str, binding: str | None) -> tuple[str, WebSession, str]:
        if self._finish_error is not None:
            raise self._finish_error
        assert self._current is not None
        return "opaque-id", self._current, "/console?x=1"

    async def get(self, session_id: str | None) -> WebSession | None:
        return self._current if session_id == "opaque-id" else None

    async def end(self, session: WebSession) -> str | None:
        self.ended.append(session)
        return "http://127.0.0.1:9/logout?id_token_hint=x"


def _client(sessions: WebSessions) -> httpx.AsyncClient:
    app = FastAPI()
    app.include_router(sign_in_router(sessions))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8003")


def _session() -> WebSession:
    return WebSession(person=ANNE, csrf="token", expires_at=datetime.now(UTC) + timedelta(hours=1), id_sha256="h")


async def test_a_cancelled_or_refused_sign_in_says_so_and_offers_to_try_again() -> None:
    async with _client(ScriptedSessions()) as client:
        cancelled = await client.get("/auth/callback", params={"error": "access_denied", "state": "s"})
        assert cancelled.status_code == 400 and "Log-in blev afbrudt" in cancelled.text
        assert "set-cookie" not in cancelled.headers
        assert cancelled.headers["content-security-policy"].startswith("default-src 'none'")
    async with _client(ScriptedSessions(finish=SignInFailed("unknown, used or expired state"))) as client:
        refused = await client.get("/auth/callback", params={"state": "s", "code": "c"})
        assert refused.status_code == 400 and "Log ind igen" in refused.text and "set-cookie" not in refused.headers
    async with _client(ScriptedSessions(finish=ProviderUnavailable("down"))) as client:
        down = await client.get("/auth/callback", params={"state": "s", "code": "c"})
        assert down.status_code == 503 and "svarer ikke" in down.text


async def test_a_completed_sign_in_sets_an_http_only_cookie_and_goes_back() -> None:
    async with _client(ScriptedSessions(current=_session())) as client:
        done = await client.get("/auth/callback", params={"state": "s", "code": "c"})
    assert done.status_code == 303 and done.headers["location"] == "/console?x=1"
    cookies = done.headers.get_list("set-cookie")
    (session,) = [c for c in cookies if c.startswith("svc_session=")]
    flags = [f.strip().lower() for f in session.split(";")]
    assert "httponly" in flags and "samesite=lax" in flags and "path=/" in flags
    assert any(c.startswith("svc_session_signin=") and "Max-Age=0" in c for c in cookies)  # the binding is used up


async def test_sign_out_wants_the_session_token_and_then_goes_to_the_provider() -> None:
    sessions = ScriptedSessions(current=_session())
    form = {"content-type": "application/x-www-form-urlencoded"}
    async with _client(sessions) as client:
        client.cookies.set("svc_session", "opaque-id")
        forged = await client.post("/auth/logout", content="csrf=wrong", headers=form)
        assert forged.status_code == 403 and sessions.ended == []
        cross = await client.post(
            "/auth/logout", content="csrf=token", headers=form | {"origin": "https://evil.example"}
        )
        assert cross.status_code == 403 and sessions.ended == []
        out = await client.post("/auth/logout", content="csrf=token", headers=form)
        assert out.status_code == 303 and out.headers["location"].startswith("http://127.0.0.1:9/logout?")
        assert sessions.ended == [sessions._current]
        page = await client.get(SIGNED_OUT_PATH)
        assert page.status_code == 200 and "Du er logget ud" in page.text
    async with _client(ScriptedSessions()) as client:
        nobody = await client.post("/auth/logout", content="csrf=x", headers=form)
        assert nobody.status_code == 303 and nobody.headers["location"] == SIGNED_OUT_PATH
