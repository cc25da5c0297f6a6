"""`python -m services.intake [serve|migrate]`."""

from __future__ import annotations

import sys

from services.intake.bootstrap import SERVICE, build_app, migrations
from services.intake.settings import IntakeSettings
from shared.cli import command_line

if __name__ == "__main__":
    sys.exit(command_line(SERVICE, IntakeSettings, build_app, migrations))
