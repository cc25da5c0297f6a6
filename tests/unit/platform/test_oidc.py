"""shared/oidc.py: the person a token names, and the tokens a service refuses (issue 16).

Tokens are minted here with joserfc. The provider's discovery document and JWKS are served by a real
HTTP server on a loopback port (http.server in a thread), so OidcProvider reads them as it reads
Keycloak's: over HTTP, each request counted. The key cache's clock is a value the tests move.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from joserfc import jws, jwt
from joserfc.jwk import ECKey, RSAKey
from joserfc.jws import JWSRegistry

from shared.oidc import (
    API_AUDIENCE,
    InvalidToken,
    OidcProvider,
    Person,
    ProviderUnavailable,
    person_from_claims,
)

# ---------------------------------------------------------------------------------------------------
# The person a token names
# ---------------------------------------------------------------------------------------------------


def claims(**extra: Any) -> dict[str, Any]:
    return {"sub": "0b5c-user", "preferred_username": "lb-greve-1", "name": "Lokalbetjent Greve 1", **extra}


def test_roles_kommune_and_roster_id_come_from_the_claims_as_the_realm_writes_them() -> None:
    person = person_from_claims(claims(roles=["lokalbetjent"], kommune=["0253"], roster_id="lb-greve-1"))
    assert person == Person(
        subject="0b5c-user",
        username="lb-greve-1",
        name="Lokalbetjent Greve 1",
        roles=frozenset({"lokalbetjent"}),
        kommune="0253",
        roster_id="lb-greve-1",
    )
    assert person.id == "lb-greve-1"  # an officer of the roster is named by the roster's id
    assert person.is_police and not person.is_vagtchef


def test_a_person_without_roster_id_is_named_by_the_subject() -> None:
    person = person_from_claims(claims(roles=["raadssekretaer"], kommune=["kreds"]))
    assert (person.id, person.roster_id, person.kommune) == ("0b5c-user", None, "kreds")
    assert not person.is_police


@pytest.mark.parametrize(
    ("raw", "roles"),
    [
        (["vagtchef", "lokalbetjent"], {"vagtchef", "lokalbetjent"}),
        ("vagtchef", {"vagtchef"}),  # a single-valued mapper writes a string
        (None, set()),
        ([], set()),
        (["vagtchef", 7, None, {"x": 1}], {"vagtchef"}),  # no role from a value that is no string
        (["vagt\nchef", "vagtchef\u200b", ""], set()),  # nor from one with a control or format character
        ("x" * 65, set()),
    ],
)
def test_roles_are_the_printable_strings_of_the_claim(raw: Any, roles: set[str]) -> None:
    assert person_from_claims(claims(roles=raw)).roles == roles


@pytest.mark.parametrize(
    ("raw", "kommune"),
    [
        (["0253"], "0253"),
        ("0253", "0253"),
        (["0253", "0253"], "0253"),  # the same code through two groups
        (["0253", "0265"], None),  # two kommuner name no single one: none is used
        ([], None),
        (None, None),
        ([253], None),
        (["02\u202e53"], None),
        ("0" * 17, None),
    ],
)
def test_the_kommune_is_the_claims_one_code(raw: Any, kommune: str | None) -> None:
    assert person_from_claims(claims(roles=["lokalbetjent"], kommune=raw)).kommune == kommune


@pytest.mark.parametrize(
    "name",
    [
        "Anne\r\nBcc: alle@politi.example",  # CR/LF: a header or a line of its own in an e-mail
        "Anne\nHolm",
        "Anne\x00Holm",  # NUL
        "Anne\u200bHolm",  # zero-width space
        "Anne\u200dHolm",  # zero-width joiner
        "Anne\ufeffHolm",  # zero-width no-break space (BOM)
        "\u202eenna",  # right-to-left override
        "Anne\u2066Holm\u2069",  # left-to-right isolate
        "Anne\u061cHolm",  # Arabic letter mark
        "Anne\x1b[31mHolm",  # an escape sequence for a terminal
        "Anne\u2028Holm",  # line separator: a line of its own in an e-mail
        "   ",
        "",
        "A" * 201,
        42,
        ["Anne"],
    ],
)
def test_a_display_name_that_could_forge_text_is_not_used_the_username_stands_instead(name: Any) -> None:
    person = person_from_claims(claims(name=name))
    assert person.name == "lb-greve-1"


def test_a_plain_display_name_with_letters_of_any_script_is_used() -> None:
    assert person_from_claims(claims(name="  Søren Ærø-Åberg  ")).name == "Søren Ærø-Åberg"
    assert person_from_claims(claims(name="Ĉiĉero Ŝtrauß")).name == "Ĉiĉero Ŝtrauß"


def test_without_a_usable_username_the_subject_stands_for_both() -> None:
    person = person_from_claims({"sub": "0b5c-user", "preferred_username": "lb\ngreve", "name": "\u202e"})
    assert (person.username, person.name) == ("0b5c-user", "0b5c-user")


@pytest.mark.parametrize("sub", [None, "", "   ", 17, ["0b5c-user"], "0b5c\nuser", "0b5c\u200buser", "s" * 201])
def test_a_token_without_a_usable_subject_names_nobody(sub: Any) -> None:
    token_claims = claims(roles=["vagtchef"], roster_id="vc-anne")
    if sub is None:
        del token_claims["sub"]
    else:
        token_claims["sub"] = sub
    with pytest.raises(InvalidToken, match="subject"):
        person_from_claims(token_claims)


def person(roles: set[str], kommune: str | None = None) -> Person:
    return Person(subject="s", username="u", name="n", roles=frozenset(roles), kommune=kommune)


def test_a_vagtchef_sees_every_kommune() -> None:
    chef = person({"vagtchef"})
    assert chef.sees_kommune("0253") and chef.sees_kommune("0350") and chef.sees_kommune("kreds")
    assert chef.kommuner is None
    # With a kommune as well (a vagtchef in a kommune's group) he still sees them all.
    assert person({"vagtchef", "lokalbetjent"}, "0253").kommuner is None


def test_a_lokalbetjent_sees_his_own_kommune_only() -> None:
    officer = person({"lokalbetjent"}, "0253")
    assert officer.sees_kommune("0253")
    assert not officer.sees_kommune("0265")
    assert officer.kommuner == frozenset({"0253"})


def test_a_lokalbetjent_without_a_kommune_sees_none() -> None:
    officer = person({"lokalbetjent"})
    assert not officer.sees_kommune("0253")
    assert officer.kommuner == frozenset()


@pytest.mark.parametrize("roles", [{"raadssekretaer"}, {"ops"}, {"databeskyttelse"}, set()])
def test_nobody_else_sees_a_kommunes_alerts_even_with_a_kommune(roles: set[str]) -> None:
    other = person(roles, "0253")
    assert not other.sees_kommune("0253")
    assert other.kommuner == frozenset()
    assert not other.is_police


# ---------------------------------------------------------------------------------------------------
# Tokens: a provider on a real loopback HTTP server, tokens minted here
# ---------------------------------------------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def segment(value: dict[str, Any]) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


@dataclass
class Keys:
    """Generated once per module (RSA generation takes tens of milliseconds)."""

    a: RSAKey  # published, kid key-a
    b: RSAKey  # published later in some tests, kid key-b
    ec: ECKey  # published, kid key-ec
    forger: RSAKey  # never published
    ec_forger: ECKey  # never published


@pytest.fixture(scope="module")
def keys() -> Keys:
    def rsa(kid: str) -> RSAKey:
        return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})

    return Keys(
        a=rsa("key-a"),
        b=rsa("key-b"),
        ec=ECKey.generate_key("P-256", parameters={"kid": "key-ec", "use": "sig", "alg": "ES256"}),
        forger=rsa("key-forger"),
        ec_forger=ECKey.generate_key("P-256", parameters={"kid": "key-ec-forger", "use": "sig", "alg": "ES256"}),
    )


@dataclass
class Idp:
    """A provider's two documents on a real HTTP server; what it publishes and how it answers can change."""

    issuer: str
    published: list[RSAKey | ECKey]
    discovery_requests: int = 0
    jwks_requests: int = 0
    jwks_status: int = 200
    discovery_issuer: str | None = None  # the issuer the discovery document names (default: its own)
    extra_jwks: list[dict[str, Any]] = field(default_factory=list)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.as_dict(private=False) for key in self.published] + self.extra_jwks}

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.discovery_issuer or self.issuer,
            "jwks_uri": f"{self.issuer}/protocol/openid-connect/certs",
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        }

    def mint(
        self,
        key: RSAKey | ECKey,
        *,
        header: dict[str, Any] | None = None,
        drop: tuple[str, ...] = (),
        **overrides: Any,
    ) -> str:
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": self.issuer,
            "sub": "0b5c-user",
            "aud": API_AUDIENCE,
            "iat": now,
            "exp": now + 300,
            "preferred_username": "vc-anne",
            "name": "Anne Holm",
            "roles": ["vagtchef"],
            "roster_id": "vc-anne",
            **overrides,
        }
        for name in drop:
            del body[name]
        alg = "ES256" if isinstance(key, ECKey) else "RS256"
        return jwt.encode({"alg": alg, "kid": key.kid, **(header or {})}, body, key)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, list[Idp]]]:
    """One HTTP server for the module (its shutdown polls every half second); each test sets what it serves."""
    current: list[Idp] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state = current[-1]
            if self.path == urlsplit(state.issuer).path + "/.well-known/openid-configuration":
                state.discovery_requests += 1
                self.answer(200, state.discovery())
            elif self.path == urlsplit(state.issuer).path + "/protocol/openid-connect/certs":
                state.jwks_requests += 1
                self.answer(state.jwks_status, state.jwks() if state.jwks_status == 200 else {"error": "down"})
            else:
                self.answer(404, {})

        def answer(self, status: int, document: dict[str, Any]) -> None:
            body = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/realms/test", current
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def idp(served: tuple[str, list[Idp]], keys: Keys) -> Idp:
    issuer, current = served
    state = Idp(issuer=issuer, published=[keys.a, keys.ec])
    current.append(state)
    return state


