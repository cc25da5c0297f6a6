"""shared/oidc.py against the real identity provider (issue 16): Keycloak as `make up` runs it.

Real tokens from the realm `mvsj` (signed in through Keycloak's own login form, code + PKCE: the
helpers of test_oidc_provider.py) are validated by OidcProvider and name the right Person; the same
tokens are refused for another audience, by a provider configured with another realm's issuer, past
their expiry, tampered with, and re-signed with a key made here under the realm's real key id.

Key rotation is followed in a realm of this test's own (`test-oidc-<random>`: a copy of
deploy/keycloak/realm-mvsj.json with two of its users, made and deleted through the admin REST API;
the realm `mvsj`, which other tests and people use, is never changed): a new RSA key provider of
higher priority signs the next token under a new kid, which the same OidcProvider instance accepts
(it reads the JWKS again on the unknown kid); once the old key is disabled, a token it signed is
refused as soon as the keys are read again. The key cache's clock is moved instead of waited out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from shared.oidc import API_AUDIENCE, InvalidToken, OidcProvider
from shared.settings import CommonSettings
from tests.integration.identity.test_oidc_provider import WEB_CLIENT, Provider, authorize, redeem

REALM_FILE = Path(__file__).resolve().parents[3] / "deploy" / "keycloak" / "realm-mvsj.json"
KEY_PROVIDER = "org.keycloak.keys.KeyProvider"


def discover(issuer: str) -> Provider:
    try:
        config = httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=5).raise_for_status().json()
        jwks = httpx.get(config["jwks_uri"], timeout=5).raise_for_status().json()
    except httpx.HTTPError as exc:
        pytest.fail(
            f"the identity provider does not answer at {issuer} ({exc!r}): `make up` starts it"
            " (deploy/local/keycloak.sh; `make status` says whether it runs)",
            pytrace=False,
        )
    return Provider(issuer=issuer, config=config, keys=KeySet.import_key_set(jwks))


def tokens(provider: Provider, username: str) -> dict[str, Any]:
    """A person's tokens from the web client, signed in as a browser does; with the nonce it sent."""
    grant = authorize(provider, username)
    response = redeem(provider, grant)
    assert response.status_code == 200, response.text
    return {**response.json(), "nonce": grant.nonce}


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    return json.loads(unb64(header)), json.loads(unb64(payload)), signature


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Clock:
    """The key cache's clock (refetch_after, keys_max_age), moved by the tests instead of waited out."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingClient(httpx.AsyncClient):
    """The provider's HTTP client, counting its JWKS reads."""

    def __init__(self) -> None:
        super().__init__(timeout=10.0, event_hooks={"request": [self._count]})
        self.jwks_reads = 0

    async def _count(self, request: httpx.Request) -> None:
        if request.url.path.endswith("/protocol/openid-connect/certs"):
            self.jwks_reads += 1


# ---------------------------------------------------------------------------------------------------
# The realm mvsj: real tokens, the Person they name, and the same tokens refused
# ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mvsj() -> Provider:
    return discover(CommonSettings().oidc_issuer_url.rstrip("/"))


@pytest.fixture(scope="module")
def anne(mvsj: Provider) -> dict[str, Any]:
    return tokens(mvsj, "vc-anne")


@pytest.fixture
async def service(mvsj: Provider) -> AsyncIterator[OidcProvider]:
    """OidcProvider as a service makes it: the issuer from the settings, nothing else given."""
    provider = OidcProvider(mvsj.issuer)
    yield provider
    await provider.aclose()


@dataclass(frozen=True)
class Expected:
    username: str
    roles: frozenset[str]
    kommune: str | None
    roster_id: str | None
    sees: tuple[str, ...]  # kommuner whose alerts the person sees
    sees_not: tuple[str, ...]


