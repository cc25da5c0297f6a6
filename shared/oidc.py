"""The district's OpenID Connect provider as the services see it: its keys, its tokens, the person they name.

A token is accepted only when all of these hold: its header names an asymmetric algorithm the
service allows (never `none`, never a shared-secret HMAC), its signature verifies with a key the
provider publishes at its JWKS address, its issuer is the configured issuer, its audience holds
the expected one, and it has not expired (`exp`, `nbf`, `iat` with a small leeway). A key id the
service has not seen makes it read the JWKS again (the provider rotated its keys), at most once per
`refetch_after` seconds (counted from the last attempt, answered or not), so a flood of forged key
ids costs the provider nothing, and nothing waits on a provider that is down. Keys read more than
`keys_max_age` seconds ago are read again before use, so a key the provider withdrew (a leaked key
removed from the realm) stops being trusted within that time even when no new key id ever comes
along; if the provider cannot be read then, the keys it last published are kept meanwhile.

The person comes from the claims the district's realm puts in every token (deploy/keycloak/make_realm.py):
`sub` (the provider's stable id), `preferred_username`, `name`, `roles`, `kommune` and, for an
officer of the roster, `roster_id`, the stable link between the provider's user and the roster's
officer, so "who was told" and "who acknowledged" name the same person.
"""

from __future__ import annotations

import asyncio
import logging
import time
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from shared.validation import text_problem

log = logging.getLogger(__name__)

# Asymmetric only: the provider signs, services verify with its public keys. HS256 would let anyone
# who knows a client secret mint tokens; `none` would let anyone at all.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
API_AUDIENCE = "mvsj-api"
POLICE_ROLES = frozenset({"vagtchef", "lokalbetjent"})
KREDS = "kreds"


class InvalidToken(Exception):
    """A token that proves nothing; the message says why, for the log (never shown with the token)."""


class ProviderUnavailable(Exception):
    """The provider's discovery document or keys cannot be read: nobody can be checked right now."""


@dataclass(frozen=True, slots=True)
class Person:
    """Someone the provider knows, signed in as themselves.

    `id` is what records name: the roster id for an officer of the roster (the `roster_id` claim),
    else the provider's stable subject. `name` is the provider's display name, never typed text.
    """

    subject: str
    username: str
    name: str
    roles: frozenset[str]
    kommune: str | None = None
    roster_id: str | None = None

    @property
    def id(self) -> str:
        return self.roster_id or self.subject

    @property
    def is_police(self) -> bool:
        return bool(self.roles & POLICE_ROLES)

    @property
    def is_vagtchef(self) -> bool:
        return "vagtchef" in self.roles

    def sees_kommune(self, kommune: str) -> bool:
        """An officer's reach: a vagtchef every kommune, a lokalbetjent his own; anyone else none."""
        if self.is_vagtchef:
            return True
        return "lokalbetjent" in self.roles and self.kommune == kommune

    @property
    def kommuner(self) -> frozenset[str] | None:
        """The kommuner whose alerts this officer sees; None: all of them."""
        if self.is_vagtchef:
            return None
        if "lokalbetjent" in self.roles and self.kommune:
            return frozenset({self.kommune})
        return frozenset()


