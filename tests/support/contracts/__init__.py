"""One abstract test suite per repository Protocol, run against the in-memory fake and against Postgres.

As pyeventsourcing/eventsourcing tests every recorder: the suite is written once here, and each
backend subclasses it with a `uow` fixture (its unit of work) and the few readers the Protocol
itself lacks (what reached the outbox). tests/unit/<service>/test_repository_contract.py runs the
fake, tests/integration/<service>/test_repository_contract.py Postgres: a fake that disagrees with
the SQL fails its own run of the suite.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable

import asyncpg

from shared.db import Migration, create_pool, drop_schema, migrate
from tests.support.infra import unique


@contextlib.asynccontextmanager
async def migrated_pool(database_url: str, migrations: Iterable[Migration]) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a fresh schema with the service's migrations, dropped afterwards."""
    schema = unique("contract_")
    await migrate(database_url, schema, migrations)
    pool = await create_pool(database_url, schema, application="contract-tests")
    try:
        yield pool
    finally:
        await pool.close()
        with contextlib.suppress(Exception):
            await drop_schema(database_url, schema)