class Clock:
    """The key cache's clock; tests move it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """One client for the module's providers (each client of its own builds an SSL context: a tenth of a second)."""
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


@pytest.fixture
def provider(idp: Idp, clock: Clock, http: httpx.AsyncClient) -> OidcProvider:
    return OidcProvider(idp.issuer, http=http, refetch_after=30.0, keys_max_age=300.0, clock=clock)


async def test_a_genuine_token_validates_and_names_its_person(idp: Idp, keys: Keys, provider: OidcProvider) -> None:
    token = idp.mint(keys.a, kommune=["0253"])
    validated = await provider.validate(token, audience=API_AUDIENCE)
    assert (validated["sub"], validated["roles"]) == ("0b5c-user", ["vagtchef"])
    person = await provider.person(token)
    assert (person.id, person.name, person.is_vagtchef) == ("vc-anne", "Anne Holm", True)
    # Discovery and keys were read once, and are not read again for the next token.
    await provider.validate(idp.mint(keys.a), audience=API_AUDIENCE)
    assert (idp.discovery_requests, idp.jwks_requests) == (1, 1)


async def test_an_ec_signed_token_and_an_audience_list_are_accepted(
    idp: Idp, keys: Keys, provider: OidcProvider
) -> None:
    token = idp.mint(keys.ec, aud=["account", API_AUDIENCE])
    assert (await provider.validate(token, audience=API_AUDIENCE))["aud"] == ["account", API_AUDIENCE]


