"""A private three-broker Kafka cluster for fault tests: start it, kill -9 one broker, restart it, throw it away.

It is `make up KAFKA_BROKERS=3` (deploy/local/kafka.sh) pointed at a directory and ports of its own,
so a test exercises the same script and the same broker settings as a developer's cluster
(replication factor 3, min.insync.replicas=2, unclean leader election off), while the shared
single node on 9092 serves everyone else untouched. The jars are the ones `make up` fetched into
`.cache/kafka/libs` (`KAFKA_LIBS` points elsewhere); missing ones are fetched there first.

    cluster = KafkaCluster()
    cluster.start()                 # blocking; from async code: await asyncio.to_thread(cluster.start)
    try:
        cluster.kill(2)             # SIGKILL, no clean shutdown
        cluster.restart(2)          # starts what is not running, waits until every node answers
    finally:
        cluster.stop()              # SIGKILL every node, remove the directory
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.infra import ROOT

SCRIPT = ROOT / "deploy" / "local" / "kafka.sh"
PORT_STEP = 100  # node n listens on base + 100 * (n - 1), as in kafka.sh
# Bases tried in turn (brokers; controllers at +6): the first whose ports are all free wins, so two
# test runs on one machine do not collide. All above 20000, clear of the shared node's 9092/9098.
CANDIDATE_BASES = tuple(range(29092, 29092 + 10 * 500, 500))


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the broker binds (Java sets SO_REUSEADDR): a port in TIME_WAIT after a last run is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _running(pid: int) -> bool:
    """True while the process runs; a killed one that its parent has not reaped yet does not count."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return not any(line.startswith("State:") and "Z" in line.split()[1] for line in status.splitlines())


class KafkaCluster:
    def __init__(self, brokers: int = 3, *, base_port: int | None = None, heap: str = "384m") -> None:
        self.brokers = brokers
        self.heap = heap
        self.base_port = base_port if base_port is not None else self._free_base()
        self.controller_base = self.base_port + 6
        self.home = Path(tempfile.mkdtemp(prefix="kafka-cluster-"))
        self.libs = Path(os.environ.get("KAFKA_LIBS", ROOT / ".cache" / "kafka" / "libs"))

    def _free_base(self) -> int:
        for base in CANDIDATE_BASES:
            ports = [base + PORT_STEP * n + offset for n in range(self.brokers) for offset in (0, 6)]
            if all(_free(p) for p in ports):
                return base
        raise RuntimeError(f"no free ports for a private Kafka cluster at any of {CANDIDATE_BASES}")

    @property
    def ports(self) -> list[int]:
        return [self.base_port + PORT_STEP * n for n in range(self.brokers)]

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def node_dir(self, node: int) -> Path:
        return self.home / "kafka" / "cluster" / f"node{node}"

    def log(self, node: int) -> Path:
        return self.node_dir(node) / "logs" / "server.log"

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")}
        return env | {
            "CACHE_DIR": str(self.home),
            "KAFKA_LIBS": str(self.libs),
            "KAFKA_BROKERS": str(self.brokers),
            "KAFKA_PORT": str(self.base_port),
            "KAFKA_CONTROLLER_PORT": str(self.controller_base),
            "KAFKA_HEAP": self.heap,
            "KAFKA_WAIT": "90",
            "PYTHON": sys.executable,
        }

    def _script(self, command: str, timeout: float) -> str:
        done = subprocess.run(
            ["bash", str(SCRIPT), command],
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        output = done.stdout + done.stderr
        if done.returncode != 0:
            raise RuntimeError(f"kafka.sh {command} failed ({done.returncode}):\n{output[-4000:]}")
        return output

    def start(self, timeout: float = 240.0) -> str:
        """Starts every node that is not running and waits until each answers; returns the script's output."""
        return self._script("up", timeout)

    def pid(self, node: int) -> int | None:
        try:
            pid = int((self.node_dir(node) / "kafka.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _running(pid) else None

    def kill(self, node: int) -> None:
        """kill -9 one broker (no controlled shutdown: its partitions lose their leader at once)."""
        pid = self.pid(node)
        if pid is None:
            raise RuntimeError(f"node {node} is not running")
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _running(pid):
            if time.monotonic() > deadline:
                raise RuntimeError(f"node {node} (pid {pid}) survived SIGKILL for 10 s")
            time.sleep(0.05)

    def restart(self, node: int, timeout: float = 120.0) -> str:
        """Starts the killed node again (with its data) and waits until every node answers."""
        if self.pid(node) is not None:
            raise RuntimeError(f"node {node} is still running")
        return self.start(timeout)

    def stop(self) -> None:
        """Kills every node at once (the data is thrown away, so no clean shutdown is needed) and removes it all."""
        for node in range(1, self.brokers + 1):
            pid = self.pid(node)
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        for node in range(1, self.brokers + 1):
            pid = self.pid(node)
            deadline = time.monotonic() + 10
            while pid is not None and _running(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
        shutil.rmtree(self.home, ignore_errors=True)
