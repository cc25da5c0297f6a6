"""The district's identity provider as `make up` runs it (Keycloak, realm mvsj): sign-in as a person does it.

Each sign-in is the authorization code flow with PKCE (S256) through Keycloak's own login form, driven
by a real HTTP client: the authorization request, the form's action parsed from the page, the
username and password posted to it, the redirect to the client's registered redirect URI captured
(nothing needs to listen there), the code exchanged with its verifier. Tokens are then checked
against the realm's published keys (JWKS) as a service will check them: signature, issuer, audience,
expiry, nonce, and the claims the services will authorize by (`roles`, `kommune`, `roster_id`).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.errors import BadSignatureError
from joserfc.jwk import KeySet

from shared.settings import CommonSettings

WEB_CLIENT = "mvsj-web"
WEB_SECRET = "dev-mvsj-web-secret"  # development realm only (deploy/keycloak/make_realm.py)
OFFICER_CLIENT = "mvsj-officer"
API_AUDIENCE = "mvsj-api"
CONSOLE_CALLBACK = "http://127.0.0.1:8003/auth/callback"  # notify's console; nothing listens there in this test


@dataclass
class Provider:
    issuer: str
    config: dict[str, Any]
    keys: KeySet


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    issuer = CommonSettings().oidc_issuer_url.rstrip("/")
    url = f"{issuer}/.well-known/openid-configuration"
    try:
        response = httpx.get(url, timeout=5).raise_for_status()
        error = None
    except httpx.HTTPError as exc:
        error = exc
    if error is not None:
        pytest.fail(
            f"the identity provider does not answer at {url} ({error!r}): `make up` starts it"
            " (deploy/local/keycloak.sh; `make status` says whether it runs, its log is .cache/keycloak/logs)",
            pytrace=False,
        )
    config = response.json()
    jwks = httpx.get(config["jwks_uri"], timeout=5).raise_for_status().json()
    yield Provider(issuer=issuer, config=config, keys=KeySet.import_key_set(jwks))


def browser() -> httpx.Client:
    """An HTTP client that keeps cookies as a browser does for http://127.0.0.1.

    Keycloak marks its session cookies Secure even over plain http; browsers count the loopback
    address as a secure context and send them back, Python's cookie jar would not. So the cookies
    Keycloak sets on a loopback address are kept without the flag.
    """
    client = httpx.Client(timeout=10, follow_redirects=False)

    def keep_loopback_cookies(response: httpx.Response) -> None:
        if response.url.host in ("127.0.0.1", "localhost", "::1"):
            for cookie in client.cookies.jar:
                cookie.secure = False

    client.event_hooks["response"] = [keep_loopback_cookies]
    return client


class _LoginForm(HTMLParser):
    """Finds Keycloak's login form (id kc-form-login) and its action URL (unescaped by the parser)."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "form" and found.get("id") == "kc-form-login":
            self.action = found.get("action")


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


@dataclass
class Authorization:
    """What the browser brings back to the redirect URI, and what the client kept to redeem it."""

    code: str
    verifier: str
    nonce: str
    redirect_uri: str
    client: httpx.Client  # holds Keycloak's session cookies


