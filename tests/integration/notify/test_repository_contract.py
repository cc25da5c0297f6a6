"""The NotifyRepository contract on Postgres (the same suite runs on the in-memory fake in unit)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest

from services.notify.adapters import repository
from services.notify.adapters.repository import PostgresNotifyRepository
from services.notify.bootstrap import migrations
from services.notify.domain.delivery import Delivery
from shared.unit_of_work import PostgresUnitOfWork
from tests.support.contracts import migrated_pool
from tests.support.contracts.notify import NotifyRepositoryContract


class TestPostgresNotifyRepository(NotifyRepositoryContract):
    pool: asyncpg.Pool

    @pytest.fixture
    async def uow(self, database_url: str) -> AsyncIterator[Any]:
        async with migrated_pool(database_url, migrations()) as pool:
            self.pool = pool
            yield PostgresUnitOfWork(lambda: pool, lambda conn: PostgresNotifyRepository(conn, topic="alerts.v1"))

    async def emitted(self, uow: Any) -> list[uuid.UUID]:
        return [r["event_id"] for r in await self.pool.fetch("SELECT event_id FROM outbox ORDER BY id")]

    async def deliveries(self, uow: Any, alert_id: uuid.UUID) -> dict[uuid.UUID, dict[str, Any]]:
        rows = await self.pool.fetch("SELECT * FROM deliveries WHERE alert_id = $1", alert_id)
        return {r["id"]: dict(r) for r in rows}

    async def audit_rows(self, uow: Any, alert_id: uuid.UUID) -> list[tuple[str, str | None, dict[str, Any]]]:
        rows = await self.pool.fetch("SELECT kind, actor, detail FROM audit WHERE alert_id = $1 ORDER BY id", alert_id)
        return [(r["kind"], r["actor"], r["detail"] if isinstance(r["detail"], dict) else json.loads(r["detail"]))
                for r in rows]  # fmt: skip

    async def lease(self, uow: Any, at: datetime, owner: str) -> list[Delivery]:
        async with self.pool.acquire() as conn:
            return await repository.claim_deliveries(conn, at, owner, timedelta(minutes=1), 100)

    async def disabled(self, uow: Any) -> set[str]:
        return {r["target"] for r in await self.pool.fetch("SELECT target FROM disabled_endpoints")}
