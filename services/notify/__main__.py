"""`python -m services.notify [serve|migrate|check-files [ROSTER POLICY]]`."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from services.notify.adapters.policy_file import load_policy
from services.notify.adapters.roster_file import load_roster
from services.notify.bootstrap import SERVICE, build_app, migrations
from services.notify.domain.roster import describe_gaps
from services.notify.settings import NotifySettings
from shared.cli import command_line
from shared.datafile import DataFileError


def check_files(settings: NotifySettings, args: argparse.Namespace) -> int:
    roster_path = Path(args.args[0]) if args.args else settings.roster_file
    policy_path = Path(args.args[1]) if len(args.args) > 1 else settings.alert_policy_file
    try:
        roster = load_roster(roster_path)
        policy = load_policy(policy_path)
    except DataFileError as exc:
        print(exc, file=sys.stderr)
        return 1
    now = datetime.now(UTC)
    gaps = describe_gaps(roster.gaps(now, now + timedelta(days=settings.rota_check_days)), roster.tz)
    print(f"{roster_path}: version {roster.version}, {len(roster.duty_officers)} vagtchefer OK")
    print(f"{policy_path}: version {policy.version}, {len(policy.rules)} rules OK")
    for gap in gaps:
        print(f"rota gap (the vagtcentral takes these alerts): {gap}")
    return 0


if __name__ == "__main__":
    sys.exit(
        command_line(
            SERVICE,
            NotifySettings,
            build_app,
            migrations,
            extra={"check-files": ("check the roster and policy files without starting", check_files)},
        )
    )
