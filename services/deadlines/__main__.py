"""`python -m services.deadlines [serve|migrate|check-rules [FILE]]`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from services.deadlines.adapters.rules_file import load_rules
from services.deadlines.bootstrap import SERVICE, build_app, migrations
from services.deadlines.settings import DeadlinesSettings
from shared.cli import command_line
from shared.datafile import DataFileError


def check_rules(settings: DeadlinesSettings, args: argparse.Namespace) -> int:
    path = Path(args.args[0]) if args.args else settings.rules_file
    try:
        rules = load_rules(path)
    except DataFileError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"{path}: version {rules.version}, {len(rules)} rules OK: {', '.join(rules.ids)}")
    return 0


if __name__ == "__main__":
    sys.exit(
        command_line(
            SERVICE,
            DeadlinesSettings,
            build_app,
            migrations,
            extra={"check-rules": ("check a rules file (default DEADLINE_RULES_FILE) without starting", check_rules)},
        )
    )