def _printable(value: Any, limit: int = 200) -> str | None:
    """A claim fit for records, e-mails and pages: a string without control, format or bidi characters."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or len(text) > limit:
        return None
    # The one text check of every name the services accept (control, format, bidi, line separators), and
    # besides it no surrogates, private-use or unassigned characters: a provider's name is never invented.
    if text_problem(text) is not None or any(unicodedata.category(c) in ("Cs", "Co", "Cn") for c in text):
        return None
    return text


def _kommune(value: Any) -> str | None:
    """The `kommune` claim: the realm's mapper is multivalued, so a token carries a list (["0253"]).

    One code is the person's kommune; several (a person in two kommune groups) name no single one,
    so none is used: an officer's reach is never widened by a guess.
    """
    if isinstance(value, list):
        codes = {code for code in (_printable(v, 16) for v in value) if code}
        if len(codes) > 1:
            log.warning("a token names several kommuner; none is used", extra={"kommuner": sorted(codes)})
        return codes.pop() if len(codes) == 1 else None
    return _printable(value, 16)


def person_from_claims(claims: Mapping[str, Any]) -> Person:
    """The person a validated token names; InvalidToken when it names none fit for a record."""
    subject = _printable(claims.get("sub"))
    if subject is None:
        raise InvalidToken("the token has no usable subject (sub)")
    username = _printable(claims.get("preferred_username")) or subject
    # A display name with a line break or a bidi override would forge text in e-mails and pages:
    # such a name is not used; the username (which the provider restricts) stands instead.
    name = _printable(claims.get("name")) or username
    raw_roles = claims.get("roles") or []
    if isinstance(raw_roles, str):
        raw_roles = [raw_roles]
    roles = frozenset(r for r in (_printable(x, 64) for x in raw_roles if isinstance(x, str)) if r)
    return Person(
        subject=subject,
        username=username,
        name=name,
        roles=roles,
        kommune=_kommune(claims.get("kommune")),
        roster_id=_printable(claims.get("roster_id"), 64),
    )


class OidcProvider:
    """One provider, read once and cached: discovery document, then keys (read again on an unknown kid and when old)."""

    def __init__(
        self,
        issuer: str,
        *,
        http: httpx.AsyncClient | None = None,
        now: Callable[[], float] = time.time,
        leeway: int = 30,
        refetch_after: float = 30.0,
        keys_max_age: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self._http = http or httpx.AsyncClient(timeout=5.0)
        self._owns_http = http is None
        self._now = now
        self._clock = clock  # for the key cache's windows; `now` is the wall clock that tokens' times are read on
        self.leeway = leeway
        self.refetch_after = refetch_after
        self.keys_max_age = keys_max_age
        self._metadata: dict[str, Any] | None = None
        self._keys: KeySet | None = None
        self._kids: set[str] = set()
        self._keys_read_at = float("-inf")
        self._keys_tried_at = float("-inf")
        self._lock = asyncio.Lock()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            url = f"{self.issuer}/.well-known/openid-configuration"
            try:
                response = await self._http.get(url)
                response.raise_for_status()
                document = response.json()
            except (httpx.HTTPError, ValueError) as exc:
                raise ProviderUnavailable(f"the identity provider's discovery document {url}: {exc!r}") from exc
            if str(document.get("issuer", "")).rstrip("/") != self.issuer:
                # A document that names another issuer is not this provider's (OpenID Connect Discovery §4.3).
                raise ProviderUnavailable(f"{url} names issuer {document.get('issuer')!r}, not {self.issuer!r}")
            self._metadata = document
        return self._metadata

    async def endpoint(self, name: str) -> str:
        value = (await self.metadata()).get(name)
        if not isinstance(value, str):
            raise ProviderUnavailable(f"the identity provider publishes no {name}")
        return value

    async def _read_keys(self) -> None:
        self._keys_tried_at = self._clock()
        url = await self.endpoint("jwks_uri")
        try:
            response = await self._http.get(url)
            response.raise_for_status()
            document = response.json()
            # Only signing keys of the allowed algorithms; the provider also lists encryption keys.
            signing = [k for k in document.get("keys", []) if k.get("use", "sig") == "sig"
                       and k.get("alg", "RS256") in ALGORITHMS]  # fmt: skip
            keys = KeySet.import_key_set({"keys": signing})
        except (httpx.HTTPError, ValueError, JoseError) as exc:
            raise ProviderUnavailable(f"the identity provider's keys {url}: {exc!r}") from exc
        self._keys = keys
        self._kids = {str(k.get("kid")) for k in signing if k.get("kid")}
        self._keys_read_at = self._clock()
        log.info("identity provider keys read", extra={"kids": sorted(self._kids)})

    async def _keys_for(self, kid: str | None) -> KeySet:
        async with self._lock:
            # From the last attempt, not the last success: while the provider fails, each forged kid
            # would otherwise ask it again, one after another under the lock, with genuine tokens queued behind.
            now = self._clock()
            may_retry = now - self._keys_tried_at >= self.refetch_after
            if self._keys is None or (kid not in self._kids and may_retry):
                await self._read_keys()
            elif may_retry and now - self._keys_read_at >= self.keys_max_age:
                # Without this a withdrawn key stayed trusted for the life of the process: only an
                # unknown kid made the service read the keys again.
                try:
                    await self._read_keys()
                except ProviderUnavailable as exc:
                    log.warning("identity provider keys not refreshed; the last ones read are kept: %s", exc)
            assert self._keys is not None
            return self._keys

    async def validate(self, token: str, *, audience: str, nonce: str | None = None) -> dict[str, Any]:
        """The token's claims when it is genuine and current for `audience`; InvalidToken otherwise."""
        if not token or token.count(".") != 2:
            raise InvalidToken("not a signed JWT (compact JWS)")
        try:
            header = jws.extract_compact(token.encode()).headers()
        except (JoseError, ValueError) as exc:
            raise InvalidToken(f"unreadable token header ({type(exc).__name__})") from exc
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise InvalidToken(f"algorithm {alg!r} is not accepted")
        # A kid that is no string (a JSON object or list in a forged header) names no key; it must
        # not reach the set lookup, where an unhashable value would raise TypeError (a 500, not a 401).
        kid = header.get("kid") if isinstance(header.get("kid"), str) else None
        keys = await self._keys_for(kid)
        if kid is None or kid not in self._kids:
            raise InvalidToken(f"signed with a key the provider does not publish (kid {kid!r})")
        try:
            decoded = jwt.decode(token, keys, algorithms=list(ALGORITHMS))
        except JoseError as exc:
            raise InvalidToken(f"signature does not verify ({type(exc).__name__})") from exc
        claims = dict(decoded.claims)
        registry = jwt.JWTClaimsRegistry(
            now=lambda: int(self._now()),
            leeway=self.leeway,
            iss={"essential": True, "value": self.issuer},
            sub={"essential": True},
            exp={"essential": True},
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            raise InvalidToken(f"{type(exc).__name__}: {exc}") from exc
        audiences = claims.get("aud")
        if isinstance(audiences, str):
            audiences = [audiences]
        if not isinstance(audiences, list) or audience not in audiences:
            raise InvalidToken(f"audience {claims.get('aud')!r} does not include {audience!r}")
        if nonce is not None and claims.get("nonce") != nonce:
            raise InvalidToken("nonce does not match the sign-in it answers")
        return claims

    async def person(self, token: str, *, audience: str = API_AUDIENCE) -> Person:
        """The person an access token was issued to (bearer tokens of the API)."""
        return person_from_claims(await self.validate(token, audience=audience))
