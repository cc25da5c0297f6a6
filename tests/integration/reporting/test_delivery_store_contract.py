"""The DeliveryStore contract on Postgres (leases on Postgres's clock), as the fake passes it in the unit tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from services.reporting.adapters.delivery_repository import DeliveryStore, PostgresDeliveryStore
from shared.db import create_pool
from tests.support.contracts.deliveries import DeliveryStoreContract
from tests.support.infra import Namespace


class TestPostgresDeliveryStore(DeliveryStoreContract):
    @pytest.fixture
    async def pool(self, ns: Namespace, reporting_schema: str) -> AsyncIterator[asyncpg.Pool]:
        p = await create_pool(ns.database_url, reporting_schema, application="delivery-store-contract")
        yield p
        await p.close()

    @pytest.fixture
    def store(self, pool: asyncpg.Pool) -> PostgresDeliveryStore:
        return PostgresDeliveryStore(pool)

    async def expire_leases(self, store: DeliveryStore) -> None:
        assert isinstance(store, PostgresDeliveryStore)
        async with store._pool.acquire() as conn:
            for table in ("council_deliveries", "council_delivery_sends"):
                await conn.execute(
                    f"UPDATE {table} SET lease_until = clock_timestamp() - interval '1 second'"
                    " WHERE lease_until IS NOT NULL"
                )
