"""A service's command line (`python -m services.<name> [serve|migrate|dlq|...]`) and its uvicorn run.

`serve` runs one uvicorn server on two ports: the public API port and the ops port
(`<SERVICE>_OPS_PORT`: /metrics, /asyncapi.json, the OpenAPI pages, and /healthz, /readyz as on
the public port); which path goes where is `shared.http.OpsPort`. Every connection on either
port has a deadline for its request headers and one for its body, and idle keep-alive
connections are closed, so a slow or silent client cannot hold a connection for ever.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import h11
import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from shared import tracing
from shared.db import Migration, migrate
from shared.dlq_tool import dlq_command
from shared.http import OpsPort
from shared.logs import configure
from shared.metrics import HTTP_READ_TIMEOUTS
from shared.runtime import NotMigrated
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)

S = TypeVar("S", bound=ServiceSettings)
# An extra command: (help text, function of the settings and parsed arguments returning an exit code).
Command = tuple[str, Callable[[S, argparse.Namespace], int]]


class ReadDeadlines(H11Protocol):
    """uvicorn's h11 protocol with deadlines for reading a request, which uvicorn lacks.

    uvicorn closes an idle keep-alive connection, but a client that sends half its headers, or a
    body shorter than its Content-Length, is waited for without end. Here a connection gets
    `header_timeout` from its first byte (or from connecting) to the end of the request's headers,
    then `body_timeout` for the whole body. A deadline is set once per phase and never pushed back
    by a trickle of bytes, so sending one byte a second does not keep a connection open either.
    """

    service = ""
    header_timeout = 10.0
    body_timeout = 30.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._phase: str | None = None
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        super().connection_lost(exc)

    def _watch(self) -> None:
        """Arms the deadline of the phase the client is in: headers, body, or none (it waits for us)."""
        state = self.conn.their_state
        phase: str | None = None
        if self.transport.is_closing():
            phase = None
        elif state is h11.IDLE and self.timeout_keep_alive_task is None:
            phase = "headers"  # connected, or began the next request: uvicorn's keep-alive timer is off
        elif state is h11.SEND_BODY:
            phase = "body"
        if phase == self._phase:
            return
        self._cancel()
        self._phase = phase
        if phase is not None:
            timeout = self.header_timeout if phase == "headers" else self.body_timeout
            self._deadline = self.loop.call_later(timeout, self._expired, phase, timeout)

    def _cancel(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._phase = None

    def _expired(self, phase: str, timeout: float) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        HTTP_READ_TIMEOUTS.labels(self.service, phase).inc()
        log.debug("closing a connection: request %s not complete within %.0f s", phase, timeout)
        self.transport.close()  # the app, if reading a body, sees the client disconnect


def read_deadlines(service: str, header_timeout: float, body_timeout: float) -> type[ReadDeadlines]:
    """The protocol class uvicorn instantiates per connection, with this service's timeouts."""
    return type(
        "ReadDeadlines",
        (ReadDeadlines,),
        {"service": service, "header_timeout": header_timeout, "body_timeout": body_timeout},
    )


def listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family)
    sock.set_inheritable(True)
    return sock


def serve(app: FastAPI, settings: ServiceSettings, service: str) -> int:
    ops_host = settings.ops_host or settings.host
    sockets = [listen(settings.host, settings.port), listen(ops_host, settings.ops_port)]
    log.info(
        "%s listening on http://%s:%s (API) and http://%s:%s (ops: /metrics, /docs, /asyncapi.json)",
        service, settings.host, settings.port, ops_host, settings.ops_port,
    )  # fmt: skip
    config = uvicorn.Config(
        OpsPort(app, settings.ops_port),
        log_config=None,  # keep shared.logs' format
        # uvicorn's access line has the client's address and the path with its query string;
        # shared.http.RequestContext logs each request instead, by route template.
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=20,
        http=read_deadlines(service, settings.http_header_timeout_seconds, settings.http_body_timeout_seconds),
        timeout_keep_alive=settings.http_keep_alive_seconds,
    )
    try:
        uvicorn.Server(config).run(sockets=sockets)
    except KeyboardInterrupt:
        return 0  # Ctrl-C: uvicorn has already shut down gracefully and re-raised the signal
    except NotMigrated as exc:
        print(f"{service}: {exc}", file=sys.stderr)
        return 3
    finally:
        for sock in sockets:
            sock.close()
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
    """serve (default) | migrate | dlq | the service's extra commands; a bad configuration exits 2 with the reason."""
    extra = extra or {}
    parser = argparse.ArgumentParser(prog=f"python -m services.{service}")
    parser.add_argument(
        "command",
        nargs="?",
        default="serve",
        choices=["serve", "migrate", "dlq", *extra],
        help="; ".join(
            [
                "serve: run the HTTP API and background work",
                "migrate: apply this service's SQL migrations",
                f"dlq list|show|redrive: this service's dead letters (dlq.{service}.v1); dlq --help",
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
    configure(service, settings.log_level, settings.logs_as)
    if args.command in extra:
        return extra[args.command][1](settings, args)
    if args.command == "dlq":
        return dlq_command(service, settings, args.args)
    try:
        settings.check_for_production()  # before migrate too: the development password fails closed
    except ValueError as exc:
        print(f"{service}: refusing to start: {exc}", file=sys.stderr)
        return 2
    if args.command == "migrate":
        applied = asyncio.run(migrate(settings.database_url, settings.db_schema, migrations()))
        done = f"migrated: {', '.join(applied)}" if applied else "up to date"
        print(f"{service}: schema '{settings.db_schema}' {done}")
        return 0
    try:
        log.info("%s", tracing.configure(service))  # OTEL_* variables (shared/tracing.py)
        app = build_app(settings)
    except ValueError as exc:  # bad key file, bad rules file, production checks: say why, do not start
        print(f"{service}: refusing to start: {exc}", file=sys.stderr)
        return 2
    return serve(app, settings, service)