# The realm's codes (deploy/keycloak/realm-mvsj.json; shared/data/kommuner.yaml): Greve 0253, Roskilde 0265.
PEOPLE = [
    Expected("vc-anne", frozenset({"vagtchef"}), None, "vc-anne", ("0253", "0265", "0350"), ()),
    Expected("lb-greve-1", frozenset({"lokalbetjent"}), "0253", "lb-greve-1", ("0253",), ("0265", "0350")),
    Expected("lb-roskilde-1", frozenset({"lokalbetjent"}), "0265", "lb-roskilde-1", ("0265",), ("0253",)),
    Expected("raad-0253", frozenset({"raadssekretaer"}), "0253", None, (), ("0253", "0265")),
    Expected("kredsraad", frozenset({"raadssekretaer"}), "kreds", None, (), ("0253",)),
]


def test_the_realm_has_the_kommune_codes_this_test_expects() -> None:
    realm = json.loads(REALM_FILE.read_text(encoding="utf-8"))
    codes = {
        group["name"]: group["attributes"]["kommune"][0]
        for group in next(g for g in realm["groups"] if g["name"] == "Kommuner")["subGroups"]
    }
    assert (codes["Greve"], codes["Roskilde"], codes["Lejre"]) == ("0253", "0265", "0350")


@pytest.mark.parametrize("expected", PEOPLE, ids=lambda e: e.username)
async def test_a_real_access_token_validates_and_names_the_right_person(
    mvsj: Provider, service: OidcProvider, expected: Expected
) -> None:
    signed = tokens(mvsj, expected.username)
    person = await service.person(signed["access_token"])
    assert person.username == expected.username
    assert person.roles == expected.roles
    assert (person.kommune, person.roster_id) == (expected.kommune, expected.roster_id)
    assert person.id == (expected.roster_id or person.subject)
    assert person.subject == parts(signed["access_token"])[1]["sub"]
    assert all(person.sees_kommune(k) for k in expected.sees)
    assert not any(person.sees_kommune(k) for k in expected.sees_not)
    # The ID token is the web client's, with the nonce of its sign-in.
    id_claims = await service.validate(signed["id_token"], audience=WEB_CLIENT, nonce=signed["nonce"])
    assert id_claims["sub"] == person.subject


async def test_the_real_token_is_refused_for_another_audience(anne: dict[str, Any], service: OidcProvider) -> None:
    for audience in (WEB_CLIENT, "account", "mvsj-officer"):
        with pytest.raises(InvalidToken, match="audience"):
            await service.validate(anne["access_token"], audience=audience)
    # An ID token is the web client's, not a bearer token for the API.
    with pytest.raises(InvalidToken, match="audience"):
        await service.person(anne["id_token"])


async def test_the_real_id_token_is_refused_with_another_sign_ins_nonce(
    anne: dict[str, Any], service: OidcProvider
) -> None:
    with pytest.raises(InvalidToken, match="nonce"):
        await service.validate(anne["id_token"], audience=WEB_CLIENT, nonce="another-sign-in")


async def test_the_real_token_is_refused_once_expired(mvsj: Provider, anne: dict[str, Any]) -> None:
    exp = parts(anne["access_token"])[1]["exp"]
    assert exp - time.time() <= 300  # the realm's access tokens last five minutes
    just_before = OidcProvider(mvsj.issuer, now=lambda: exp + 29)  # within the 30 s leeway
    past = OidcProvider(mvsj.issuer, now=lambda: exp + 31)
    try:
        await just_before.validate(anne["access_token"], audience=API_AUDIENCE)
        with pytest.raises(InvalidToken, match="ExpiredTokenError"):
            await past.validate(anne["access_token"], audience=API_AUDIENCE)
    finally:
        await just_before.aclose()
        await past.aclose()


