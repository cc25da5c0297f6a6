"""Sign-in and sessions of the services' pages (shared/websession.py) against the real provider and Postgres.

The sign-in is driven as a browser does it (Keycloak's own login form); the callback's code goes
to `WebSessions.finish` directly, with the clock in the test's hand, so a shift's end, the
provider's recheck and its grace are seen without waiting hours.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from starlette.requests import Request

from demo.identity import loopback_client, sign_in
from shared.oidc import OidcProvider, ProviderUnavailable
from shared.ratelimit import rate_limits
from shared.websession import SignInConfig, SignInFailed, WebSessions
from tests.support.identity import issuer, temporary_user

PUBLIC_URL = "http://127.0.0.1:8993"  # nothing listens: the test reads the code off the redirect


class Clock:
    def __init__(self) -> None:
        self.at = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
async def sessions(platform_schema: tuple[str, asyncpg.Pool]) -> AsyncIterator[tuple[WebSessions, Clock]]:
    _, pool = platform_schema
    clock = Clock()
    config = SignInConfig(client_id="mvsj-web", client_secret="dev-mvsj-web-secret", public_url=PUBLIC_URL,
                          cookie="test_session", home="/console", recheck_seconds=60, offline_grace_seconds=600,
                          secure_cookies=False)  # fmt: skip
    provider = OidcProvider(issuer())
    yield WebSessions(provider, lambda: pool, config, clock), clock
    await provider.aclose()


async def signed_in(sessions: WebSessions, username: str, password: str | None = None,
                    return_to: str = "/console") -> tuple[str, str]:  # fmt: skip
    """(cookie value, where to go back to) after signing `username` in through the provider's form."""
    url, binding = await sessions.start(return_to)
    code, state = await _code(url, username, password)
    session_id, _, back = await sessions.finish(state, code, binding)
    return session_id, back


async def _code(url: str, username: str, password: str | None = None) -> tuple[str, str]:
    with loopback_client() as browser:
        back = sign_in(browser, url, username, password)
    location = back.headers["location"]
    assert location.startswith(PUBLIC_URL + "/auth/callback?"), location
    query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    return query["code"], query["state"]


async def test_the_authorization_request_is_code_flow_with_pkce_state_and_nonce(
    sessions: tuple[WebSessions, Clock],
) -> None:
    web, _ = sessions
    url, binding = await web.start("/console")
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert url.startswith(issuer() + "/protocol/openid-connect/auth?")
    assert query["response_type"] == "code" and query["client_id"] == "mvsj-web"
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert len(query["state"]) >= 32 and len(query["nonce"]) >= 32 and len(binding) >= 32
    assert query["redirect_uri"] == PUBLIC_URL + "/auth/callback"


async def test_a_vagtchef_signs_in_as_himself_and_the_session_names_him(sessions: tuple[WebSessions, Clock]) -> None:
    web, _ = sessions
    session_id, back = await signed_in(web, "vc-anne", return_to="/console?kommune=0265")
    assert back == "/console?kommune=0265"
    session = await web.get(session_id)
    assert session is not None
    person = session.person
    assert (person.id, person.name, person.username) == ("vc-anne", "Anne Holm", "vc-anne")
    assert person.is_vagtchef and person.sees_kommune("0253")
    # The cookie value is opaque; the table holds only its hash.
    assert session.id_sha256 != session_id and len(session_id) >= 43
    assert await web.get(session_id + "x") is None
    token = await web.access_token(session)
    assert token is not None and (await web.provider.person(token)).id == "vc-anne"


async def test_a_lokalbetjent_reaches_his_own_kommune_only(sessions: tuple[WebSessions, Clock]) -> None:
    web, _ = sessions
    session_id, _ = await signed_in(web, "lb-greve-1")
    session = await web.get(session_id)
    assert session is not None
    assert session.person.kommune == "0253" and session.person.sees_kommune("0253")
    assert not session.person.sees_kommune("0265") and not session.person.is_vagtchef


async def test_a_callback_works_once_in_the_browser_that_started_it(sessions: tuple[WebSessions, Clock]) -> None:
    web, clock = sessions
    url, binding = await web.start("/console")
    code, state = await _code(url, "vc-anne")
    with pytest.raises(SignInFailed, match="another browser"):
        await web.finish(state, code, "a-binding-of-another-browser")
    # The state was used up by that try: the right browser cannot replay it either.
    with pytest.raises(SignInFailed, match="state"):
        await web.finish(state, code, binding)
    # A sign-in left at the provider's form for more than ten minutes is over.
    url, binding = await web.start("/console")
    code, state = await _code(url, "vc-anne")
    clock.at += timedelta(minutes=11)
    with pytest.raises(SignInFailed, match="expired"):
        await web.finish(state, code, binding)


