"""`python -m services.intake [serve|migrate]`."""

from __future__ import annotations

import argparse
import asyncio
import sys

from services.intake.bootstrap import SERVICE, build_app, migrations
from services.intake.settings import IntakeSettings
from shared.db import migrate
from shared.entry import serve
from shared.logs import configure


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m services.intake", description=__doc__)
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate"])
    args = parser.parse_args()
    settings = IntakeSettings()
    configure(SERVICE, settings.log_level)
    if args.command == "migrate":
        applied = asyncio.run(migrate(settings.database_url, settings.db_schema, migrations()))
        print(
            f"intake: schema '{settings.db_schema}' " + (f"migrated: {', '.join(applied)}" if applied else "up to date")
        )
        return 0
    try:
        app = build_app(settings)
    except ValueError as exc:
        print(f"intake: refusing to start: {exc}", file=sys.stderr)
        return 2
    return serve(app, settings, SERVICE)


if __name__ == "__main__":
    sys.exit(main())