async def test_the_nonce_of_the_sign_in_is_accepted(idp: Idp, keys: Keys, provider: OidcProvider) -> None:
    token = idp.mint(keys.a, aud="mvsj-web", nonce="n-0s8d")
    assert (await provider.validate(token, audience="mvsj-web", nonce="n-0s8d"))["nonce"] == "n-0s8d"


async def test_times_within_the_leeway_are_accepted(idp: Idp, keys: Keys, provider: OidcProvider) -> None:
    now = int(time.time())
    token = idp.mint(keys.a, exp=now - 10, nbf=now + 10, iat=now + 10)  # leeway 30 s: a clock a little off
    await provider.validate(token, audience=API_AUDIENCE)


def rs256(key: RSAKey, header: dict[str, Any], payload: str) -> str:
    """A token signed with `key` whatever its header says (joserfc checks the headers it writes)."""
    signing_input = f"{segment(header)}.{payload}"
    return f"{signing_input}.{b64(JWSRegistry.algorithms['RS256'].sign(signing_input.encode(), key))}"


def forged(idp: Idp, keys: Keys) -> dict[str, str]:
    """Tokens that must be refused, each with what is wrong with it."""
    now = int(time.time())
    good = idp.mint(keys.a)
    header, payload, signature = good.split(".")
    claims_ = json.loads(unb64(payload))
    public_pem = keys.a.as_pem(private=False)

    def hs256(secret: bytes, head: dict[str, Any]) -> str:
        signing_input = f"{segment(head)}.{payload}"
        return f"{signing_input}.{b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"

    other_payload = segment({**claims_, "roles": ["vagtchef", "databeskyttelse"]})
    flipped = signature[:100] + ("A" if signature[100] != "A" else "B") + signature[101:]
    return {
        "expired": idp.mint(keys.a, iat=now - 900, exp=now - 600),
        "expired just past the leeway": idp.mint(keys.a, exp=now - 31),
        "not yet valid (nbf)": idp.mint(keys.a, nbf=now + 600),
        "issued in the future (iat)": idp.mint(keys.a, iat=now + 600),
        "exp not a number": idp.mint(keys.a, exp="tomorrow"),
        "missing exp": idp.mint(keys.a, drop=("exp",)),
        "missing sub": idp.mint(keys.a, drop=("sub",)),
        "wrong issuer": idp.mint(keys.a, iss=idp.issuer.replace("/realms/test", "/realms/other")),
        "issuer with a trailing slash": idp.mint(keys.a, iss=idp.issuer + "/"),
        "missing issuer": idp.mint(keys.a, drop=("iss",)),
        "wrong audience": idp.mint(keys.a, aud="account"),
        "audience list without ours": idp.mint(keys.a, aud=["account", "mvsj-web"]),
        "missing audience": idp.mint(keys.a, drop=("aud",)),
        "alg none": f"{segment({'alg': 'none', 'kid': 'key-a'})}.{payload}.",
        "alg None": f"{segment({'alg': 'None', 'kid': 'key-a'})}.{payload}.",
        "alg none with the good signature": f"{segment({'alg': 'none', 'kid': 'key-a'})}.{payload}.{signature}",
        "no alg": f"{segment({'kid': 'key-a'})}.{payload}.{signature}",
        "HS256 with the public key's PEM": hs256(public_pem, {"alg": "HS256", "kid": "key-a", "typ": "JWT"}),
        "HS256 with the public JWK": hs256(
            json.dumps(keys.a.as_dict(private=False)).encode(), {"alg": "HS256", "kid": "key-a"}
        ),
        "HS512 with the public key's PEM": f"{segment({'alg': 'HS512', 'kid': 'key-a'})}.{payload}."
        + b64(
            hmac.new(public_pem, f"{segment({'alg': 'HS512', 'kid': 'key-a'})}.{payload}".encode(), "sha512").digest()
        ),
        "a key never published": idp.mint(keys.forger),
        "a published kid, another key": idp.mint(keys.forger, header={"kid": "key-a"}),
        # An embedded key (RFC 7515 "jwk") is never used: only the provider's published keys verify.
        "a published kid, another key, its RSA key in the header": idp.mint(
            keys.forger, header={"kid": "key-a", "jwk": keys.forger.as_dict(private=False)}
        ),
        "a published kid, another key, its EC key in the header": idp.mint(
            keys.ec_forger, header={"kid": "key-ec", "jwk": keys.ec_forger.as_dict(private=False)}
        ),
        "an RSA kid named for an EC signature": idp.mint(keys.ec, header={"kid": "key-a"}),
        "no kid": jwt.encode({"alg": "RS256"}, claims_, keys.a),
        # joserfc mints no such header: signed here with the published key itself.
        "a kid that is an object": rs256(keys.a, {"alg": "RS256", "kid": {"kid": "key-a"}}, payload),
        "a kid that is a list": rs256(keys.a, {"alg": "RS256", "kid": ["key-a"]}, payload),
        "payload tampered": f"{header}.{other_payload}.{signature}",
        "payload tampered, one character": f"{header}.{payload[:40]}{'A' if payload[40] != 'A' else 'B'}{payload[41:]}.{signature}",
        "signature tampered": f"{header}.{payload}.{flipped}",
        "signature cut": f"{header}.{payload}.{signature[:-10]}",
        "signature missing": f"{header}.{payload}.",
        "header tampered to another alg": f"{segment({'alg': 'RS512', 'kid': 'key-a', 'typ': 'JWT'})}.{payload}.{signature}",
        "not a JWT": "not-a-token",
        "empty": "",
        "four parts": f"{good}.x",
        "a header that is no JSON": f"{b64(b'{oops')}.{payload}.{signature}",
        "a header that is a list": f"{b64(b'[]')}.{payload}.{signature}",
        "a payload that is a list, signed": jws.serialize_compact({"alg": "RS256", "kid": "key-a"}, b"[]", keys.a),
    }


