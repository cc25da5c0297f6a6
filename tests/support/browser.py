"""Debian's headless Chromium for the tests of pages (Playwright), skipped where it is missing, except in CI."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

CHROMIUM = "/usr/bin/chromium"

# Skipped on a developer's machine without it; in CI (which installs it) a missing browser fails instead.
needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"),
    reason="needs Debian's chromium at /usr/bin/chromium: apt-get install -y chromium",
)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield chromium
        finally:
            await chromium.close()


async def danish_page(browser: Browser, **options: object) -> tuple[BrowserContext, Page, list[str]]:
    """A page as a Danish officer's browser shows it (da-DK, Copenhagen time, 1280x900 unless `options`
    say otherwise), and the list its script errors go to: a test ends by asserting it is empty."""
    settings: dict[str, object] = {"locale": "da-DK", "timezone_id": "Europe/Copenhagen",
                                   "viewport": {"width": 1280, "height": 900}} | options  # fmt: skip
    context = await browser.new_context(**settings)  # type: ignore[arg-type]
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return context, page, errors