async def test_a_session_lasts_one_shift_and_a_sign_out_ends_it_everywhere(sessions: tuple[WebSessions, Clock]) -> None:
    web, clock = sessions
    session_id, _ = await signed_in(web, "vc-anne")
    other_id, _ = await signed_in(web, "vc-anne")
    clock.at += timedelta(hours=12, seconds=1)
    assert await web.get(session_id) is None
    assert await web.get(other_id) is None

    clock.at = datetime.now(UTC)
    session_id, _ = await signed_in(web, "vc-anne")
    session = await web.get(session_id)
    assert session is not None
    logout = await web.end(session)
    assert logout is not None and "id_token_hint=" in logout and "post_logout_redirect_uri=" in logout
    assert await web.get(session_id) is None  # every instance reads the same table


async def test_a_user_disabled_at_the_provider_loses_access_at_the_next_recheck(
    sessions: tuple[WebSessions, Clock],
) -> None:
    web, clock = sessions
    with temporary_user("Vagtchefer") as user:
        session_id, _ = await signed_in(web, user.username, user.password)
        assert await web.get(session_id) is not None
        user.set_enabled(False)
        assert await web.get(session_id) is not None  # within the recheck interval the row stands
        clock.at += timedelta(seconds=61)
        assert await web.get(session_id) is None
        assert await web.get(session_id) is None


async def test_a_provider_outage_keeps_a_session_within_its_grace_then_ends_it(
    sessions: tuple[WebSessions, Clock],
) -> None:
    web, clock = sessions
    session_id, _ = await signed_in(web, "vc-anne")
    metadata = await web.provider.metadata()
    real = metadata["token_endpoint"]
    metadata["token_endpoint"] = "http://127.0.0.1:9/token"  # nothing answers on the discard port
    try:
        clock.at += timedelta(seconds=61)
        assert await web.get(session_id) is not None  # 61 s since the provider's last answer: within 600 s
        clock.at += timedelta(seconds=600)
        assert await web.get(session_id) is None
    finally:
        metadata["token_endpoint"] = real


async def test_an_unreachable_provider_makes_sign_in_say_so(platform_schema: tuple[str, asyncpg.Pool]) -> None:
    _, pool = platform_schema
    config = SignInConfig(client_id="mvsj-web", client_secret="x", public_url=PUBLIC_URL, cookie="c", home="/")
    web = WebSessions(OidcProvider("http://127.0.0.1:9/realms/none"), lambda: pool, config, lambda: datetime.now(UTC))
    with pytest.raises(ProviderUnavailable):
        await web.start("/")
    response = await web.sign_in_redirect(_request("/console"))
    assert response.status_code == 503


def _request(path: str, app: FastAPI | None = None) -> Request:
    scope: dict[str, Any] = {
        "type": "http",
        "method": "GET",
        "path": path,
        "query_string": b"",
        "headers": [],
        "server": ("127.0.0.1", 80),
        "scheme": "http",
        "root_path": "",
        "client": ("192.0.2.7", 50000),
    }
    if app is not None:
        scope["app"] = app
    return Request(scope)


async def test_sign_ins_never_finished_are_purged_and_an_address_cannot_start_them_without_end(
    sessions: tuple[WebSessions, Clock], platform_schema: tuple[str, asyncpg.Pool]
) -> None:
    web, clock = sessions
    _, pool = platform_schema
    app = FastAPI()
    app.state.rate_limits = rate_limits(600, 100, anonymous_per_minute=1, anonymous_burst=2)
    for _ in range(2):  # a closed tab, a crawler: each leaves a sign-in under way
        assert (await web.sign_in_redirect(_request("/console", app))).status_code == 303
    refused = await web.sign_in_redirect(_request("/console", app))
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    assert "For mange" in bytes(refused.body).decode() and "set-cookie" not in refused.headers
    assert await pool.fetchval("SELECT count(*) FROM web_sign_ins") == 2  # the refused one wrote nothing
    clock.at += timedelta(minutes=11)  # past the sign-in's 10 minutes: the next start clears them
    await web.start("/console")
    assert await pool.fetchval("SELECT count(*) FROM web_sign_ins") == 1


async def test_the_token_endpoint_refuses_a_wrong_client_secret(platform_schema: tuple[str, asyncpg.Pool]) -> None:
    _, pool = platform_schema
    config = SignInConfig(client_id="mvsj-web", client_secret="not-the-secret", public_url=PUBLIC_URL,
                          cookie="c", home="/console", secure_cookies=False)  # fmt: skip
    web = WebSessions(OidcProvider(issuer()), lambda: pool, config, lambda: datetime.now(UTC))
    url, binding = await web.start("/console")
    code, state = await _code(url, "vc-anne")
    with pytest.raises(SignInFailed, match="refused the authorization code"):
        await web.finish(state, code, binding)
    assert httpx.URL(url).host == "127.0.0.1"
