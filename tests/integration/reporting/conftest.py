"""Fixtures for the reporting service on real Kafka and Postgres (its quarter of events: tests/support/quarter.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.reporting.bootstrap import build_app, migrations
from services.reporting.settings import ReportingSettings
from shared.db import migrate
from shared.events import CloudEvent, EventData
from shared.events import alerts as al
from shared.events import cases as cs
from shared.events import deadlines as dl
from shared.kafka import EventProducer, OutgoingMessage
from shared.metrics import CONSUMED
from tests.support.infra import Namespace
from tests.support.services import in_process, service_env

COUNCIL = {"Authorization": "Bearer dev-council-key"}
POLICE = {"Authorization": "Bearer dev-police-key"}


def settings_for(ns: Namespace, **over: Any) -> ReportingSettings:
    return ReportingSettings(
        kafka_bootstrap_servers=ns.kafka,
        database_url=ns.database_url,
        kafka_topic_prefix=ns.topics.prefix,
        kafka_partitions=3,
        db_schema=ns.schema("reporting"),
        **over,
    )


def reporting_env(ns: Namespace) -> dict[str, str]:
    return service_env(ns, "reporting")


@pytest.fixture
async def reporting_schema(ns: Namespace) -> str:
    schema = ns.schema("reporting")
    ns.schema("reporting_rebuild")  # dropped with the namespace if a rebuild leaves it behind
    await migrate(ns.database_url, schema, migrations())
    return schema


@pytest.fixture
async def reporting_service(ns: Namespace, reporting_schema: str) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = build_app(settings_for(ns))
    async with in_process(app) as client:
        await app.state.runtime.consuming.wait()
        yield app, client


def consumed(ns: Namespace, outcome: str) -> float:
    """How many of this namespace's events the read-model consumer handled with `outcome`."""
    total = 0.0
    for metric in CONSUMED.collect():
        for sample in metric.samples:
            labels = sample.labels
            if (
                sample.name.endswith("_total")
                and labels.get("consumer") == "reporting-read-model"
                and labels.get("topic", "").startswith(ns.topics.prefix)
                and labels.get("outcome") == outcome
            ):
                total += sample.value
    return total


class Bus:
    """Plays intake, deadlines and notify: puts their events on the three topics, keyed by case id."""

    def __init__(self, ns: Namespace) -> None:
        self.ns = ns
        self.producer = EventProducer(ns.kafka, client_id="test-reporting-bus")

    async def publish(self, events: list[CloudEvent]) -> None:
        topic_of = {
            cs.TOPIC: self.ns.topics.cases,
            dl.TOPIC: self.ns.topics.deadlines,
            al.TOPIC: self.ns.topics.alerts,
        }
        messages = [
            OutgoingMessage(topic_of[EventData.registry[e.type].topic], e.subject.encode(), e.to_bytes())
            for e in events
        ]
        for i in range(0, len(messages), 500):
            await self.producer.send_batch(messages[i : i + 500])


@pytest.fixture
async def bus(ns: Namespace) -> AsyncIterator[Bus]:
    topic = Bus(ns)
    yield topic
    await topic.producer.stop()
