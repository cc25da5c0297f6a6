"""`python -m services.deadlines [serve|migrate|check-rules [FILE]]`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from services.deadlines.bootstrap import SERVICE, build_app, migrations
from services.deadlines.domain.rules import RulesError, load_rules
from services.deadlines.settings import DeadlinesSettings
from shared.db import migrate
from shared.entry import serve
from shared.logs import configure


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m services.deadlines", description=__doc__)
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate", "check-rules"])
    parser.add_argument("file", nargs="?", type=Path, help="check-rules: the rules file (default: DEADLINE_RULES_FILE)")
    args = parser.parse_args()
    settings = DeadlinesSettings()
    configure(SERVICE, settings.log_level)
    if args.command == "check-rules":
        path = args.file or settings.rules_file
        try:
            rules = load_rules(path)
        except RulesError as exc:
            print(exc, file=sys.stderr)
            return 1
        print(f"{path}: version {rules.version}, {len(rules)} rules OK: {', '.join(rules.ids)}")
        return 0
    if args.command == "migrate":
        applied = asyncio.run(migrate(settings.database_url, settings.db_schema, migrations()))
        print(
            f"deadlines: schema '{settings.db_schema}' "
            + (f"migrated: {', '.join(applied)}" if applied else "up to date")
        )
        return 0
    try:
        app = build_app(settings)
    except RulesError as exc:
        print(f"deadlines: refusing to start, the rules file is invalid:\n{exc}", file=sys.stderr)
        return 2
    return serve(app, settings, SERVICE)


if __name__ == "__main__":
    sys.exit(main())
