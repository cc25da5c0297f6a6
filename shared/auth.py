"""Who calls an API: a machine with a key (portal, police, council systems; stored as SHA-256 hashes, never in
clear), or a person with an access token from the district's identity provider (shared/oidc.py)."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from fastapi import Request

from shared.http import Problem
from shared.oidc import InvalidToken, OidcProvider, Person, ProviderUnavailable
from shared.ratelimit import ANONYMOUS, DEFAULT_BUCKET, RateLimits

ROLES = frozenset({"portal", "police", "council"})


@dataclass(frozen=True, slots=True)
class ApiClient:
    """Who is calling: a named key with one role, or a person (`person`; `name` is then their id)."""

    name: str
    role: str
    person: Person | None = None


log = logging.getLogger(__name__)


def role_of(person: Person) -> str | None:
    """The API role a person's provider roles give: officers are `police`, council secretaries `council`."""
    if person.is_police:
        return "police"
    if "raadssekretaer" in person.roles:
        return "council"
    return None


def looks_like_jwt(token: str) -> bool:
    """An access token (a signed JWT: header.payload.signature, the header base64url JSON) rather than a key."""
    return token.startswith("eyJ") and token.count(".") == 2


async def person_client(provider: OidcProvider | None, token: str) -> ApiClient | None:
    """The caller an access token names, or None when it proves nothing (the reason goes to the log)."""
    if provider is None:
        return None
    try:
        person = await provider.person(token)
    except InvalidToken as exc:
        log.warning("access token refused: %s", exc)
        return None
    except ProviderUnavailable as exc:
        log.error("cannot check an access token: %s", exc)
        raise Problem(503, "Identity provider unavailable",
                      "The identity provider does not answer; try again shortly.") from exc  # fmt: skip
    role = role_of(person)
    return ApiClient(name=person.id, role=role or "none", person=person)


def hash_key(key: str) -> str:
    # Keys are long random tokens, so a plain SHA-256 is enough; slow password hashes are for low entropy.
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeys:
    def __init__(self, entries: dict[str, ApiClient]) -> None:
        self._by_hash = entries

    @classmethod
    def load(cls, path: Path) -> ApiKeys:
        """Reads `keys: [{name, role, sha256}]`; a malformed file stops start-up with the entry named."""
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise ValueError(f"API_KEYS_FILE {path}: cannot read it ({exc.strerror})") from exc
        entries: dict[str, ApiClient] = {}
        for i, item in enumerate(raw.get("keys") or []):
            name = item.get("name") or f"#{i + 1}"
            digest = str(item.get("sha256", "")).lower()
            role = item.get("role")
            if role not in ROLES:
                raise ValueError(f"API_KEYS_FILE {path}: key {name}: role must be one of {sorted(ROLES)}")
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise ValueError(f"API_KEYS_FILE {path}: key {name}: sha256 must be 64 hex characters")
            entries[digest] = ApiClient(name=name, role=role)
        if not entries:
            raise ValueError(f"API_KEYS_FILE {path}: no keys configured")
        return cls(entries)

    def identify(self, key: str) -> ApiClient | None:
        digest = hash_key(key)
        for known, client in self._by_hash.items():
            if hmac.compare_digest(known, digest):
                return client
        return None


def require_role(*roles: str, bucket: str = DEFAULT_BUCKET) -> Callable[[Request], Coroutine[Any, Any, ApiClient]]:
    """FastAPI dependency: 429 over the rate, 401 without a valid key, 403 when the key's role may not do this.

    The rate is `bucket`'s per key, or, with no key or a wrong one, the ANONYMOUS bucket's per
    client address (shared/ratelimit.py); `app.state.rate_limits` holds the service's RateLimits.
    """
    unknown = set(roles) - ROLES
    if unknown:
        raise ValueError(f"unknown roles {unknown}")

    async def dependency(request: Request) -> ApiClient:
        keys: ApiKeys = request.app.state.api_keys
        limits: RateLimits = request.app.state.rate_limits
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        bearer = scheme.lower() == "bearer" and bool(token)
        client: ApiClient | None = None
        if bearer and looks_like_jwt(token):
            client = await person_client(getattr(request.app.state, "oidc", None), token)
        elif bearer:
            client = keys.identify(token)
        if client is None:
            address = request.client.host if request.client else "unknown"
            limits.check(ANONYMOUS, address, anonymous=True)
            if bearer and looks_like_jwt(token):
                detail = ("The access token is not valid: expired, for another audience, or not signed by the"
                          " district's identity provider. Get a new one.")  # fmt: skip
            elif bearer:
                detail = "The API key is not valid."
            else:
                detail = "Send an API key, or a person's access token, as 'Authorization: Bearer <key or token>'."
            raise Problem(401, "Unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})
        limits.check(bucket, client.name)
        if client.role not in roles:
            if client.person is not None:
                raise Problem(403, "Forbidden", f"{client.person.username} has no role that may do this; it needs:"
                              f" {', '.join(roles)}.")  # fmt: skip
            raise Problem(403, "Forbidden", f"The '{client.role}' role may not do this; it needs: {', '.join(roles)}.")
        request.state.client = client
        return client

    return dependency
