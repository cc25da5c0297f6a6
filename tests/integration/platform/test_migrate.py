"""Migrations on real Postgres: several processes migrating one fresh schema at once all succeed."""

from __future__ import annotations

import asyncio

import asyncpg

from shared.db import drop_schema, migrate, shared_migrations
from tests.support.infra import Namespace


async def test_many_first_migrations_at_once_all_succeed_and_apply_each_file_once(ns: Namespace) -> None:
    # Several instances of a service starting together on an empty database: each round is a fresh
    # schema, so every migrate() races through CREATE SCHEMA and the bookkeeping table.
    for round_ in range(4):
        schema = ns.schema(f"mig{round_}")
        results = await asyncio.gather(
            *(migrate(ns.database_url, schema, shared_migrations()) for _ in range(6)), return_exceptions=True
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        assert failures == []
        applied = [version for r in results if isinstance(r, list) for version in r]
        assert sorted(applied) == sorted(m.version for m in shared_migrations())  # each once, by one of them
        conn = await asyncpg.connect(ns.database_url)
        try:
            assert await conn.fetchval(f'SELECT count(*) FROM "{schema}".schema_migrations') == len(applied)
        finally:
            await conn.close()
        await drop_schema(ns.database_url, schema)
