"""The pages nobody hopes to see pass axe-core too: sign-in cancelled, too many sign-ins, the
identity provider away, signed out, an ack link refused, a console or council page a user has no access to.

Each page is served to Chromium as the service answers it (status, headers, CSP included: Playwright's
route answers the request with the response's own bytes and headers), then checked with axe-core
(WCAG 2.1 A and AA, best practice). The sign-in pages come from the real routes (shared/websession.py's
router in a small app); the others from the functions and templates the routes use.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import Response
from playwright.async_api import Browser, Route

from services.notify.entrypoints import console
from services.notify.entrypoints.http import DESK_ACK, MOVED_ON, _page
from services.reporting.adapters import renderers
from services.reporting.entrypoints.pages import PageError
from shared.oidc import OidcProvider
from shared.websession import (
    SIGNED_OUT_PATH,
    SignInConfig,
    WebSessions,
    sign_in_router,
    too_many_sign_ins_page,
    unavailable_page,
)
from tests.support.axe import assert_accessible
from tests.support.browser import needs_chromium

pytestmark = needs_chromium
ORIGIN = "http://pages.test"


@dataclass(frozen=True)
class Someone:
    """A signed-in person as the templates read one."""

    name: str = "Rådssekretær Roskilde"
    username: str = "raad-0265"


async def _sign_in_pages() -> dict[str, Response]:
    """The real answers of the sign-in routes: cancelled at the provider, and signed out."""
    config = SignInConfig(client_id="mvsj-web", client_secret="x", public_url=ORIGIN, cookie="c", home="/console")
    sessions = WebSessions(OidcProvider("http://127.0.0.1:9/realms/none"), lambda: None, config, lambda: None)  # type: ignore[arg-type,return-value]
    app = FastAPI()
    app.include_router(sign_in_router(sessions))
    pages: dict[str, Response] = {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ORIGIN) as client:
        for name, path in (
            ("sign-in cancelled", "/auth/callback?error=access_denied"),
            ("signed out", SIGNED_OUT_PATH),
        ):
            answer = await client.get(path)
            pages[name] = Response(answer.content, status_code=answer.status_code, headers=dict(answer.headers))
    return pages


def _pages() -> dict[str, Callable[[], Response]]:
    provider = "http://127.0.0.1:8180"
    nobody = {"signed_in": False, "person": Someone(), "csrf": "t"}
    return {
        "too many sign-ins": lambda: too_many_sign_ins_page({"Retry-After": "30"}),
        "identity provider away": unavailable_page,
        "ack link invalid": lambda: _page("Kvittering", "<p>Linket er ikke gyldigt.</p>", 400),
        "ack link moved on": lambda: _page("Kvittering", f"<p>{MOVED_ON}</p>", 409),
        "ack link of the shared desk": lambda: _page("Kvittering", f"<p>{DESK_ACK}</p>", 400),
        "console, no access": lambda: console.render_page(
            "console.html", provider, 403, error="Din bruger har ikke adgang til konsollen.", **nobody
        ),
        "follow-up list, no access": lambda: console.render_page(
            "opfoelgning.html", provider, 403, error="Din bruger har ikke adgang til opfølgningslisten.", **nobody
        ),
        "council pages, no access": lambda: Response(
            renderers.render(
                "raad.html",
                person=Someone(),
                csrf="t",
                choices=[],
                r=None,
                error=PageError("Ingen adgang til rådsrapporterne", ("Din bruger har ikke adgang.",)),
            ),
            status_code=403,
            media_type="text/html",
        ),
    }


def served(response: Response) -> Callable[[Route], Awaitable[None]]:
    """A route handler answering with `response` as the service sent it (status, headers, body)."""

    async def serve(route: Route) -> None:
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
        await route.fulfill(status=response.status_code, headers=headers, body=bytes(response.body))

    return serve


async def test_every_error_page_passes_axe_core(browser: Browser) -> None:
    pages = {name: make() for name, make in _pages().items()} | await _sign_in_pages()
    context = await browser.new_context()
    page = await context.new_page()
    for name, response in pages.items():
        assert response.status_code >= 400 or name == "signed out", name

        await page.route(f"{ORIGIN}/page", served(response))
        answer = await page.goto(f"{ORIGIN}/page")
        assert answer is not None and answer.status == response.status_code, name
        assert await page.locator("h1").count() == 1, f"{name}: one heading says what happened"
        await assert_accessible(page, name)
        await page.unroute(f"{ORIGIN}/page")
    await context.close()


@pytest.mark.parametrize("name", ["too many sign-ins"])
def test_the_429_page_says_when_to_try_again(name: str) -> None:
    response = _pages()[name]()
    assert response.status_code == 429 and response.headers["retry-after"] == "30"
    assert "Vent et øjeblik" in bytes(response.body).decode()
