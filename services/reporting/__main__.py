"""`python -m services.reporting [serve|migrate|rebuild|council-report --scope S --period P --out FILE]`."""

from __future__ import annotations

import sys

from services.reporting.bootstrap import SERVICE, build_app, migrations
from services.reporting.entrypoints.cli import council_report_command, rebuild_command
from services.reporting.settings import ReportingSettings
from shared.cli import command_line

if __name__ == "__main__":
    sys.exit(
        command_line(
            SERVICE,
            ReportingSettings,
            build_app,
            migrations,
            extra={
                "rebuild": ("read the topics from offset 0 into a fresh schema, then swap it in", rebuild_command),
                "council-report": (
                    "write a council report: --scope kreds --period 2026-Q1 --out r.pdf",
                    council_report_command,
                ),
            },
        )
    )