# Each forgery and the check that refuses it (InvalidToken's message): the right check, not any.
FORGED = {
    "expired": "ExpiredTokenError",
    "expired just past the leeway": "ExpiredTokenError",
    "not yet valid (nbf)": "InvalidClaimError.*not yet valid",
    "issued in the future (iat)": "InvalidClaimError.*issued in the future",
    "exp not a number": "InvalidClaimError.*exp",
    "missing exp": "MissingClaimError.*exp",
    "missing sub": "MissingClaimError.*sub",
    "wrong issuer": "InvalidClaimError.*iss",
    "issuer with a trailing slash": "InvalidClaimError.*iss",
    "missing issuer": "MissingClaimError.*iss",
    "wrong audience": "audience",
    "audience list without ours": "audience",
    "missing audience": "audience",
    "alg none": "algorithm 'none'",
    "alg None": "algorithm 'None'",
    "alg none with the good signature": "algorithm 'none'",
    "no alg": "unreadable token header",
    "HS256 with the public key's PEM": "algorithm 'HS256'",
    "HS256 with the public JWK": "algorithm 'HS256'",
    "HS512 with the public key's PEM": "algorithm 'HS512'",
    "a key never published": "does not publish",
    "a published kid, another key": "signature does not verify",
    "a published kid, another key, its RSA key in the header": "unreadable token header",  # joserfc: header too large
    "a published kid, another key, its EC key in the header": "signature does not verify",
    "an RSA kid named for an EC signature": "signature does not verify",
    "no kid": "does not publish",
    "a kid that is an object": "does not publish",
    "a kid that is a list": "does not publish",
    "payload tampered": "signature does not verify",
    "payload tampered, one character": "signature does not verify",
    "signature tampered": "signature does not verify",
    "signature cut": "signature does not verify",
    "signature missing": "signature does not verify",
    "header tampered to another alg": "signature does not verify",
    "not a JWT": "not a signed JWT",
    "empty": "not a signed JWT",
    "four parts": "not a signed JWT",
    "a header that is no JSON": "unreadable token header",
    "a header that is a list": "unreadable token header",
    "a payload that is a list, signed": "InvalidPayloadError",
}


