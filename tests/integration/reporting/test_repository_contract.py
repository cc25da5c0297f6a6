"""The ReadModel contract on Postgres (the same suite runs on the in-memory fake in unit)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from services.reporting.adapters.repository import PostgresReadModel
from services.reporting.bootstrap import migrations
from services.reporting.domain.facts import (
    ActionFact,
    AlertAckFact,
    AlertFact,
    AlertStageFact,
    CaseFact,
    DeadlineFact,
    RuleFact,
)
from shared.unit_of_work import PostgresUnitOfWork
from tests.support.contracts import migrated_pool
from tests.support.contracts.reporting import ReadModelContract

TABLE_OF: dict[type[Any], str] = {
    CaseFact: "cases", ActionFact: "case_actions", DeadlineFact: "deadlines", AlertFact: "alerts",
    AlertStageFact: "alert_stages", AlertAckFact: "alert_acks", RuleFact: "rules_seen",
}  # fmt: skip


class TestPostgresReadModel(ReadModelContract):
    pool: asyncpg.Pool

    @pytest.fixture
    async def uow(self, database_url: str) -> AsyncIterator[Any]:
        async with migrated_pool(database_url, migrations()) as pool:
            self.pool = pool
            yield PostgresUnitOfWork(lambda: pool, PostgresReadModel)

    async def stored(self, uow: Any) -> dict[type[Any], list[Any]]:
        stored: dict[type[Any], list[Any]] = {}
        for kind, table in TABLE_OF.items():
            columns = ", ".join(kind.__slots__)
            rows = await self.pool.fetch(f"SELECT {columns} FROM {table}")
            if rows:
                stored[kind] = [kind(**dict(r)) for r in rows]
        return stored
