"""People sign in to a service's pages through the district's OpenID Connect provider; sessions live in Postgres.

The flow is the authorization code flow with PKCE (RFC 7636, S256): a page asked for without a
session answers a redirect to the provider's authorization endpoint, with a fresh `state`, `nonce`
and code challenge; the sign-in under way is a row of `web_sign_ins` (shared/sql/0003_web_sessions.sql)
tied to the browser that started it by a cookie only it holds, so a callback URL planted in another
browser signs nobody in. The callback exchanges the code with its verifier, checks the ID token
(signature against the provider's JWKS, issuer, audience, expiry, nonce: shared/oidc.py) and
starts a session: a row of `web_sessions` and a cookie holding only an opaque random id.

A session ends:
- when the person signs out: the row is deleted, so every instance refuses the cookie at once, and
  the browser goes on to the provider's end-session endpoint, which ends the sign-in there too;
- after one shift at most (`max_age`, 12 hours by default), however busy the page was;
- when the provider no longer vouches for the person: every `recheck` seconds (60 by default) a
  request asks the provider with the session's refresh token; a disabled user, or a sign-out at the
  provider, is refused there and the session ends. While the provider does not answer at all the
  session goes on for at most `offline_grace` seconds since the last answer (15 minutes by default),
  so a provider restart does not sign the night shift out, and an outage does not keep anyone in.

An ended session's row is deleted when it is next presented, at the next sign-in, and each hour by
`purge_web_sessions_loop`, which every service with pages runs: the rows hold a person's name and tokens.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

import asyncpg
import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from prometheus_client import Counter

from shared.db import Conn
from shared.http import SECURITY_HEADERS, Problem
from shared.oidc import InvalidToken, OidcProvider, Person, ProviderUnavailable, person_from_claims
from shared.ratelimit import ANONYMOUS, RateLimits
from shared.settings import CommonSettings
from shared.timers import every

if TYPE_CHECKING:  # the runtime imports the service's routes, which import this module
    from shared.runtime import ServiceRuntime

log = logging.getLogger(__name__)

CALLBACK_PATH = "/auth/callback"
LOGOUT_PATH = "/auth/logout"
SIGNED_OUT_PATH = "/auth/logget-ud"
SIGN_IN_TTL = timedelta(minutes=10)
PURGE_INTERVAL_SECONDS = 3600.0
PURGE_BATCH_SIZE = 1000

SESSIONS_PURGED = Counter(
    "web_sessions_purged_total",
    "Ended web sessions (kind=session) and sign-ins never finished (kind=sign_in) deleted by the hourly purge",
    ["service", "kind"],
)


@dataclass(frozen=True, slots=True)
class SignInConfig:
    """How one service signs people in. `public_url`: the service as browsers reach it (the callback's base)."""

    client_id: str
    client_secret: str
    public_url: str
    cookie: str
    home: str
    max_age_seconds: float = 12 * 3600
    recheck_seconds: float = 60.0
    offline_grace_seconds: float = 15 * 60
    secure_cookies: bool = True
    scope: str = "openid profile email"

    @property
    def redirect_uri(self) -> str:
        return self.public_url.rstrip("/") + CALLBACK_PATH

    @property
    def binding_cookie(self) -> str:
        return self.cookie + "_signin"


@dataclass(frozen=True, slots=True)
class WebSession:
    """A signed-in person and what their pages need: the CSRF token their forms and scripts send back."""

    person: Person
    csrf: str
    expires_at: datetime
    id_sha256: str


class SignInFailed(Exception):
    """A callback that signs nobody in; the message is for the log, the page says it in Danish."""


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def safe_return_to(value: str | None, home: str) -> str:
    """A path of this service to go back to after sign-in; anything else (another site, `//host`) is home."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return home
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in value):
        return home
    return value


class WebSessions:
    """Sign-ins and sessions of one service, in its own schema (every instance shares them)."""

    def __init__(
        self,
        provider: OidcProvider,
        pool: Callable[[], asyncpg.Pool],
        config: SignInConfig,
        now: Callable[[], datetime],
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.provider = provider
        self._pool = pool
        self.config = config
        self._now = now
        self._http = http or httpx.AsyncClient(timeout=5.0)

    async def start(self, return_to: str | None) -> tuple[str, str]:
        """A new sign-in: (the provider's authorization URL to send the browser to, the browser's binding)."""
        state = generate_token(43)
        nonce = generate_token(43)
        verifier = generate_token(64)
        binding = secrets.token_urlsafe(32)
        endpoint = await self.provider.endpoint("authorization_endpoint")
        url = prepare_grant_uri(
            endpoint,
            client_id=self.config.client_id,
            response_type="code",
            redirect_uri=self.config.redirect_uri,
            scope=self.config.scope,
            state=state,
            nonce=nonce,
            code_challenge=create_s256_code_challenge(verifier),
            code_challenge_method="S256",
        )
        async with self._pool().acquire() as conn, conn.transaction():
            # Sign-ins never finished (a closed tab, a crawler) go when they expire, not only at the next finished one.
            await conn.execute("DELETE FROM web_sign_ins WHERE created_at < $1", self._now() - SIGN_IN_TTL)
            await conn.execute(
                "INSERT INTO web_sign_ins (state, binding_sha256, nonce, code_verifier, return_to, created_at)"
                " VALUES ($1, $2, $3, $4, $5, $6)",
                state, _sha256(binding), nonce, verifier, safe_return_to(return_to, self.config.home), self._now(),
            )  # fmt: skip
        return url, binding

    async def finish(self, state: str, code: str, binding: str | None) -> tuple[str, WebSession, str]:
        """The callback: (the new session's cookie value, the session, where to go back to)."""
        now = self._now()
        async with self._pool().acquire() as conn:
            row = await conn.fetchrow(
                "DELETE FROM web_sign_ins WHERE state = $1 AND created_at > $2 RETURNING *", state, now - SIGN_IN_TTL
            )
        if row is None:
            raise SignInFailed("unknown, used or expired state")
        if binding is None or not secrets.compare_digest(_sha256(binding), row["binding_sha256"]):
            raise SignInFailed("the callback came to another browser than the one that started the sign-in")
        exchange = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.config.redirect_uri,
                    "code_verifier": row["code_verifier"]}  # fmt: skip
        tokens = await self._token_request(exchange)
        if tokens is None:
            raise SignInFailed("the provider refused the authorization code")
        id_token = str(tokens.get("id_token", ""))
        try:
            claims = await self.provider.validate(id_token, audience=self.config.client_id, nonce=row["nonce"])
            person = person_from_claims(claims)
        except InvalidToken as exc:
            raise SignInFailed(f"ID token refused: {exc}") from exc
        session_id = secrets.token_urlsafe(32)
        session = WebSession(
            person=person,
            csrf=secrets.token_urlsafe(32),
            expires_at=now + timedelta(seconds=self.config.max_age_seconds),
            id_sha256=_sha256(session_id),
        )
        async with self._pool().acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM web_sessions WHERE expires_at < $1", now)
            await conn.execute("DELETE FROM web_sign_ins WHERE created_at < $1", now - SIGN_IN_TTL)
            await conn.execute(
                "INSERT INTO web_sessions (id_sha256, subject, username, name, roles, kommune, roster_id, csrf,"
                " id_token, refresh_token, access_token, access_expires_at, created_at, expires_at, checked_at,"
                " vouched_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $13, $13)",
                session.id_sha256, person.subject, person.username, person.name, sorted(person.roles),
                person.kommune, person.roster_id, session.csrf, id_token, tokens.get("refresh_token"),
                tokens.get("access_token"), _expiry(now, tokens.get("expires_in")), now, session.expires_at,
            )  # fmt: skip
        log.info("signed in", extra={"person": person.id, "username": person.username, "roles": sorted(person.roles)})
        return session_id, session, row["return_to"]

    async def get(self, session_id: str | None) -> WebSession | None:
        """The live session this cookie value names, after asking the provider when it is due; else None."""
        if not session_id or len(session_id) > 128:
            return None
        id_sha = _sha256(session_id)
        now = self._now()
        async with self._pool().acquire() as conn:
            row = await conn.fetchrow("SELECT * FROM web_sessions WHERE id_sha256 = $1", id_sha)
            if row is None:
                return None
            if row["expires_at"] <= now:
                await conn.execute("DELETE FROM web_sessions WHERE id_sha256 = $1", id_sha)
                log.info("session ended: one shift is over", extra={"person": row["roster_id"] or row["subject"]})
                return None
            if (now - row["checked_at"]).total_seconds() >= self.config.recheck_seconds:
                # One request per session asks the provider; the others go on with what the row says.
                claimed = await conn.fetchval(
                    "UPDATE web_sessions SET checked_at = $2 WHERE id_sha256 = $1 AND checked_at = $3 RETURNING 1",
                    id_sha, now, row["checked_at"],
                )  # fmt: skip
                if claimed and not await self._recheck(conn, row, now):
                    return None
        return _session(row)

    async def _recheck(self, conn: Conn, row: Any, now: datetime) -> bool:
        """Asks the provider whether the person may still be signed in; False: the session has ended."""
        person = row["roster_id"] or row["subject"]
        try:
            tokens = await self._token_request({"grant_type": "refresh_token", "refresh_token": row["refresh_token"]})
        except ProviderUnavailable as exc:
            if (now - row["vouched_at"]).total_seconds() > self.config.offline_grace_seconds:
                await conn.execute("DELETE FROM web_sessions WHERE id_sha256 = $1", row["id_sha256"])
                log.warning("session ended: the identity provider has not answered for too long (%s)", exc,
                            extra={"person": person})  # fmt: skip
                return False
            log.warning("identity provider unreachable; the session goes on within its grace (%s)", exc)
            return True
        if tokens is None:
            await conn.execute("DELETE FROM web_sessions WHERE id_sha256 = $1", row["id_sha256"])
            log.info("session ended: the identity provider no longer vouches for the person", extra={"person": person})
            return False
        await conn.execute(
            "UPDATE web_sessions SET refresh_token = coalesce($2, refresh_token), access_token = $3,"
            " access_expires_at = $4, checked_at = $5, vouched_at = $5 WHERE id_sha256 = $1",
            row["id_sha256"], tokens.get("refresh_token"), tokens.get("access_token"),
            _expiry(now, tokens.get("expires_in")), now,
        )  # fmt: skip
        return True

    async def access_token(self, session: WebSession) -> str | None:
        """The person's current access token (for calling another service as them), refreshed when near expiry."""
        now = self._now()
        async with self._pool().acquire() as conn:
            row = await conn.fetchrow("SELECT * FROM web_sessions WHERE id_sha256 = $1", session.id_sha256)
            if row is None:
                return None
            expires = row["access_expires_at"]
            if row["access_token"] and expires is not None and (expires - now).total_seconds() > 30:
                return str(row["access_token"])
            if not await self._recheck(conn, row, now):
                return None
            token = await conn.fetchval("SELECT access_token FROM web_sessions WHERE id_sha256 = $1", session.id_sha256)
        return str(token) if token else None

    async def end(self, session: WebSession) -> str | None:
        """Signs out here (every instance at once); answers the provider's end-session URL to send the browser to."""
        async with self._pool().acquire() as conn:
            id_token = await conn.fetchval(
                "DELETE FROM web_sessions WHERE id_sha256 = $1 RETURNING id_token", session.id_sha256
            )
        log.info("signed out", extra={"person": session.person.id})
        if id_token is None:
            return None
        try:
            endpoint = await self.provider.endpoint("end_session_endpoint")
        except ProviderUnavailable:
            return None
        query = urlencode({
            "id_token_hint": id_token,
            "client_id": self.config.client_id,
            "post_logout_redirect_uri": self.config.public_url.rstrip("/") + SIGNED_OUT_PATH,
        })  # fmt: skip
        return f"{endpoint}?{query}"

    async def _token_request(self, form: dict[str, str]) -> dict[str, Any] | None:
        """The token endpoint's answer; None when it refuses (4xx); ProviderUnavailable when it does not answer."""
        endpoint = await self.provider.endpoint("token_endpoint")
        try:
            response = await self._http.post(
                endpoint, data=form, auth=(self.config.client_id, self.config.client_secret)
            )
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(f"token endpoint {endpoint}: {exc!r}") from exc
        if 400 <= response.status_code < 500:
            try:
                error = response.json().get("error")
            except ValueError:
                error = None
            log.info("the identity provider refused a token request (%s, %s)", response.status_code, error)
            return None
        if response.status_code != 200:
            raise ProviderUnavailable(f"token endpoint {endpoint} answered {response.status_code}")
        try:
            answer: dict[str, Any] = response.json()
        except ValueError as exc:
            raise ProviderUnavailable(f"token endpoint {endpoint}: not JSON") from exc
        return answer

    # -- the browser side --------------------------------------------------------------------------

    async def current(self, request: Request) -> WebSession | None:
        return await self.get(request.cookies.get(self.config.cookie))

    async def sign_in_redirect(self, request: Request) -> Response:
        """The answer to a page asked for without a session: off to the provider, back to this page after."""
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        # Each redirect writes a sign-in row: an address without a session takes from the anonymous bucket,
        # as a keyless API call does, so a loop of page loads cannot fill the table.
        app = request.scope.get("app")
        limits: RateLimits | None = getattr(app.state, "rate_limits", None) if app is not None else None
        if limits is not None:
            try:
                limits.check(ANONYMOUS, request.client.host if request.client else "unknown", anonymous=True)
            except Problem as problem:
                return too_many_sign_ins_page(problem.headers or {})
        try:
            url, binding = await self.start(target)
        except ProviderUnavailable as exc:
            log.error("cannot start a sign-in: %s", exc)
            return unavailable_page()
        response = RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})
        response.set_cookie(
            self.config.binding_cookie, binding, max_age=int(SIGN_IN_TTL.total_seconds()), path=CALLBACK_PATH,
            httponly=True, samesite="lax", secure=self.config.secure_cookies,
        )  # fmt: skip
        return response


