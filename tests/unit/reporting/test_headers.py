"""Security headers on reporting's HTML answers (shared/http.py PageHeaders): the council report as an HTML document
admits its own style by hash and nothing else; answers that are not HTML are left as they are."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime

import httpx
import pytest

from services.reporting import handlers
from services.reporting.bootstrap import build_app
from services.reporting.settings import ReportingSettings
from shared.clock import ManualClock
from tests.support.quarter import district_quarter
from tests.unit.reporting.fakes import FakeReadModel

pytestmark = pytest.mark.unit

COUNCIL = {"Authorization": "Bearer dev-council-key"}


def policy(answer: httpx.Response) -> dict[str, str]:
    """The Content-Security-Policy as {directive: its sources}."""
    directives = (part.strip() for part in answer.headers["content-security-policy"].split(";"))
    return {name: rest for name, _, rest in (d.partition(" ") for d in directives)}


async def test_the_html_report_admits_its_own_style_by_hash_and_json_is_untouched() -> None:
    model = FakeReadModel()
    for event in district_quarter().events:
        await handlers.handle(model, event.meta, event.payload())
    app = build_app(ReportingSettings(environment="development"), clock=ManualClock(datetime(2026, 4, 2, tzinfo=UTC)))
    app.state.reports = model
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://reporting") as client:
        document = await client.get("/v1/council-reports/kreds/2026-Q1.html", headers=COUNCIL)
        as_json = await client.get("/v1/council-reports/kreds/2026-Q1.json", headers=COUNCIL)
        docs = await client.get("/docs")
    assert document.status_code == 200 and "83,3 % (10 af 12)" in document.text
    (style,) = re.findall(r"<style>(.*?)</style>", document.text, flags=re.S)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert policy(document) == {
        "default-src": "'none'", "style-src": f"'sha256-{digest}'", "img-src": "data:", "form-action": "'none'",
        "frame-ancestors": "'none'", "base-uri": "'none'",
    }  # fmt: skip
    assert "<script" not in document.text and " style=" not in document.text
    headers = document.headers
    assert (headers["x-content-type-options"], headers["x-frame-options"], headers["referrer-policy"]) == (
        "nosniff", "DENY", "same-origin")  # fmt: skip
    assert "content-security-policy" not in as_json.headers and "x-frame-options" not in as_json.headers
    # FastAPI's Swagger page (ops port only) runs a CDN's scripts: it may not be framed, and nothing more.
    assert docs.status_code == 200 and docs.headers["content-security-policy"] == "frame-ancestors 'none'"
