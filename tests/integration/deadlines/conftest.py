"""Fixtures for the deadlines service on real Kafka and Postgres, with the rules file of second-long windows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.deadlines.bootstrap import build_app, migrations
from services.deadlines.settings import DeadlinesSettings
from shared.db import migrate
from shared.events import CloudEvent
from shared.kafka import EventProducer, OutgoingMessage
from tests.support.infra import Namespace
from tests.support.services import in_process, service_env
from tests.testdata import SECONDS_RULES_FILE


def settings_for(ns: Namespace, **over: Any) -> DeadlinesSettings:
    return DeadlinesSettings(
        kafka_bootstrap_servers=ns.kafka,
        database_url=ns.database_url,
        kafka_topic_prefix=ns.topics.prefix,
        kafka_partitions=3,
        db_schema=ns.schema("deadlines"),
        rules_file=SECONDS_RULES_FILE,
        rate_limit_per_minute=1_000_000,
        rate_limit_burst=100_000,
        **over,
    )


def deadlines_env(ns: Namespace) -> dict[str, str]:
    return service_env(ns, "deadlines", DEADLINE_RULES_FILE=str(SECONDS_RULES_FILE))


@pytest.fixture
async def deadlines_schema(ns: Namespace) -> str:
    schema = ns.schema("deadlines")
    await migrate(ns.database_url, schema, migrations())
    return schema


@pytest.fixture
async def deadlines_service(ns: Namespace, deadlines_schema: str) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = build_app(settings_for(ns))
    async with in_process(app) as client:
        await app.state.runtime.consuming.wait()
        yield app, client


class CasesTopic:
    """Plays intake: puts case events on cases.v1 keyed by case id."""

    def __init__(self, ns: Namespace) -> None:
        self.ns = ns
        self.producer = EventProducer(ns.kafka, client_id="test-intake")

    async def publish(self, *events: CloudEvent) -> None:
        await self.producer.send_batch(
            [OutgoingMessage(self.ns.topics.cases, e.subject.encode(), e.to_bytes()) for e in events]
        )


@pytest.fixture
async def cases_topic(ns: Namespace) -> AsyncIterator[CasesTopic]:
    topic = CasesTopic(ns)
    yield topic
    await topic.producer.stop()


def now() -> datetime:
    return datetime.now(UTC)
