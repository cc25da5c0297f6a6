"""A service's command line (`python -m services.<name> [serve|migrate|...]`) and its uvicorn run."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

import uvicorn
from fastapi import FastAPI

from shared.db import Migration, migrate
from shared.logs import configure
from shared.runtime import NotMigrated
from shared.settings import ServiceSettings

S = TypeVar("S", bound=ServiceSettings)
# An extra command: (help text, function of the settings and parsed arguments returning an exit code).
Command = tuple[str, Callable[[S, argparse.Namespace], int]]


def serve(app: FastAPI, settings: ServiceSettings, service: str) -> int:
    logging.getLogger(__name__).info("%s listening on http://%s:%s", service, settings.host, settings.port)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,  # keep shared.logs' format
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=20,
    )
    try:
        uvicorn.Server(config).run()
    except KeyboardInterrupt:
        return 0  # Ctrl-C: uvicorn has already shut down gracefully and re-raised the signal
    except NotMigrated as exc:
        print(f"{service}: {exc}", file=sys.stderr)
        return 3
    return 0


def command_line(
    service: str,
    settings_type: type[S],
    build_app: Callable[[S], FastAPI],
    migrations: Callable[[], Sequence[Migration]],
    *,
    extra: dict[str, Command[S]] | None = None,
    argv: Sequence[str] | None = None,
) -> int:
    """serve (default) | migrate | the service's extra commands; a bad configuration exits 2 with the reason."""
    extra = extra or {}
    parser = argparse.ArgumentParser(prog=f"python -m services.{service}")
    parser.add_argument(
        "command",
        nargs="?",
        default="serve",
        choices=["serve", "migrate", *extra],
        help="; ".join(
            [
                "serve: run the HTTP API and background work",
                "migrate: apply this service's SQL migrations",
                *(f"{name}: {text}" for name, (text, _) in extra.items()),
            ]
        ),
    )
    # REMAINDER, so an extra command can take options of its own (`council-report --scope kreds`).
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments and options of an extra command")
    args = parser.parse_args(argv)
    if args.command in ("serve", "migrate") and args.args:
        parser.error(f"{args.command} takes no arguments: {' '.join(args.args)}")
    settings = settings_type()
    configure(service, settings.log_level)
    if args.command in extra:
        return extra[args.command][1](settings, args)
    if args.command == "migrate":
        applied = asyncio.run(migrate(settings.database_url, settings.db_schema, migrations()))
        done = f"migrated: {', '.join(applied)}" if applied else "up to date"
        print(f"{service}: schema '{settings.db_schema}' {done}")
        return 0
    try:
        app = build_app(settings)
    except ValueError as exc:  # bad key file, bad rules file, production checks: say why, do not start
        print(f"{service}: refusing to start: {exc}", file=sys.stderr)
        return 2
    return serve(app, settings, service)
