"""Signs a development user in through the identity provider's own login form, as a browser would.

For the demo (its acknowledgements are made by its users, with their own access tokens) and for
tests: an HTTP client that follows the authorization request to Keycloak's login page, posts the
username and password to the form's action, and stops at the redirect that leaves the provider.
Development realm only: its passwords are `dev-<username>` (deploy/keycloak/make_realm.py).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import httpx

OFFICER_CLIENT = "mvsj-officer"  # the realm's public client for officers' own programs (PKCE, no secret)
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def dev_password(username: str) -> str:
    return f"dev-{username}"


class _LoginForm(HTMLParser):
    """Finds Keycloak's login form (id kc-form-login) and its action URL (unescaped by the parser)."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "form" and found.get("id") == "kc-form-login":
            self.action = found.get("action")


def loopback_client(**kwargs: object) -> httpx.Client:
    """An HTTP client that keeps cookies as a browser does for http://127.0.0.1.

    Keycloak marks its session cookies Secure even over plain http; browsers count the loopback
    address as a secure context and send them back, Python's cookie jar would not. So the cookies
    set on a loopback address are kept without the flag.
    """
    client = httpx.Client(timeout=10, follow_redirects=False, **kwargs)  # type: ignore[arg-type]

    def keep_loopback_cookies(response: httpx.Response) -> None:
        if response.url.host in LOOPBACK:
            for cookie in client.cookies.jar:
                cookie.secure = False

    client.event_hooks["response"] = [keep_loopback_cookies]
    return client


def sign_in(client: httpx.Client, url: str, username: str, password: str | None = None) -> httpx.Response:
    """Follows `url` (a page that sends the browser to sign in, or an authorization request) through the
    provider's login form; answers the first response that is neither the provider's nor a redirect to it,
    without following it (so a redirect to a URI nothing listens on is fine)."""
    response = client.get(url)
    issuer_host = None
    for _ in range(10):
        if response.is_redirect:
            target = str(response.next_request.url) if response.next_request else response.headers["location"]
            if issuer_host is not None and urlsplit(target).netloc != issuer_host:
                return response  # leaving the provider: back to the client
            if issuer_host is None and "/protocol/openid-connect/auth" in target:
                issuer_host = urlsplit(target).netloc
            response = client.get(target)
            continue
        form = _LoginForm()
        form.feed(response.text)
        if form.action is None:
            return response
        issuer_host = urlsplit(form.action).netloc
        response = client.post(
            form.action, data={"username": username, "password": password or dev_password(username), "credentialId": ""}
        )
        if response.status_code == 200:
            raise ValueError(f"the provider did not accept {username}'s password (it showed its form again)")
    raise ValueError("too many redirects while signing in")


def officer_token(issuer: str, username: str, password: str | None = None, *, client_id: str = OFFICER_CLIENT,
                  redirect_uri: str = "http://127.0.0.1:8999/callback") -> dict[str, object]:  # fmt: skip
    """The tokens an officer's own program gets for `username`: authorization code with PKCE, public client."""
    config = httpx.get(f"{issuer.rstrip('/')}/.well-known/openid-configuration", timeout=10).raise_for_status().json()
    verifier = secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    state = secrets.token_urlsafe(16)
    query = httpx.QueryParams({
        "client_id": client_id, "response_type": "code", "scope": "openid", "redirect_uri": redirect_uri,
        "state": state, "code_challenge": challenge, "code_challenge_method": "S256",
    })  # fmt: skip
    with loopback_client() as client:
        back = sign_in(client, f"{config['authorization_endpoint']}?{query}", username, password)
    location = back.headers.get("location", "")
    answer = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    if answer.get("state") != state or "code" not in answer:
        raise ValueError(f"signing in as {username} brought no code back: {location[:200]}")
    tokens: dict[str, object] = httpx.post(config["token_endpoint"], timeout=10, data={
        "grant_type": "authorization_code", "code": answer["code"], "redirect_uri": redirect_uri,
        "client_id": client_id, "code_verifier": verifier,
    }).raise_for_status().json()  # fmt: skip
    return tokens
