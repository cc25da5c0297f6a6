"""Who calls an API: a machine with a key (portal, police, council systems; stored as SHA-256 hashes, never in
clear), or a person with an access token from the district's identity provider (shared/oidc.py).

The key file's format, its re-reading and the keys' expiry: shared/key_file.py. Making a key:
`python -m shared.auth new-key --name portal --role portal --expires 2027-06-30` (main() below).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import logging
import secrets
import sys
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import yaml
from fastapi import Request

from shared.clock import Clock, SystemClock
from shared.http import Problem
from shared.key_file import CHECK_EVERY_SECONDS, LOCAL, ROLES, ApiKey, KeyFile, expiry_value, parse_expiry, parse_keys
from shared.logs import bind_log_context
from shared.oidc import InvalidToken, OidcProvider, Person, ProviderUnavailable
from shared.ratelimit import ANONYMOUS, DEFAULT_BUCKET, RateLimits

__all__ = ["ROLES", "ApiClient", "ApiKeys", "hash_key", "identify", "main", "require_person", "require_role"]


@dataclass(frozen=True, slots=True)
class ApiClient:
    """Who is calling: a named key with one role, or a person (`person`; `name` is then their id).

    A key's `name` is its client's, what audit rows record; `key_id` says which of the client's keys
    it is, for logs (never the key itself).
    """

    name: str
    role: str
    person: Person | None = None
    key_id: str = ""


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
    """The keys callers may present, as API_KEYS_FILE holds them now; an expired key is refused."""

    def __init__(self, source: KeyFile, clock: Clock | None = None) -> None:
        self._source = source
        self._clock = clock or SystemClock()

    @classmethod
    def load(cls, path: Path, *, clock: Clock | None = None, check_every: float = CHECK_EVERY_SECONDS) -> ApiKeys:
        """Reads the file (a malformed one stops start-up with the entry named), then re-reads it when it changes."""
        clock = clock or SystemClock()
        return cls(KeyFile(path, clock=clock, check_every=check_every), clock)

    def identify(self, key: str) -> ApiClient | None:
        """The client holding `key`; None for an unknown key and for an expired one (refusal() says which)."""
        found = self._find(key)
        if found is None or found.expired(self._clock.now()):
            return None
        return ApiClient(name=found.name, role=found.role, key_id=found.key_id)

    def refusal(self, key: str) -> str:
        """Why identify() refuses `key`, for the 401's detail; never repeats the key."""
        found = self._find(key)
        if found is not None and found.expired(self._clock.now()):
            return f"This API key expired on {found.expires}; ask the police district for a new one."
        return "The API key is not valid."

    def _find(self, key: str) -> ApiKey | None:
        digest = hash_key(key)
        for known in self._source.keys:
            if hmac.compare_digest(known.sha256, digest):
                return known
        return None