def _expiry(now: datetime, expires_in: Any) -> datetime | None:
    try:
        return now + timedelta(seconds=float(expires_in))
    except (TypeError, ValueError):
        return None


def _session(row: Any) -> WebSession:
    person = Person(
        subject=row["subject"],
        username=row["username"],
        name=row["name"],
        roles=frozenset(row["roles"]),
        kommune=row["kommune"],
        roster_id=row["roster_id"],
    )
    return WebSession(person=person, csrf=row["csrf"], expires_at=row["expires_at"], id_sha256=row["id_sha256"])


PAGE_HEADERS = {
    "Cache-Control": "no-store",
    **SECURITY_HEADERS,
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none';"
    " base-uri 'none'",
}


def _plain_page(title: str, body: str, status: int) -> HTMLResponse:
    """`body` is fixed text of this module, never anything a user typed."""
    return HTMLResponse(
        f'<!doctype html><html lang="da"><head><meta charset="utf-8"><title>{title}</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1"></head>'
        f"<body><main><h1>{title}</h1>{body}</main></body></html>",
        status_code=status,
        headers=PAGE_HEADERS,
    )


def too_many_sign_ins_page(headers: dict[str, str]) -> HTMLResponse:
    """429: an address without a session started too many sign-ins; `headers` carry Retry-After."""
    page = _plain_page(
        "For mange forsøg",
        "<p>Der er startet for mange log-ind fra denne adresse. Vent et øjeblik, og prøv igen.</p>",
        429,
    )
    page.headers.update(headers)
    return page