async def test_the_real_token_is_refused_tampered(anne: dict[str, Any], service: OidcProvider) -> None:
    token = anne["access_token"]
    await service.validate(token, audience=API_AUDIENCE)
    header, payload, signature = token.split(".")
    # One character of the payload flipped (in the middle, where every bit counts).
    middle = len(payload) // 2
    flipped = payload[:middle] + ("A" if payload[middle] != "A" else "B") + payload[middle + 1 :]
    # A role added: the payload still parses, only the signature tells.
    claims = json.loads(unb64(payload))
    promoted = b64(json.dumps({**claims, "roles": ["vagtchef", "databeskyttelse"]}).encode())
    # The signature's middle byte changed.
    raw = bytearray(unb64(signature))
    raw[len(raw) // 2] ^= 0x01
    for forged in (
        f"{header}.{flipped}.{signature}",
        f"{header}.{promoted}.{signature}",
        f"{header}.{payload}.{b64(bytes(raw))}",
    ):
        with pytest.raises(InvalidToken, match="signature does not verify"):
            await service.validate(forged, audience=API_AUDIENCE)


async def test_the_real_claims_re_signed_with_a_key_made_here_under_the_real_kid_are_refused(
    mvsj: Provider, anne: dict[str, Any], service: OidcProvider
) -> None:
    header, claims, _ = parts(anne["access_token"])
    assert header["kid"] in {key.kid for key in mvsj.keys.keys}
    local = RSAKey.generate_key(2048)
    forged = jwt.encode({"alg": "RS256", "kid": header["kid"], "typ": "JWT"}, claims, local)
    with pytest.raises(InvalidToken, match="signature does not verify"):
        await service.validate(forged, audience=API_AUDIENCE)
    # Nor with the realm's public key as an HMAC secret (algorithm confusion), under the same kid.
    public = mvsj.keys.get_by_kid(header["kid"])
    assert isinstance(public, RSAKey)
    signing_input = (
        f"{b64(json.dumps({'alg': 'HS256', 'kid': header['kid']}).encode())}.{anne['access_token'].split('.')[1]}"
    )
    mac = hmac.new(public.as_pem(private=False), signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(InvalidToken, match="algorithm 'HS256'"):
        await service.validate(f"{signing_input}.{b64(mac)}", audience=API_AUDIENCE)


# ---------------------------------------------------------------------------------------------------
# A realm of this test's own: another issuer, and key rotation
# ---------------------------------------------------------------------------------------------------


class Admin:
    """Keycloak's admin REST API as the master realm's bootstrap admin (development only: admin / dev-admin)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = httpx.Client(base_url=base, timeout=30)
        self._token = ""
        self._until = 0.0

    def _auth(self) -> dict[str, str]:
        if time.monotonic() >= self._until:  # master's admin tokens last 60 s: a new one when near its end
            response = self.http.post(
                "/realms/master/protocol/openid-connect/token",
                data={"grant_type": "password", "client_id": "admin-cli", "username": "admin", "password": "dev-admin"},
            )
            assert response.status_code == 200, f"the admin API refused the development admin: {response.text[:300]}"
            self._token = response.json()["access_token"]
            self._until = time.monotonic() + response.json()["expires_in"] - 15
        return {"Authorization": f"Bearer {self._token}"}

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.http.request(method, f"/admin/realms{path}", headers=self._auth(), **kwargs)
        assert response.is_success, f"{method} {path}: {response.status_code} {response.text[:300]}"
        return response

    def close(self) -> None:
        self.http.close()


@dataclass
class TempRealm:
    name: str
    admin: Admin
    provider: Provider

    def rsa_keys(self) -> list[dict[str, Any]]:
        """The realm's keys as the admin API lists them (kid, providerId: the component, status, priority)."""
        listed: list[dict[str, Any]] = self.admin.request("GET", f"/{self.name}/keys").json()["keys"]
        return [k for k in listed if k.get("algorithm") == "RS256"]

    def published_kids(self) -> set[str]:
        jwks = httpx.get(self.provider.config["jwks_uri"], timeout=10).raise_for_status().json()
        return {k["kid"] for k in jwks["keys"] if k.get("use") == "sig"}


@pytest.fixture(scope="module")
def temp_realm(mvsj: Provider) -> Iterator[TempRealm]:
    base = mvsj.issuer.split("/realms/")[0]
    admin = Admin(base)
    name = f"test-oidc-{secrets.token_hex(4)}"
    realm = json.loads(REALM_FILE.read_text(encoding="utf-8"))
    realm["realm"] = name
    realm["displayName"] = f"{name} (test_token_validation.py; deleted at its end)"
    realm["users"] = [u for u in realm["users"] if u["username"] in ("vc-anne", "lb-greve-1")]
    admin.request("POST", "", json=realm)
    try:
        yield TempRealm(name=name, admin=admin, provider=discover(f"{base}/realms/{name}"))
    finally:
        admin.request("DELETE", f"/{name}")
        admin.close()


async def test_a_provider_configured_with_another_realms_issuer_refuses_the_token(
    anne: dict[str, Any], temp_realm: TempRealm
) -> None:
    theirs = tokens(temp_realm.provider, "vc-anne")["access_token"]
    other = OidcProvider(temp_realm.provider.issuer)
    district = OidcProvider(CommonSettings().oidc_issuer_url)
    try:
        with pytest.raises(InvalidToken):
            await other.validate(anne["access_token"], audience=API_AUDIENCE)
        await other.validate(theirs, audience=API_AUDIENCE)  # its own realm's token is good there
        # And the other way round: the other realm's genuine token is refused by the district's services.
        with pytest.raises(InvalidToken):
            await district.validate(theirs, audience=API_AUDIENCE)
    finally:
        await other.aclose()
        await district.aclose()


async def test_key_rotation_is_followed_by_the_same_provider_and_a_disabled_key_is_refused(
    temp_realm: TempRealm,
) -> None:
    realm = temp_realm
    clock = Clock()
    http = CountingClient()
    provider = OidcProvider(realm.provider.issuer, http=http, clock=clock)  # refetch_after 30 s, keys_max_age 300 s
    try:
        # A token of the realm's first key; the provider reads the keys once and keeps them.
        first = tokens(realm.provider, "lb-greve-1")["access_token"]
        old_kid = parts(first)[0]["kid"]
        assert (await provider.person(first)).kommune == "0253"
        assert http.jwks_reads == 1

        # A new RSA key of higher priority: Keycloak signs from now on with it.
        realm_id = realm.admin.request("GET", f"/{realm.name}").json()["id"]
        realm.admin.request(
            "POST",
            f"/{realm.name}/components",
            json={
                "name": "rsa-rotated",
                "providerId": "rsa-generated",
                "providerType": KEY_PROVIDER,
                "parentId": realm_id,
                "config": {
                    "priority": ["200"],
                    "keySize": ["2048"],
                    "algorithm": ["RS256"],
                    "enabled": ["true"],
                    "active": ["true"],
                },
            },
        )
        second = tokens(realm.provider, "lb-greve-1")["access_token"]
        new_kid = parts(second)[0]["kid"]
        assert new_kid != old_kid
        assert {old_kid, new_kid} <= realm.published_kids()

        # The same provider instance: the unknown kid makes it read the keys again (past the refetch window).
        clock.now += 30
        person = await provider.person(second)
        assert (person.username, person.kommune, person.roster_id) == ("lb-greve-1", "0253", "lb-greve-1")
        assert http.jwks_reads == 2
        await provider.person(first)  # the old key is still published: its tokens are still good
        assert http.jwks_reads == 2

        # The old key disabled: Keycloak no longer publishes it.
        old = next(k for k in realm.rsa_keys() if k["kid"] == old_kid)
        component = realm.admin.request("GET", f"/{realm.name}/components/{old['providerId']}").json()
        component["config"]["enabled"] = ["false"]
        realm.admin.request("PUT", f"/{realm.name}/components/{old['providerId']}", json=component)
        assert old_kid not in realm.published_kids()
        assert new_kid in realm.published_kids()

        # Until the keys are read again the provider still knows the old key; once they are
        # (keys_max_age, or an unknown kid past the window), its tokens are refused.
        await provider.person(first)
        clock.now += 300
        with pytest.raises(InvalidToken, match="does not publish"):
            await provider.person(first)
        assert http.jwks_reads == 3
        assert (await provider.person(second)).username == "lb-greve-1"
        # A provider started now refuses it at once.
        fresh = OidcProvider(realm.provider.issuer)
        try:
            with pytest.raises(InvalidToken, match="does not publish"):
                await fresh.person(first)
            await fresh.person(second)
        finally:
            await fresh.aclose()
    finally:
        await provider.aclose()
        await http.aclose()
