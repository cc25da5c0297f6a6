"""Test fixtures: real Kafka and Postgres, isolated per test by topic prefix and schema, never by port."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from shared.db import create_pool, drop_schema, migrate, shared_migrations
from shared.kafka import delete_topics, ensure_topics, kafka_reachable
from shared.settings import Topics
from tests.support.infra import Infra, LocalKafka, Namespace, discover

TESTS = Path(__file__).resolve().parent
# Tests run with the development key file and database password, which the services accept only
# when ENVIRONMENT=development is set explicitly (shared/settings.py check_for_production).
os.environ["ENVIRONMENT"] = "development"


# Tests that stop or load the machine's one Kafka or Postgres for everyone: `make test` runs them on their
# own, after the others (which it runs two at a time: see the Makefile).
EXCLUSIVE_FIXTURES = frozenset({"local_kafka"})
EXCLUSIVE_FILES = frozenset({"test_kafka_cluster.py"})  # three brokers of its own, killed under load


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks by folder, so `-m unit` never needs a broker and no test forgets its marker; and `exclusive`."""
    for item in items:
        parts = Path(str(item.fspath)).relative_to(TESTS).parts
        if parts and parts[0] in ("unit", "integration", "e2e", "faults"):
            item.add_marker(getattr(pytest.mark, parts[0]))
        fixtures = set(getattr(item, "fixturenames", ()))
        if (parts and parts[0] == "faults") or parts[-1] in EXCLUSIVE_FILES or EXCLUSIVE_FIXTURES & fixtures:
            item.add_marker(pytest.mark.exclusive)


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    found = discover()
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    yield found
    found.stop()


@pytest.fixture(scope="session")
async def kafka(infra: Infra) -> str:
    if not await kafka_reachable(infra.kafka, timeout=5.0):
        pytest.fail(f"Kafka does not answer at {infra.kafka} (found via {infra.how}); run `make up` first.")
    return infra.kafka


@pytest.fixture(scope="session")
async def database_url(infra: Infra) -> str:
    try:
        conn = await asyncpg.connect(infra.database_url, timeout=5)
        await conn.close()
    except Exception as exc:
        pytest.fail(f"Postgres does not answer at DATABASE_URL ({exc!r}); run `make up` first.")
    return infra.database_url


@contextlib.asynccontextmanager
async def namespace(kafka: str, database_url: str) -> AsyncIterator[Namespace]:
    """A private corner of the broker and database: its topics made, then its topics and schemas removed."""
    space = Namespace.new(kafka, database_url)
    await ensure_topics(kafka, all_topics(space.topics), partitions=3, replication_factor=1)
    try:
        yield space
    finally:
        for schema in space.schemas:
            with contextlib.suppress(Exception):
                await drop_schema(database_url, schema)
        with contextlib.suppress(Exception):
            await delete_topics(kafka, all_topics(space.topics))


@pytest.fixture
async def ns(kafka: str, database_url: str) -> AsyncIterator[Namespace]:
    async with namespace(kafka, database_url) as space:
        yield space


@pytest.fixture
async def platform_schema(ns: Namespace) -> AsyncIterator[tuple[str, asyncpg.Pool]]:
    """A schema with only the shared outbox and inbox tables, and a pool bound to it."""
    schema = ns.schema("platform")
    await migrate(ns.database_url, schema, shared_migrations())
    pool = await create_pool(ns.database_url, schema, application="tests")
    yield schema, pool
    await pool.close()


@pytest.fixture(scope="session")
def local_kafka(infra: Infra) -> LocalKafka:
    control = LocalKafka(infra.kafka)
    if not control.controllable():
        pytest.skip("this test stops and starts the broker; it needs the one `make up` started")
    return control


def all_topics(topics: Topics) -> list[str]:
    """The contract's topics plus the DLQ of the platform tests' own little service."""
    return [*topics.all(), topics.dlq("testsvc")]