def unavailable_page() -> HTMLResponse:
    return _plain_page(
        "Log-in er ikke muligt lige nu",
        "<p>Politiets log-in-tjeneste svarer ikke. Prøv igen om et øjeblik; virker det stadig ikke,"
        " så ring til driftsvagten.</p>",
        503,
    )


def origin_of(url: str) -> str:
    """'https://login.politi.example' of 'https://login.politi.example/realms/mvsj': for CSP's form-action."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def same_origin(request: Request) -> bool:
    """A browser names the page a POST came from; one from another site is refused (besides the CSRF token)."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    if origin == "null":
        return False
    host = request.headers.get("host", "")
    return origin.split("://", 1)[-1] == host


def sign_in_router(sessions: WebSessions) -> APIRouter:
    """The callback, sign-out and signed-out page every service with pages mounts."""
    router = APIRouter(include_in_schema=False)
    config = sessions.config

    @router.get(CALLBACK_PATH, response_model=None)
    async def callback(request: Request, state: str = "", code: str = "", error: str = "") -> Response:
        if error or not state or not code:
            # The person cancelled at the provider, or the provider refused: say so, offer to try again.
            log.info("sign-in not completed at the provider (%s)", error[:64] or "no code")
            return _plain_page(
                "Log-in blev ikke gennemført",
                f'<p>Log-in blev afbrudt. <a href="{config.home}">Prøv igen</a>.</p>',
                400,
            )
        started = time.monotonic()
        try:
            session_id, session, return_to = await sessions.finish(
                state[:256], code[:2048], request.cookies.get(config.binding_cookie)
            )
        except SignInFailed as exc:
            log.warning("sign-in refused: %s", exc)
            return _plain_page(
                "Log-in mislykkedes",
                f"<p>Log-in kunne ikke gennemføres (linket er brugt, for gammelt eller åbnet i en anden browser)."
                f' <a href="{config.home}">Log ind igen</a>.</p>',
                400,
            )
        except ProviderUnavailable as exc:
            log.error("sign-in failed: %s", exc)
            return unavailable_page()
        response = RedirectResponse(return_to, status_code=303, headers={"Cache-Control": "no-store"})
        response.set_cookie(
            config.cookie, session_id, max_age=int(config.max_age_seconds), path="/", httponly=True,
            samesite="lax", secure=config.secure_cookies,
        )  # fmt: skip
        response.delete_cookie(config.binding_cookie, path=CALLBACK_PATH)
        elapsed_ms = (time.monotonic() - started) * 1000
        log.debug("sign-in completed in %.0f ms", elapsed_ms, extra={"person": session.person.id})
        return response

    @router.post(LOGOUT_PATH, response_model=None)
    async def logout(request: Request) -> Response:
        session = await sessions.current(request)
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        token = (form.get("csrf") or [""])[0]
        if session is None:
            target: str = SIGNED_OUT_PATH
        elif not same_origin(request) or not secrets.compare_digest(token, session.csrf):
            return _plain_page("Log ud", '<p>Ugyldig formular. <a href="' + config.home + '">Tilbage</a>.</p>', 403)
        else:
            target = await sessions.end(session) or SIGNED_OUT_PATH
        response = RedirectResponse(target, status_code=303, headers={"Cache-Control": "no-store"})
        response.delete_cookie(config.cookie, path="/")
        return response

    @router.get(SIGNED_OUT_PATH, response_class=HTMLResponse)
    async def signed_out() -> HTMLResponse:
        return _plain_page("Du er logget ud", f'<p><a href="{config.home}">Log ind igen</a></p>', 200)

    return router


