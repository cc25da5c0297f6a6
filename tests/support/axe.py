"""axe-core (npm, fetched once by deploy/local/axe.sh into .cache) on a Playwright page: WCAG 2.1 A, AA, best practice.

The script goes in by `page.evaluate`, which the DevTools protocol runs outside the page's CSP (the pages
allow no inline script, so `add_script_tag` would be refused): the page is checked as it is served, in the
test's own context, with no CSP bypass that could hide a fault elsewhere in the test.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

from playwright.async_api import Page

ROOT = Path(__file__).resolve().parents[2]
_SCRIPT = ROOT / "deploy" / "local" / "axe.sh"
WCAG21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
# axe's own best practices beside (landmarks, heading order): what axe.run checks by default, as the issue asks.
TAGS = [*WCAG21_AA, "best-practice"]


def axe_source() -> str:
    """axe.min.js of the version deploy/local/axe.sh pins; fetched now if `make up` has not yet (idempotent)."""
    path = Path(
        subprocess.run(["bash", str(_SCRIPT), "path"], capture_output=True, text=True, check=True).stdout.strip()
    )
    if not path.is_file():
        subprocess.run(["bash", str(_SCRIPT), "ensure"], check=True, timeout=120)
    return path.read_text(encoding="utf-8")


def describe(violations: list[dict[str, Any]]) -> str:
    """A violation per paragraph: rule, impact, what it asks and where, with axe's own summary of the failure."""
    lines: list[str] = []
    for v in violations:
        lines.append(f"{v['id']} ({v.get('impact')}): {v['help']} <{v['helpUrl']}>")
        for node in v["nodes"][:5]:
            summary = re.sub(r"\s+", " ", node.get("failureSummary") or "").strip()
            lines.append(f"  at {' '.join(map(str, node['target']))}: {summary}")
            lines.append(f"    {node['html'][:200]}")
        if len(v["nodes"]) > 5:
            lines.append(f"  ... and {len(v['nodes']) - 5} more")
    return "\n".join(lines)


async def axe_violations(page: Page, tags: list[str] | None = None) -> list[dict[str, Any]]:
    """axe-core's violations on the page as it is now (WCAG 2.1 A and AA and best practice unless `tags` says)."""
    if not await page.evaluate("() => typeof window.axe === 'object'"):
        await page.evaluate(axe_source() + "\n;void 0")
    result: dict[str, Any] = await page.evaluate(
        "async (tags) => await axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})",
        tags or TAGS,
    )
    violations: list[dict[str, Any]] = result["violations"]
    return violations


async def assert_accessible(page: Page, what: str) -> None:
    """No axe-core violation (WCAG 2.1 A/AA, best practice) on the page; else every one, readably."""
    violations = await axe_violations(page)
    assert not violations, f"axe-core on {what} ({page.url}):\n{describe(violations)}"