@pytest.fixture(scope="module")
def forgeries(served: tuple[str, list[Idp]], keys: Keys) -> dict[str, str]:
    return forged(Idp(issuer=served[0], published=[]), keys)


def test_the_list_of_forgeries_is_the_list_tested(forgeries: dict[str, str]) -> None:
    assert sorted(forgeries) == sorted(FORGED)


@pytest.mark.parametrize(("case", "reason"), FORGED.items())
async def test_a_forged_or_unfit_token_is_refused(
    idp: Idp, keys: Keys, provider: OidcProvider, forgeries: dict[str, str], case: str, reason: str
) -> None:
    await provider.validate(idp.mint(keys.a), audience=API_AUDIENCE)  # the keys are known: nothing else is wrong
    with pytest.raises(InvalidToken, match=reason):
        await provider.validate(forgeries[case], audience=API_AUDIENCE)


async def test_a_token_past_its_expiry_on_the_services_clock_is_refused(idp: Idp, keys: Keys, clock: Clock) -> None:
    token = idp.mint(keys.a)
    later = OidcProvider(idp.issuer, now=lambda: time.time() + 300 + 31, clock=clock)
    try:
        with pytest.raises(InvalidToken, match="ExpiredTokenError"):
            await later.validate(token, audience=API_AUDIENCE)
    finally:
        await later.aclose()