async def purge_expired(conn: Conn, now: datetime, limit: int) -> tuple[int, int]:
    """Deletes up to `limit` sessions past their expiry and `limit` sign-ins never finished; returns how many of each.

    Rows being read or written are skipped, never waited on; instances purging at once delete each row once.
    """
    sessions = await conn.execute(
        "DELETE FROM web_sessions WHERE id_sha256 IN"
        " (SELECT id_sha256 FROM web_sessions WHERE expires_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
        now,
        limit,
    )
    sign_ins = await conn.execute(
        "DELETE FROM web_sign_ins WHERE state IN"
        " (SELECT state FROM web_sign_ins WHERE created_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
        now - SIGN_IN_TTL,
        limit,
    )
    return int(sessions.split()[-1]), int(sign_ins.split()[-1])


async def purge_web_sessions(
    pool: asyncpg.Pool, now: datetime, *, service: str, batch_size: int = PURGE_BATCH_SIZE
) -> tuple[int, int]:
    """One round: batches (a transaction each) until the ended sessions and stale sign-ins are gone."""
    sessions = sign_ins = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            batch = await purge_expired(conn, now, batch_size)
        sessions, sign_ins = sessions + batch[0], sign_ins + batch[1]
        if max(batch) < batch_size:
            break
    if sessions or sign_ins:
        SESSIONS_PURGED.labels(service, "session").inc(sessions)
        SESSIONS_PURGED.labels(service, "sign_in").inc(sign_ins)
        log.info("web sessions purged", extra={"sessions_purged": sessions, "sign_ins_purged": sign_ins})
    return sessions, sign_ins