async def identify(request: Request, bucket: str = DEFAULT_BUCKET) -> ApiClient:
    """The caller (a key's client or a token's person), within `bucket`'s rate; 401 or 429 otherwise.

    The rate is `bucket`'s per key, or, with no key or a wrong one, the ANONYMOUS bucket's per
    client address (shared/ratelimit.py); `app.state.rate_limits` holds the service's RateLimits.
    """
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
            detail = keys.refusal(token)
        else:
            detail = "Send an API key, or a person's access token, as 'Authorization: Bearer <key or token>'."
        raise Problem(401, "Unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})
    if client.person is None:
        bind_log_context(key=client.name, key_id=client.key_id)  # which key, in every line of the request
    limits.check(bucket, client.name)
    return client


def require_person(
    *person_roles: str, bucket: str = DEFAULT_BUCKET
) -> Callable[[Request], Coroutine[Any, Any, ApiClient]]:
    """FastAPI dependency for what only a person may do, as themselves: an access token whose person has
    one of `person_roles` (the provider's roles, e.g. databeskyttelse). A key is a 403 whatever its role:
    a system cannot stand in for the person who answers for the act."""

    async def dependency(request: Request) -> ApiClient:
        client = await identify(request, bucket)
        person = client.person
        if person is None:
            raise Problem(403, "Forbidden", "Only a person may do this, with their own access token (not an API key);"
                          f" it needs the role: {', '.join(person_roles)}.")  # fmt: skip
        if not person.roles & set(person_roles):
            raise Problem(403, "Forbidden", f"{person.username} has no role that may do this; it needs:"
                          f" {', '.join(person_roles)}.")  # fmt: skip
        request.state.client = client
        return client

    return dependency


def require_role(*roles: str, bucket: str = DEFAULT_BUCKET) -> Callable[[Request], Coroutine[Any, Any, ApiClient]]:
    """FastAPI dependency: 429 over the rate, 401 without a valid key, 403 when the key's role may not do this."""
    unknown = set(roles) - ROLES
    if unknown:
        raise ValueError(f"unknown roles {unknown}")

    async def dependency(request: Request) -> ApiClient:
        client = await identify(request, bucket)
        if client.role not in roles:
            if client.person is not None:
                raise Problem(403, "Forbidden", f"{client.person.username} has no role that may do this; it needs:"
                              f" {', '.join(roles)}.")  # fmt: skip
            raise Problem(403, "Forbidden", f"The '{client.role}' role may not do this; it needs: {', '.join(roles)}.")
        request.state.client = client
        return client

    return dependency


# --- making a key: python -m shared.auth new-key ---------------------------------------------------


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, clock: Clock | None = None) -> int:
    """`new-key`: a fresh key, printed once, and the line for API_KEYS_FILE with its hash."""
    parser = argparse.ArgumentParser(
        prog="python -m shared.auth", description="API keys of the machines that call the services (API_KEYS_FILE)."
    )
    commands = parser.add_subparsers(dest="action", required=True, metavar="new-key")
    new = commands.add_parser(
        "new-key", help="make a key: prints it once, and the line to add to API_KEYS_FILE (its hash, never the key)"
    )
    new.add_argument("--name", required=True, help="the client, as audit rows record it (key:NAME); one per system")
    new.add_argument("--role", required=True, choices=sorted(ROLES))
    new.add_argument(
        "--expires",
        required=True,
        metavar="DATE|never",
        help="the last day the key works (2027-06-30, Danish time), an instant with its zone, or `never`",
    )
    new.add_argument("--key-id", default=None, help="which key of the client, for logs (default: NAME-<today>)")
    args = parser.parse_args(argv)
    out = out or sys.stdout
    now = (clock or SystemClock()).now()
    key = secrets.token_urlsafe(32)
    entry: dict[str, object] = {
        "name": args.name,
        "role": args.role,
        "key_id": args.key_id or f"{args.name}-{now.astimezone(LOCAL).date().isoformat()}",
        "sha256": hash_key(key),
    }
    until = "never expires (it works until its line is removed)"
    if args.expires.strip().lower() != "never":
        try:
            expires_at, text = parse_expiry(args.expires)
        except ValueError as exc:
            new.error(str(exc))
        if expires_at <= now:
            new.error(f"--expires {text}: that is past")
        # A date unquoted (`expires: 2027-06-30`); an instant as its ISO text (YAML would tag a datetime).
        entry["expires"] = expiry_value(text) if len(text) == 10 else text
        until = f"works through {text} (Danish time)" if len(text) == 10 else f"is refused from {text}"
    line = yaml.safe_dump([entry], default_flow_style=None, sort_keys=False, width=1000).strip()
    try:
        parse_keys(yaml.safe_load(f"keys:\n  {line}\n"))  # the line loads as the services will load it
    except ValueError as exc:
        new.error(str(exc))
    print(f"New API key {entry['key_id']} of client {args.name} (role {args.role}); it {until}.", file=out)
    print("The key, shown this once: hand it to the client by a safe channel and keep no copy.\n", file=out)
    print(f"    {key}\n", file=out)
    print(
        "Add this line under `keys:` in API_KEYS_FILE, beside the client's current key; the services read the file"
        " again within seconds, no restart. Once the client uses the new key, remove the line of the old one.\n",
        file=out,
    )
    print(f"  {line}", file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
