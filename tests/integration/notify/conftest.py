"""Fixtures for notify on real Kafka and Postgres, with a real SMTP server and a real webhook receiver.

The policy is the real one with timeouts of seconds; the roster is written per test, pointing
its channels at this test's receivers.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from services.notify import handlers
from services.notify.adapters.policy_file import load_policy
from services.notify.adapters.roster_file import load_roster
from services.notify.bootstrap import build_app, migrations
from services.notify.settings import NotifySettings
from shared.db import create_pool, migrate
from shared.events import CloudEvent
from shared.events import deadlines as d
from shared.events.cases import CaseReported
from shared.kafka import EventProducer, OutgoingMessage
from tests.support.infra import Namespace
from tests.support.kafka_read import read_all
from tests.support.notify import new_secret, roster_document, write_roster
from tests.support.receivers import SmtpSink, WebhookReceiver
from tests.support.services import in_process, service_env
from tests.testdata import SECONDS_POLICY_FILE

POLICE = {"Authorization": "Bearer dev-police-key"}
ROSKILDE = "0265"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver().start()
    yield r
    r.stop()


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    s = SmtpSink().start()
    yield s
    s.stop()


class TestRoster:
    """lb-roskilde-1: webhook then e-mail; lb-roskilde-2: e-mail; the vagtchefer: a webhook; the vagtcentral: a
    webhook then the console. Every other kommune's officer: the console."""

    __test__ = False  # a fixture's type, imported by the tests that annotate with it: no test class

    def __init__(self, tmp_path: Path, receiver: WebhookReceiver) -> None:
        self.secrets = {p: new_secret() for p in ("/lb1", "/vagtchef", "/vagtcentral")}
        self.receiver = receiver

        def hook(p: str) -> dict[str, str]:
            return {"type": "webhook", "url": receiver.url(p), "secret": self.secrets[p]}

        channels = {
            "lb-roskilde-1": [hook("/lb1"), {"type": "email", "to": "lb1@politi.example"}],
            "lb-roskilde-2": [{"type": "email", "to": "lb2@politi.example"}],
            "vc-a": [hook("/vagtchef"), {"type": "email", "to": "vagtchef@politi.example"}],
            "vc-b": [hook("/vagtchef"), {"type": "email", "to": "vagtchef@politi.example"}],
            "vagtcentral": [hook("/vagtcentral"), {"type": "console"}],
        }
        # Two vagtchefer around the clock (vc-a 07-19, vc-b 19-07), so a breach always has one on duty.
        self.path = write_roster(tmp_path / "roster.yaml", roster_document(officer_channels=channels))


@pytest.fixture
def roster(tmp_path: Path, receiver: WebhookReceiver) -> TestRoster:
    return TestRoster(tmp_path, receiver)


FAST = {
    "retry_base_seconds": 0.2,
    "retry_cap_seconds": 1.0,
    "max_attempts": 3,
    "delivery_lease_seconds": 5.0,
    "send_timeout_seconds": 2.5,
    "max_sleep_seconds": 1.0,
    "gauges_interval_seconds": 1.0,
}


def settings_for(ns: Namespace, roster: TestRoster, smtp: SmtpSink, **over: Any) -> NotifySettings:
    return NotifySettings(
        kafka_bootstrap_servers=ns.kafka,
        database_url=ns.database_url,
        kafka_topic_prefix=ns.topics.prefix,
        kafka_partitions=3,
        db_schema=ns.schema("notify"),
        roster_file=roster.path,
        alert_policy_file=SECONDS_POLICY_FILE,
        smtp_port=smtp.port,
        **(FAST | over),
    )


def notify_env(ns: Namespace, roster: TestRoster, smtp: SmtpSink) -> dict[str, str]:
    return service_env(
        ns,
        "notify",
        ROSTER_FILE=str(roster.path),
        ALERT_POLICY_FILE=str(SECONDS_POLICY_FILE),
        NOTIFY_SMTP_PORT=str(smtp.port),
        **{f"NOTIFY_{k.upper()}": str(v) for k, v in FAST.items()},
    )


@pytest.fixture
async def notify_schema(ns: Namespace) -> str:
    schema = ns.schema("notify")
    await migrate(ns.database_url, schema, migrations())
    return schema