async def purge_web_sessions_loop(runtime: ServiceRuntime) -> None:
    """The background loop of every service with pages (in its bootstrap's `loops`): a purge each hour."""

    async def round_() -> None:
        await purge_web_sessions(runtime.db, runtime.clock.now(), service=runtime.service)

    await every(PURGE_INTERVAL_SECONDS, round_, failure="web sessions not purged")


def web_sessions(
    settings: CommonSettings, pool: Callable[[], asyncpg.Pool], now: Callable[[], datetime], *, cookie: str,
    home: str, public_url: str,
) -> WebSessions:  # fmt: skip
    """A service's sign-in, from the shared settings (OIDC_*, WEB_SESSION_*)."""
    config = SignInConfig(
        client_id=settings.oidc_client_id,
        client_secret=settings.oidc_client_secret,
        public_url=public_url,
        cookie=cookie,
        home=home,
        max_age_seconds=settings.web_session_max_age_seconds,
        recheck_seconds=settings.web_session_recheck_seconds,
        offline_grace_seconds=settings.web_session_offline_grace_seconds,
        # Over plain http only on a developer's machine (browsers treat 127.0.0.1 as secure anyway).
        secure_cookies=not settings.is_development,
    )
    return WebSessions(OidcProvider(settings.oidc_issuer_url), pool, config, now)
