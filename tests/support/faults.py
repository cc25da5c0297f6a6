"""Faults a test causes on this machine's own Kafka broker and Postgres cluster: kill -9, then start again."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

from tests.support.infra import ROOT


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False).stdout
    return [int(p) for p in out.split()]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie still answers signal 0; it is gone for our purpose.
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _wait_gone(pids: list[int], timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end and not all(_gone(p) for p in pids):
        time.sleep(0.05)


class LocalPostgres:
    """The Debian cluster `make up` runs (pg_ctlcluster), found by the port of DATABASE_URL."""

    def __init__(self, database_url: str) -> None:
        parts = urlsplit(database_url)
        self.host = parts.hostname or "localhost"
        self.port = parts.port or 5432
        self.version, self.name, self.data_dir = self._cluster()

    def _cluster(self) -> tuple[str, str, Path]:
        if self.host not in ("localhost", "127.0.0.1", "::1"):
            raise RuntimeError(f"Postgres at {self.host} is not this machine's")
        listing = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=True).stdout
        for line in listing.splitlines():
            fields = line.split()
            if len(fields) >= 6 and fields[2] == str(self.port):
                return fields[0], fields[1], Path(fields[5])
        raise RuntimeError(f"no local Postgres cluster listens on port {self.port}")

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def kill9(self) -> None:
        """kill -9 of the postmaster and its children: a crash, with no checkpoint and no goodbye.

        The children are killed too: left alone, an orphaned backend holds the shared memory and a
        new postmaster refuses to start until it notices and exits.
        """
        pid = self.postmaster_pid()
        if pid is None:
            raise RuntimeError("Postgres is not running")
        children = _children(pid)
        os.kill(pid, signal.SIGKILL)
        for child in children:
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _wait_gone([pid, *children])

    def start(self, timeout: float = 60.0) -> None:
        end = time.monotonic() + timeout
        while True:
            done = subprocess.run(
                ["pg_ctlcluster", "--skip-systemctl-redirect", self.version, self.name, "start"],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if done.returncode == 0 or "already running" in done.stderr:
                return
            if time.monotonic() > end:
                raise RuntimeError(f"Postgres did not start again: {done.stderr.strip()}")
            time.sleep(0.5)


class KafkaBroker:
    """The single broker `make up` runs (deploy/local/kafka.sh and its pid file)."""

    script = ROOT / "deploy" / "local" / "kafka.sh"
    pidfile = ROOT / ".cache" / "kafka" / "kafka.pid"

    def controllable(self) -> bool:
        try:
            os.kill(int(self.pidfile.read_text().strip()), 0)
            return True
        except (OSError, ValueError):
            return False

    def kill9(self) -> None:
        pid = int(self.pidfile.read_text().strip())
        os.kill(pid, signal.SIGKILL)
        _wait_gone([pid])

    def start(self) -> None:
        """Starts it again and returns once an admin client can describe the cluster."""
        subprocess.run(["bash", str(self.script), "up"], check=True, capture_output=True, timeout=180)
