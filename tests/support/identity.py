"""The development identity provider in tests: its issuer, and users a test makes, disables and removes.

Tests share the realm `mvsj` that `make up` imports; a test that changes a user makes its own
(`temporary_user`, a random name) and removes it after, so no other test sees the change.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx

from shared.settings import CommonSettings

ADMIN = ("admin", "dev-admin")  # the development server's bootstrap admin (deploy/local/keycloak.sh)


def issuer() -> str:
    return CommonSettings().oidc_issuer_url.rstrip("/")


def _admin_base() -> tuple[str, str]:
    """(the server's base URL, the realm's name) from the issuer URL <base>/realms/<realm>."""
    base, _, realm = issuer().rpartition("/realms/")
    return base, realm


def admin_client() -> httpx.Client:
    base, _ = _admin_base()
    token = (
        httpx.post(
            f"{base}/realms/master/protocol/openid-connect/token",
            data={"grant_type": "password", "client_id": "admin-cli", "username": ADMIN[0], "password": ADMIN[1]},
            timeout=10,
        )
        .raise_for_status()
        .json()["access_token"]
    )
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10)


@dataclass
class TemporaryUser:
    id: str
    username: str
    password: str
    name: str

    def set_enabled(self, enabled: bool) -> None:
        _, realm = _admin_base()
        with admin_client() as admin:
            admin.put(f"/admin/realms/{realm}/users/{self.id}", json={"enabled": enabled}).raise_for_status()


@contextlib.contextmanager
def temporary_user(
    group: str, *, kommune_group: str | None = None, roster_id: str | None = None
) -> Iterator[TemporaryUser]:
    """A user of the realm in `group` (e.g. "Vagtchefer"), removed at the end."""
    _, realm = _admin_base()
    username = f"test-{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(16)
    groups = [f"/{group}"] + ([f"/{kommune_group}"] if kommune_group else [])
    with admin_client() as admin:
        created = admin.post(f"/admin/realms/{realm}/users", json={
            "username": username, "enabled": True, "firstName": "Test", "lastName": username, "email":
            f"{username}@politi.example", "emailVerified": True, "groups": groups,
            "attributes": {"roster_id": [roster_id]} if roster_id else {},
            "credentials": [{"type": "password", "value": password, "temporary": False}],
        })  # fmt: skip
        created.raise_for_status()
        user_id = created.headers["location"].rsplit("/", 1)[1]
    try:
        yield TemporaryUser(id=user_id, username=username, password=password, name=f"Test {username}")
    finally:
        with admin_client() as admin:
            admin.delete(f"/admin/realms/{realm}/users/{user_id}")


_TOKENS: dict[str, tuple[str, float]] = {}


def access_token(username: str) -> str:
    """A development user's access token, got as the officer's own program gets it (demo/identity.py).

    Kept for reuse while it has over a minute left (the realm's tokens live five minutes), so a
    test module signs each user in once, and a long session still never sends an expired one.
    """
    from demo.identity import officer_token

    token, fetched = _TOKENS.get(username, ("", 0.0))
    if not token or time.monotonic() - fetched > 240:
        token = str(officer_token(issuer(), username)["access_token"])
        _TOKENS[username] = (token, time.monotonic())
    return token


def bearer(username: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token(username)}"}
