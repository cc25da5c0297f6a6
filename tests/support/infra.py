"""Where the tests find Kafka and Postgres: env vars, else testcontainers (with Docker), else `make up`'s."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from shared.kafka import kafka_reachable
from shared.settings import Topics

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_KAFKA = "localhost:9092"
DEFAULT_DB = "postgresql://politi:politi@localhost:5432/politi"


@dataclass
class Infra:
    kafka: str
    database_url: str
    how: str
    _containers: list[object] = field(default_factory=list)

    def stop(self) -> None:
        for container in self._containers:
            container.stop()  # type: ignore[attr-defined]


def _docker_engine_reachable() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=2)
        return bool(client.ping())
    except Exception:
        return False


def _from_testcontainers() -> Infra:
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer

    kafka = KafkaContainer("apache/kafka:4.1.1").with_kraft()
    kafka.start()
    pg = PostgresContainer("postgres:15", username="politi", password="politi", dbname="politi", driver=None)
    pg.start()
    return Infra(
        kafka=kafka.get_bootstrap_server(),
        database_url=pg.get_connection_url(),
        how="testcontainers",
        _containers=[kafka, pg],
    )


def discover() -> Infra:
    given_kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    given_db = os.environ.get("DATABASE_URL")
    if given_kafka or given_db:
        return Infra(given_kafka or DEFAULT_KAFKA, given_db or DEFAULT_DB, how="environment")
    if _docker_engine_reachable():
        return _from_testcontainers()
    return Infra(DEFAULT_KAFKA, DEFAULT_DB, how="make up")


def unique(prefix: str = "t") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


@dataclass
class Namespace:
    """One test's (or benchmark's) private corner of the shared broker and database."""

    id: str
    kafka: str
    database_url: str
    topics: Topics
    schemas: list[str] = field(default_factory=list)

    @classmethod
    def new(cls, kafka: str, database_url: str, prefix: str = "t") -> Namespace:
        ident = unique(prefix)
        return cls(id=ident, kafka=kafka, database_url=database_url, topics=Topics(ident + "."))

    def schema(self, service: str) -> str:
        """The namespace's schema for `service`; dropped when the namespace ends."""
        name = f"{self.id}_{service}"
        if name not in self.schemas:
            self.schemas.append(name)
        return name


class LocalKafka:
    """Stops and starts the broker that `make up` runs, to prove what happens while Kafka is away."""

    script = ROOT / "deploy" / "local" / "kafka.sh"
    pidfile = ROOT / ".cache" / "kafka" / "kafka.pid"

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    def controllable(self) -> bool:
        if not self.pidfile.exists():
            return False
        try:
            os.kill(int(self.pidfile.read_text().strip()), 0)
            return True
        except (OSError, ValueError):
            return False

    def _pid(self) -> int:
        return int(self.pidfile.read_text().strip())

    def stop(self) -> None:
        subprocess.run(["bash", str(self.script), "down"], check=True, capture_output=True)

    def start(self) -> None:
        subprocess.run(["bash", str(self.script), "up"], check=True, capture_output=True, timeout=180)

    def freeze(self) -> None:
        """The broker stops answering but keeps its sockets: the case that hangs naive clients."""
        os.kill(self._pid(), signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self._pid(), signal.SIGCONT)

    async def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await kafka_reachable(self.bootstrap):
                return
            await asyncio.sleep(0.5)
        raise TimeoutError(f"Kafka at {self.bootstrap} did not come back in {timeout}s")
