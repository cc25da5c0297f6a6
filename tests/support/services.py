"""Running services for tests: in-process (ASGI + lifespan) or as real processes that can be killed."""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from tests.support.infra import ROOT, Namespace


def service_env(ns: Namespace, service: str, **extra: str) -> dict[str, str]:
    """Environment for a service inside a test's namespace (own schema, own topics)."""
    prefix = service.upper()
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": ns.kafka,
        "DATABASE_URL": ns.database_url,
        "KAFKA_TOPIC_PREFIX": ns.topics.prefix,
        "KAFKA_PARTITIONS": "3",
        f"{prefix}_DB_SCHEMA": ns.schema(service),
        "LOG_LEVEL": "INFO",
        # Tests poll and generate requests far faster than any client should; limits have their own tests.
        f"{prefix}_RATE_LIMIT_PER_MINUTE": "1000000",
        f"{prefix}_RATE_LIMIT_BURST": "100000",
        f"{prefix}_ANONYMOUS_RATE_LIMIT_PER_MINUTE": "1000000",
        f"{prefix}_ANONYMOUS_RATE_LIMIT_BURST": "100000",
        "ENVIRONMENT": "development",  # the development keys and password are refused otherwise
    }
    return env | extra


@contextlib.asynccontextmanager
async def in_process(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Starts the app's lifespan (pool, relay, consumers, loops) and gives an HTTP client to it."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://service", timeout=30, event_hooks=PORTAL_LIKE_HOOKS
        ) as client:
            yield client


async def with_idempotency_key(request: httpx.Request) -> None:
    """Gives a POST without an Idempotency-Key a fresh one, as the citizen portal does for every submission.

    Tests that are about the key itself send their own (or none, through a client without this hook).
    """
    if request.method == "POST" and "idempotency-key" not in request.headers:
        request.headers["Idempotency-Key"] = str(uuid.uuid4())


PORTAL_LIKE_HOOKS: dict[str, list[Any]] = {"request": [with_idempotency_key]}


# Ports this test process handed out lately: the kernel may offer a port again as soon as its probe
# socket is closed, so two calls in a row could name the same port (an API and an ops port alike).
_HANDED_OUT: collections.deque[int] = collections.deque(maxlen=256)


def free_port() -> int:
    """A port nothing listens on now, and not one this process handed out lately."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.append(port)
            return port
    raise RuntimeError("no free port found that was not handed out lately")


class ServiceProcess:
    """`python -m services.<name> serve` as a child process: for crash tests and multi-instance tests."""

    def __init__(self, service: str, env: dict[str, str], log: Path) -> None:
        self.service = service
        self.port = free_port()
        self.ops_port = free_port()  # /metrics, /asyncapi.json, /docs (shared/cli.py serve)
        self.env = (
            os.environ
            | env
            | {
                f"{service.upper()}_PORT": str(self.port),
                f"{service.upper()}_OPS_PORT": str(self.ops_port),
                "PYTHONUNBUFFERED": "1",
            }
        )
        # Where browsers reach it: sign-in callbacks and ack links point here, unless the test says otherwise.
        self.env.setdefault(f"{service.upper()}_PUBLIC_URL", self.url)
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The public API port."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def ops_url(self) -> str:
        """The ops port: /metrics, /asyncapi.json, /docs, and /healthz, /readyz as on the API port."""
        return f"http://127.0.0.1:{self.ops_port}"

    def migrate(self) -> None:
        done = subprocess.run(
            [sys.executable, "-m", f"services.{self.service}", "migrate"],
            cwd=ROOT, env=self.env, capture_output=True, timeout=60,
        )  # fmt: skip
        if done.returncode != 0:  # say why: the exit status alone tells nothing
            why = (done.stderr or done.stdout).decode("utf-8", "replace")[-3000:]
            raise RuntimeError(f"{self.service} migrate exited {done.returncode}:\n{why}")

    def start(self) -> ServiceProcess:
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", f"services.{self.service}", "serve"], cwd=ROOT, env=self.env, stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        return self

    def wait_ready(self, timeout: float = 60.0, path: str = "/readyz") -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.service} exited with {self.proc.returncode}: {self.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + path, timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise AssertionError(f"{self.service} not ready in {timeout}s: {self.tail()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no flush, no goodbye: the worst moment."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(25)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def memory_kib(self) -> dict[str, int]:
        """Current and peak resident memory (VmRSS, VmHWM) from /proc."""
        assert self.proc is not None
        found: dict[str, int] = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmHWM", "VmRSS"):
                found[name] = int(value.split()[0])
        return found

    def cpu_seconds(self) -> float:
        """User + system CPU time the service has used so far."""
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@contextlib.contextmanager
def running_processes(*services: ServiceProcess, ready_within: float = 60.0) -> Iterator[None]:
    """Migrates and starts each service, waits until each answers /readyz, and stops them all after."""
    for service in services:
        service.migrate()
        service.start()
    try:
        for service in services:
            service.wait_ready(timeout=ready_within)
        yield
    finally:
        for service in services:
            service.stop()
