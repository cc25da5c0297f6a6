"""The DeadlinesRepository contract on Postgres (the same suite runs on the in-memory fake in unit)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from services.deadlines.adapters.repository import PostgresDeadlinesRepository
from services.deadlines.bootstrap import migrations
from shared.unit_of_work import PostgresUnitOfWork
from tests.support.contracts import migrated_pool
from tests.support.contracts.deadlines import DeadlinesRepositoryContract


class TestPostgresDeadlinesRepository(DeadlinesRepositoryContract):
    pool: asyncpg.Pool

    @pytest.fixture
    async def uow(self, database_url: str) -> AsyncIterator[Any]:
        async with migrated_pool(database_url, migrations()) as pool:
            self.pool = pool
            yield PostgresUnitOfWork(lambda: pool, lambda conn: PostgresDeadlinesRepository(conn, topic="deadlines.v1"))

    async def emitted(self, uow: Any) -> list[uuid.UUID]:
        return [r["event_id"] for r in await self.pool.fetch("SELECT event_id FROM outbox ORDER BY id")]