def authorize(
    provider: Provider,
    username: str,
    *,
    client_id: str = WEB_CLIENT,
    redirect_uri: str = CONSOLE_CALLBACK,
    client: httpx.Client | None = None,
) -> Authorization:
    """The browser's part: authorization request, login form, redirect back with a code."""
    verifier, challenge = _pkce()
    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    client = client or browser()
    page = client.get(
        provider.config["authorization_endpoint"],
        params={
            "client_id": client_id,
            "response_type": "code",
            "scope": "openid",
            "redirect_uri": redirect_uri,
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
    )
    assert page.status_code == 200, f"the authorization request was refused: {page.status_code} {page.text[:300]}"
    form = _LoginForm()
    form.feed(page.text)
    assert form.action, f"no login form (kc-form-login) on Keycloak's page: {page.text[:300]}"
    posted = client.post(form.action, data={"username": username, "password": f"dev-{username}", "credentialId": ""})
    assert posted.status_code == 302, (
        f"signing in as {username} did not redirect: {posted.status_code} {posted.text[:300]}"
    )
    location = posted.headers["location"]
    assert location.startswith(redirect_uri + "?"), location
    query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    assert query["state"] == state
    assert query["iss"] == provider.issuer  # RFC 9207: the response names its issuer
    return Authorization(code=query["code"], verifier=verifier, nonce=nonce, redirect_uri=redirect_uri, client=client)


def redeem(
    provider: Provider, grant: Authorization, *, client_id: str = WEB_CLIENT, verifier: str | None = None
) -> httpx.Response:
    """The client's part: the code and its PKCE verifier for tokens (the web client authenticates itself)."""
    data = {
        "grant_type": "authorization_code",
        "code": grant.code,
        "redirect_uri": grant.redirect_uri,
        "code_verifier": verifier or grant.verifier,
        "client_id": client_id,
    }
    auth = (WEB_CLIENT, WEB_SECRET) if client_id == WEB_CLIENT else None
    return httpx.post(provider.config["token_endpoint"], data=data, auth=auth, timeout=10)


def verified(provider: Provider, token: str, *, audience: str, nonce: str | None = None) -> dict[str, Any]:
    """The token's claims after the checks a service makes: signature by a realm key, issuer, audience, time."""
    decoded = jwt.decode(token, provider.keys, algorithms=["RS256"])
    claims: dict[str, Any] = dict(decoded.claims)
    rules: dict[str, Any] = {
        "iss": {"essential": True, "value": provider.issuer},
        "aud": {"essential": True, "value": audience},
        "exp": {"essential": True},
        "sub": {"essential": True},
    }
    if nonce is not None:
        rules["nonce"] = {"essential": True, "value": nonce}
    jwt.JWTClaimsRegistry(leeway=5, **rules).validate(claims)
    return claims


def sign_in(provider: Provider, username: str) -> dict[str, Any]:
    grant = authorize(provider, username)
    response = redeem(provider, grant)
    assert response.status_code == 200, response.text
    tokens = response.json()
    id_claims = verified(provider, tokens["id_token"], audience=WEB_CLIENT, nonce=grant.nonce)
    access_claims = verified(provider, tokens["access_token"], audience=API_AUDIENCE)
    assert access_claims["sub"] == id_claims["sub"]
    return {"id": id_claims, "access": access_claims, "tokens": tokens}


def test_discovery_names_the_setting_as_issuer_and_offers_code_flow_with_s256(provider: Provider) -> None:
    assert provider.config["issuer"] == provider.issuer
    assert "code" in provider.config["response_types_supported"]
    assert "S256" in provider.config["code_challenge_methods_supported"]
    assert "RS256" in provider.config["id_token_signing_alg_values_supported"]
    assert any(key.get("use") == "sig" for key in provider.keys.as_dict()["keys"])


@pytest.mark.parametrize(
    ("username", "roles", "kommune", "roster_id"),
    [
        ("vc-anne", ["vagtchef"], None, "vc-anne"),
        ("lb-roskilde-1", ["lokalbetjent"], ["0265"], "lb-roskilde-1"),
        ("raad-0265", ["raadssekretaer"], ["0265"], None),
        ("kredsraad", ["raadssekretaer"], ["kreds"], None),
        ("ops", ["ops"], None, None),
        ("dpo", ["databeskyttelse"], None, None),
    ],
)
def test_a_person_signs_in_with_code_and_pkce_and_the_tokens_carry_role_kommune_and_roster_id(
    provider: Provider, username: str, roles: list[str], kommune: list[str] | None, roster_id: str | None
) -> None:
    signed = sign_in(provider, username)
    for claims in (signed["id"], signed["access"]):
        assert claims["preferred_username"] == username
        assert sorted(claims["roles"]) == roles
        assert claims.get("kommune") == kommune
        assert claims.get("roster_id") == roster_id
        assert claims["groups"]  # the group names, for people reading a token
    assert signed["id"]["azp"] == WEB_CLIENT
    assert signed["access"]["aud"] == API_AUDIENCE


def test_sub_is_stable_across_sign_ins_and_differs_between_people(provider: Provider) -> None:
    first, again, other = (
        sign_in(provider, "lb-greve-1"),
        sign_in(provider, "lb-greve-1"),
        sign_in(provider, "lb-greve-2"),
    )
    assert first["id"]["sub"] == again["id"]["sub"]
    assert first["id"]["sid"] != again["id"]["sid"]  # two sessions, one person
    assert other["id"]["sub"] != first["id"]["sub"]
    assert (first["id"]["kommune"], first["id"]["roster_id"]) == (["0253"], "lb-greve-1")


def test_the_web_client_accepts_any_port_on_the_loopback_address_for_tests(provider: Provider) -> None:
    """Tests run notify and reporting on ports of their own; the realm registers http://127.0.0.1/* for them."""
    grant = authorize(provider, "raad-0329", redirect_uri="http://127.0.0.1:28003/auth/callback")
    response = redeem(provider, grant)
    assert response.status_code == 200, response.text
    claims = verified(provider, response.json()["id_token"], audience=WEB_CLIENT, nonce=grant.nonce)
    assert (claims["roles"], claims["kommune"]) == (["raadssekretaer"], ["0329"])


def test_a_code_is_redeemed_only_with_its_verifier_and_only_once(provider: Provider) -> None:
    grant = authorize(provider, "vc-bo")
    wrong = redeem(provider, grant, verifier=_pkce()[0])
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    # Keycloak invalidates a code after a failed redemption as after a good one.
    assert redeem(provider, grant).status_code == 400
    grant = authorize(provider, "vc-bo")
    assert redeem(provider, grant).status_code == 200
    assert redeem(provider, grant).status_code == 400


def test_pkce_is_required_and_plain_is_refused(provider: Provider) -> None:
    with httpx.Client(timeout=10, follow_redirects=False) as client:
        base = {"client_id": WEB_CLIENT, "response_type": "code", "scope": "openid", "redirect_uri": CONSOLE_CALLBACK}
        for extra in ({}, {"code_challenge": "x" * 43, "code_challenge_method": "plain"}):
            refused = client.get(provider.config["authorization_endpoint"], params={**base, **extra, "state": "s"})
            # Keycloak sends the error back to the (registered) redirect URI, never shows the login form.
            assert refused.status_code == 302, refused.text[:300]
            query = parse_qs(urlsplit(refused.headers["location"]).query)
            assert query["error"] == ["invalid_request"], query


def test_a_redirect_uri_that_is_not_registered_is_refused(provider: Provider) -> None:
    _, challenge = _pkce()
    refused = (
        "http://localhost:8001/auth/callback",  # localhost: only notify's and reporting's ports
        "http://evil.example/auth/callback",
        "http://127.0.0.1.evil.example/auth/callback",
        "https://127.0.0.1:8003/auth/callback",
    )
    for uri in refused:
        response = httpx.get(
            provider.config["authorization_endpoint"],
            params={
                "client_id": WEB_CLIENT,
                "response_type": "code",
                "scope": "openid",
                "redirect_uri": uri,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            },
            timeout=10,
        )
        assert response.status_code == 400, (uri, response.status_code)


def test_an_officers_own_program_signs_in_on_a_loopback_port_of_its_choosing(provider: Provider) -> None:
    """RFC 8252: the public client registers http://127.0.0.1/*; Keycloak accepts any port on the loopback address."""
    grant = authorize(provider, "lb-lejre-1", client_id=OFFICER_CLIENT, redirect_uri="http://127.0.0.1:53127/callback")
    response = redeem(provider, grant, client_id=OFFICER_CLIENT)
    assert response.status_code == 200, response.text
    access = verified(provider, response.json()["access_token"], audience=API_AUDIENCE)
    assert access["azp"] == OFFICER_CLIENT
    assert (access["roles"], access["kommune"], access["roster_id"]) == (["lokalbetjent"], ["0350"], "lb-lejre-1")


def test_a_token_signed_by_another_key_is_refused(provider: Provider) -> None:
    signed = sign_in(provider, "vc-dan")
    header, payload, signature = signed["tokens"]["access_token"].split(".")
    forged_payload = (
        base64.urlsafe_b64encode(
            base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).replace(b'"vagtchef"', b'"databeskyttelse"')
        )
        .rstrip(b"=")
        .decode()
    )
    with pytest.raises(BadSignatureError):
        verified(provider, f"{header}.{forged_payload}.{signature}", audience=API_AUDIENCE)