async def test_a_nonce_that_is_not_the_sign_ins_is_refused(idp: Idp, keys: Keys, provider: OidcProvider) -> None:
    with pytest.raises(InvalidToken, match="nonce"):
        await provider.validate(idp.mint(keys.a, aud="mvsj-web", nonce="n-other"), audience="mvsj-web", nonce="n-mine")
    with pytest.raises(InvalidToken, match="nonce"):
        await provider.validate(idp.mint(keys.a, aud="mvsj-web"), audience="mvsj-web", nonce="n-mine")


async def test_an_unknown_kid_is_refused_after_one_refetch(
    idp: Idp, keys: Keys, provider: OidcProvider, clock: Clock
) -> None:
    await provider.validate(idp.mint(keys.a), audience=API_AUDIENCE)
    assert idp.jwks_requests == 1
    clock.now += 30
    with pytest.raises(InvalidToken, match="does not publish"):
        await provider.validate(idp.mint(keys.forger), audience=API_AUDIENCE)
    assert idp.jwks_requests == 2  # it asked the provider again: the kid is unknown there too


async def test_unknown_kids_cost_the_provider_one_request_per_window(
    idp: Idp, keys: Keys, provider: OidcProvider, clock: Clock
) -> None:
    await provider.validate(idp.mint(keys.a), audience=API_AUDIENCE)
    flood = [idp.mint(keys.forger, header={"kid": f"forged-{n}"}) for n in range(20)]

    async def refused(token: str) -> None:
        with pytest.raises(InvalidToken):
            await provider.validate(token, audience=API_AUDIENCE)

    # Within the window after a read: no request at all.
    clock.now += 29.9
    await asyncio.gather(*(refused(token) for token in flood))
    assert idp.jwks_requests == 1
    # Past it: one request for the whole flood, concurrent or not.
    clock.now += 0.1
    await asyncio.gather(*(refused(token) for token in flood))
    for token in flood:
        await refused(token)
    assert idp.jwks_requests == 2
    clock.now += 30
    await asyncio.gather(*(refused(token) for token in flood))
    assert idp.jwks_requests == 3
    # Tokens of the published key are checked all along without a request.
    await provider.validate(idp.mint(keys.a), audience=API_AUDIENCE)
    assert idp.jwks_requests == 3


async def test_a_key_the_provider_rotates_in_is_read_on_its_first_token(
    idp: Idp, keys: Keys, provider: OidcProvider, clock: Clock
) -> None:
    await provider.validate(idp.mint(keys.a), audience=API_AUDIENCE)
    idp.published = [keys.b, keys.a]
    clock.now += 30
    await provider.validate(idp.mint(keys.b), audience=API_AUDIENCE)
    await provider.validate(idp.mint(keys.a), audience=API_AUDIENCE)  # the old key is still published
    assert idp.jwks_requests == 2


async def test_a_key_rotated_in_right_after_a_read_waits_for_the_window(
    idp: Idp, keys: Keys, provider: OidcProvider, clock: Clock
) -> None:
    """The price of the window: a new key's tokens are refused until it ends (refetch_after, 30 s by default)."""
    await provider.validate(idp.mint(keys.a), audience=API_AUDIENCE)
    idp.published = [keys.b, keys.a]
    clock.now += 5
    with pytest.raises(InvalidToken, match="does not publish"):
        await provider.validate(idp.mint(keys.b), audience=API_AUDIENCE)
    clock.now += 25
    await provider.validate(idp.mint(keys.b), audience=API_AUDIENCE)