@pytest.fixture
async def pool(ns: Namespace, notify_schema: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the test's notify schema, for tests that drive the use cases or the workers directly."""
    p = await create_pool(ns.database_url, notify_schema, application="notify-tests")
    yield p
    await p.close()


@pytest.fixture
def ctx(ns: Namespace, roster: TestRoster) -> handlers.Context:
    """The use cases' context: the seconds-scale test policy and the test roster."""
    policy, r = load_policy(SECONDS_POLICY_FILE), load_roster(roster.path)
    return handlers.Context(policy=lambda: policy, roster=lambda: r, alerts_topic=ns.topics.alerts)


@pytest.fixture
async def notify_service(
    ns: Namespace, notify_schema: str, roster: TestRoster, smtp: SmtpSink
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = build_app(settings_for(ns, roster, smtp))
    async with in_process(app) as client:
        await app.state.runtime.consuming.wait()
        yield app, client


class Upstream:
    """Plays intake and deadlines: puts case and deadline events on their topics, keyed by case id."""

    def __init__(self, ns: Namespace) -> None:
        self.ns = ns
        self.producer = EventProducer(ns.kafka, client_id="test-upstream")

    async def publish(self, *events: CloudEvent) -> None:
        topic = {"case": self.ns.topics.cases, "deadline": self.ns.topics.deadlines}
        await self.producer.send_batch(
            [OutgoingMessage(topic[e.type.split(".")[2]], e.subject.encode(), e.to_bytes()) for e in events]
        )


@pytest.fixture
async def upstream(ns: Namespace) -> AsyncIterator[Upstream]:
    u = Upstream(ns)
    yield u
    await u.producer.stop()


class Deadline:
    """One deadline of one case, and the events the deadlines service would publish about it."""

    def __init__(self, rule: str = "burglary_home_24h", category: str = "burglary_home", kommune: str = ROSKILDE,
                 window: timedelta = timedelta(hours=24)) -> None:  # fmt: skip
        self.case_id = uuid.uuid4()
        self.deadline_id = uuid.uuid4()
        self.rule = rule
        self.category = category
        self.kommune = kommune
        self.started_at = datetime.now(UTC)
        self.due_at = self.started_at + window
        self.reference = "MV-" + uuid.uuid4().hex[:4].upper() + "-" + uuid.uuid4().hex[:3].upper()
        # The deadlines service puts the case's reference on every deadline event; False plays an
        # event written before it did.
        self.carries_reference = True
        self.reschedules = 0  # raise it to play a later window of the deadline (after a reschedule)

    def _common(self) -> dict[str, Any]:
        return {
            "deadline_id": self.deadline_id, "case_id": self.case_id, "rule_id": self.rule, "basis": "guarantee",
            "window_set_by": "law", "title": f"Frist {self.rule}", "category": self.category,
            "focus_area": "indbrud", "started_at": self.started_at, "due_at": self.due_at,
            "reference": self.reference if self.carries_reference else None,
            "reschedules": self.reschedules,
        }  # fmt: skip

    def _wrap(self, data: Any, at: datetime) -> CloudEvent:
        return CloudEvent.of(data, source="/mvsj/deadlines", subject=str(self.case_id), kommune=self.kommune, time=at)

    def reported(self) -> CloudEvent:
        data = CaseReported(case_id=self.case_id, reference=self.reference, category=self.category,
                            focus_area="indbrud", received_at=self.started_at, in_progress=False)  # fmt: skip
        return CloudEvent.of(data, source="/mvsj/intake", subject=str(self.case_id), kommune=self.kommune,
                             time=self.started_at)  # fmt: skip

    def started(self) -> CloudEvent:
        return self._wrap(d.DeadlineStarted(**self._common(), window_seconds=86400.0, rules_version=1),
                          self.started_at)  # fmt: skip

    def warning(self, fraction: float = 0.5) -> CloudEvent:
        now = datetime.now(UTC)
        return self._wrap(d.DeadlineWarning(**self._common(), fraction=fraction, warned_at=now,
                                            remaining_seconds=3600.0), now)  # fmt: skip

    def breached(self) -> CloudEvent:
        now = datetime.now(UTC)
        return self._wrap(d.DeadlineBreached(**self._common(), breached_at=now), now)

    def met(self, at: datetime | None = None) -> CloudEvent:
        now = datetime.now(UTC)
        return self._wrap(d.DeadlineMet(**self._common(), met_at=at or now, action="on_scene", late=False,
                                        response_seconds=60.0), at or now)  # fmt: skip

    def breach_withdrawn(self, action_at: datetime, breached_at: datetime) -> CloudEvent:
        """The on_scene of `action_at` (before the due time) reached deadlines after the breach."""
        now = datetime.now(UTC)
        data = d.DeadlineBreachWithdrawn(**self._common(), breached_at=breached_at, action="on_scene",
                                         action_at=action_at, action_recorded_at=action_at)  # fmt: skip
        return self._wrap(data, now)


async def alert_events(ns: Namespace, *, timeout: float = 3.0) -> list[CloudEvent]:
    return [CloudEvent.from_bytes(r.value) for r in await read_all(ns.kafka, ns.topics.alerts, timeout=timeout,
                                                                    idle=0.7)]  # fmt: skip


async def alert_of(client: httpx.AsyncClient, alert_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/alerts/{alert_id}", headers=POLICE)
    assert response.status_code == 200, response.text
    return dict(response.json())
