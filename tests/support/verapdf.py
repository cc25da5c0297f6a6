"""veraPDF (Maven Central, fetched once by deploy/local/verapdf.sh into .cache) on a PDF: the PDF/UA-1 check."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_SCRIPT = ROOT / "deploy" / "local" / "verapdf.sh"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _libs() -> Path:
    """The jars' directory; fetched now if `make up` has not yet (idempotent)."""
    libs = Path(
        subprocess.run(["bash", str(_SCRIPT), "libs"], capture_output=True, text=True, check=True).stdout.strip()
    )
    if not (libs / ".complete").is_file():
        subprocess.run(["bash", str(_SCRIPT), "ensure"], check=True, timeout=300)
    return libs


def pdf_ua_failures(pdf: Path) -> list[str]:
    """veraPDF's PDF/UA-1 verdict on the file: nothing when it passes, else the clauses of ISO 14289-1 it fails
    (as 'FAIL 7.1-3'; the rules: https://docs.verapdf.org/validation/pdfua-part1/)."""
    done = subprocess.run(
        # C1 only and the serial collector: a one-file run starts in half the time and takes half the CPU.
        ["java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp", f"{_libs()}/*", "org.verapdf.apps.GreenfieldCliWrapper", "--flavour", "ua1",
         "--format", "text", "--verbose", str(pdf)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    lines = [_ANSI.sub("", line).strip() for line in done.stdout.splitlines()]
    verdict = [line for line in lines if line.startswith(("PASS ", "FAIL "))]
    assert verdict, f"veraPDF gave no verdict (exit {done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    if verdict[0].startswith("PASS "):
        return []
    return [line for line in lines if line.startswith("FAIL ") and line != verdict[0]] or [verdict[0]]