async def test_a_withdrawn_key_is_refused_once_the_keys_are_read_again(
    idp: Idp, keys: Keys, provider: OidcProvider, clock: Clock
) -> None:
    old = idp.mint(keys.a)
    await provider.validate(old, audience=API_AUDIENCE)
    idp.published = [keys.b]  # key-a withdrawn (leaked, say); nothing signs with an unknown kid meanwhile
    clock.now += 299
    await provider.validate(old, audience=API_AUDIENCE)  # the cached keys are still trusted...
    clock.now += 1
    with pytest.raises(InvalidToken, match="does not publish"):  # ...until keys_max_age
        await provider.validate(old, audience=API_AUDIENCE)
    assert idp.jwks_requests == 2


async def test_a_provider_that_fails_to_answer_is_asked_once_per_window(
    idp: Idp, keys: Keys, provider: OidcProvider, clock: Clock
) -> None:
    await provider.validate(idp.mint(keys.a), audience=API_AUDIENCE)
    idp.jwks_status = 503
    clock.now += 30
    with pytest.raises(ProviderUnavailable):  # an unknown kid: the provider cannot say whether it is genuine
        await provider.validate(idp.mint(keys.forger), audience=API_AUDIENCE)
    for n in range(10):
        with pytest.raises(InvalidToken):
            await provider.validate(idp.mint(keys.forger, header={"kid": f"forged-{n}"}), audience=API_AUDIENCE)
    assert idp.jwks_requests == 2
    # Tokens of the keys it published before are still checked with them.
    await provider.validate(idp.mint(keys.a), audience=API_AUDIENCE)
    # Past keys_max_age the keys are read again; a provider still down leaves the last ones in use.
    clock.now += 300
    await provider.validate(idp.mint(keys.a), audience=API_AUDIENCE)
    assert idp.jwks_requests == 3
    await provider.validate(idp.mint(keys.a), audience=API_AUDIENCE)
    assert idp.jwks_requests == 3  # and not on every token: once per window
    idp.jwks_status = 200
    idp.published = [keys.b]
    clock.now += 30
    with pytest.raises(InvalidToken):
        await provider.validate(idp.mint(keys.a), audience=API_AUDIENCE)
    assert idp.jwks_requests == 4


async def test_keys_of_other_uses_and_algorithms_are_not_used_to_verify(
    idp: Idp, keys: Keys, provider: OidcProvider
) -> None:
    """An encryption key or an HMAC key in the JWKS (Keycloak lists RSA-OAEP ones) verifies nothing."""
    secret = b"0123456789abcdef0123456789abcdef"
    idp.extra_jwks = [
        {**keys.b.as_dict(private=False), "kid": "key-enc", "use": "enc", "alg": "RSA-OAEP"},
        {"kty": "oct", "kid": "key-hmac", "k": b64(secret), "alg": "HS256"},
    ]
    with pytest.raises(InvalidToken, match="does not publish"):
        await provider.validate(idp.mint(keys.b, header={"kid": "key-enc"}), audience=API_AUDIENCE)
    signing_input = f"{segment({'alg': 'HS256', 'kid': 'key-hmac'})}.{segment({'sub': 'x'})}"
    token = f"{signing_input}.{b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"
    with pytest.raises(InvalidToken, match="algorithm"):
        await provider.validate(token, audience=API_AUDIENCE)


async def test_a_discovery_document_that_names_another_issuer_is_not_the_providers(idp: Idp, keys: Keys) -> None:
    idp.discovery_issuer = "http://127.0.0.1:1/realms/evil"
    provider = OidcProvider(idp.issuer)
    try:
        with pytest.raises(ProviderUnavailable, match="names issuer"):
            await provider.validate(idp.mint(keys.a), audience=API_AUDIENCE)
    finally:
        await provider.aclose()


async def test_a_provider_that_does_not_answer_is_unavailable_not_a_bad_token(keys: Keys) -> None:
    provider = OidcProvider("http://127.0.0.1:1/realms/nowhere")
    try:
        token = jwt.encode({"alg": "RS256", "kid": "key-a"}, {"sub": "x"}, keys.a)
        with pytest.raises(ProviderUnavailable):
            await provider.validate(token, audience=API_AUDIENCE)
    finally:
        await provider.aclose()
