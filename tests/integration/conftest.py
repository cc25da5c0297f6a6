"""Fixtures for every folder of integration tests: Debian's headless Chromium (tests/support/browser.py)."""

from __future__ import annotations

from tests.support.browser import browser

__all__ = ["browser"]
