"""Fixtures for the intake service on real Postgres (and real Kafka where events are read back)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from services.intake.bootstrap import build_app, migrations
from services.intake.settings import IntakeSettings
from shared.db import create_pool, migrate
from shared.events import CloudEvent
from tests.support.infra import Namespace
from tests.support.kafka_read import read_all
from tests.support.services import in_process

PORTAL = {"Authorization": "Bearer dev-portal-key"}
POLICE = {"Authorization": "Bearer dev-police-key"}

# Recognisable personal data: none of it may ever appear on the bus or in a log line.
DESCRIPTION = "Terrassedøren brudt op, smykkeskrinet fra Mormor Gudrun er væk"
PHONE = "+4520304050"
NAME = "Mette Hansen-Testesen"
EMAIL = "mette.testesen@example.dk"
ADDRESS = "Strandvejen 12"


def settings_for(ns: Namespace, **over: Any) -> IntakeSettings:
    values: dict[str, Any] = {
        "kafka_bootstrap_servers": ns.kafka,
        "database_url": ns.database_url,
        "kafka_topic_prefix": ns.topics.prefix,
        "kafka_partitions": 3,
        "db_schema": ns.schema("intake"),
        "outbox_poll_seconds": 0.2,
        "rate_limit_per_minute": 100_000,
        "rate_limit_burst": 1_000,
    }
    return IntakeSettings(**(values | over))


def report(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "category": "burglary_home",
        "description": DESCRIPTION,
        "in_progress": False,
        "postcode": "4040",  # Jyllinge: wholly in Roskilde (0265)
        "address": ADDRESS,
        "position": {"lat": 55.7448, "lon": 12.0992},
        "contact": {"name": NAME, "phone": "20 30 40 50", "email": EMAIL},
    }
    body.update(over)
    return {k: v for k, v in body.items() if v is not None}


def tip(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "category": "drug_dealing_street",
        "description": "Salg fra en hvid varevogn bag hallen hver aften",
        "kommune": "0316",
        "anonymous": True,
    }
    return body | over


def officer_request(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "request_type": "traffic_control",
        "description": "Biler kører for stærkt forbi skolen om morgenen",
        "kommune": "0259",
        "address": "Ølbyvej 2",
        "contact": {"email": "skole@koege.dk"},
    }
    return body | over


@pytest.fixture
async def intake_schema(ns: Namespace) -> str:
    schema = ns.schema("intake")
    await migrate(ns.database_url, schema, migrations())
    return schema


@pytest.fixture
async def db(ns: Namespace, intake_schema: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the test's intake schema, to look at what was (or was not) written."""
    pool = await create_pool(ns.database_url, intake_schema, application="tests")
    yield pool
    await pool.close()


@contextlib.asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan running, once its Kafka side has started.

    Waiting for that also lets the outbox relay take its LISTEN connection: a runtime stopped
    within milliseconds of starting can leave that connection checked out, and its pool then
    waits 10 s to close (shared.outbox.OutboxRelay._listen is not cancellation-safe).
    """
    async with in_process(app) as client:
        await app.state.runtime.consuming.wait()
        yield client


@pytest.fixture
async def intake_service(ns: Namespace, intake_schema: str) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = build_app(settings_for(ns))
    async with running(app) as client:
        yield app, client


async def case_events(ns: Namespace, expect: int | None = None, timeout: float = 20.0) -> list[CloudEvent]:
    records = await read_all(ns.kafka, ns.topics.cases, expect=expect, timeout=timeout)
    return [CloudEvent.from_bytes(r.value) for r in records]


async def outbox_pending(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL"))
