"""The whole district under the faults of a real week: every service, the Kafka broker and Postgres killed -9
and started again under load, and afterwards nothing lost, nothing twice, nothing breached that was kept.

The four services run as processes on the test's topics and schemas, with the deadline rules of the
test file stretched five times (windows of 20-40 s, so police actions can come in time and late) and
a roster whose every channel is a signed webhook to a receiver in this test. Clients retry with the
same Idempotency-Key until they get a 202, as the citizen portal and the police systems do. Meanwhile
a schedule kills -9 each service (notify twice, once while it delivers), the broker and Postgres's
postmaster, and starts each again. Then every count is checked by distinct event ids (the bus is
at-least-once: the same id twice is one event; two ids for one fact are a double).

Run alone: `make test-faults` (also part of `make test`). FAULTS_SUMMARY=path writes the figures as JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import yaml
from standardwebhooks.webhooks import Webhook

from services.reporting.domain.periods import Period
from shared.db import drop_schema
from shared.events import CloudEvent
from shared.kafka import ensure_topics
from tests.support import fault_checks as checks
from tests.support.fault_checks import Received
from tests.support.faults import KafkaBroker, LocalPostgres
from tests.support.infra import Namespace
from tests.support.kafka_cluster import KafkaCluster
from tests.support.kafka_read import read_all
from tests.support.notify import new_secret, roster_document, write_roster
from tests.support.receivers import WebhookReceiver
from tests.support.services import ServiceProcess, service_env
from tests.support.waiting import eventually
from tests.testdata import SECONDS_RULES_FILE

PORTAL = {"Authorization": "Bearer dev-portal-key"}
POLICE = {"Authorization": "Bearer dev-police-key"}
COUNCIL = {"Authorization": "Bearer dev-council-key"}
SERVICES = ("intake", "deadlines", "notify", "reporting")
KOMMUNER = ("0265", "0350", "0316", "0259", "0253")

LOAD_SECONDS = float(os.environ.get("FAULTS_LOAD_SECONDS", "60"))
CLUSTER_LOAD_SECONDS = float(os.environ.get("FAULTS_CLUSTER_LOAD_SECONDS", "20"))
REPORTS_PER_SECOND = 2.5
TIPS_PER_SECOND = 0.5
WINDOW_SCALE = 5  # the test rules' 4-8 s windows become 20-40 s
READY_WITHIN = 60.0  # every service ready this long after the last fault, at most
SETTLE_WITHIN = 150.0

POLICY = {
    "version": 1,
    # Ack timeouts longer than the run: every alert gets its first stage (and, for a breach, the
    # escalation to the vagtcentral 30 s later), not a reminder every few seconds for ever.
    "chains": {
        "lokal": {"ack_timeout": "PT30S", "steps": ["vagtchef", "vagtcentral"], "reminder_interval": "PT1H"},
        "akut": {"ack_timeout": "PT30S", "steps": ["vagtcentral"], "reminder_interval": "PT1H"},
    },
    "rules": [
        {
            "id": "acute_report", "event": "dk.politi.deadline.started",
            "deadline_rules": ["burglary_home_in_progress", "violence_acute", "rape_acute", "drug_dealing_school_response"],
            "reason": "acute_report", "severity": "critical", "notify": ["vagtchef"], "chain": "akut",
        },
        {"id": "deadline_warning", "event": "dk.politi.deadline.warning", "reason": "deadline_warning",
         "severity": "warning", "notify": ["lokalbetjente"], "chain": "lokal"},
        {"id": "deadline_breached", "event": "dk.politi.deadline.breached", "reason": "deadline_breached",
         "severity": "critical", "notify": ["vagtchef", "lokalbetjente"], "chain": "akut"},
    ],
}  # fmt: skip


def stretched_rules(path: Path) -> Path:
    document = yaml.safe_load(SECONDS_RULES_FILE.read_text(encoding="utf-8"))
    for rule in document["rules"]:
        seconds = float(rule["window"].removeprefix("PT").removesuffix("S"))
        rule["window"] = f"PT{seconds * WINDOW_SCALE:g}S"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return path


@dataclass
class District:
    """The four services as processes, a webhook receiver for every recipient, and what the test killed."""

    ns: Any
    tmp: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    receiver: WebhookReceiver = field(default_factory=WebhookReceiver)
    secrets: dict[str, str] = field(default_factory=dict)
    services: dict[str, ServiceProcess] = field(default_factory=dict)

    def build(self) -> District:
        roster = roster_document()
        people = [roster["vagtcentral"], *roster["vagtchefer"]]
        for kommune in roster["kommuner"].values():
            people.extend(kommune["lokalbetjente"])
        for person in people:
            path = f"/r/{person['id']}"
            self.secrets[path] = new_secret()
            person["channels"] = [{"type": "webhook", "url": self.receiver.url(path), "secret": self.secrets[path]}]
        policy = self.tmp / "policy.yaml"
        policy.write_text(yaml.safe_dump(POLICY), encoding="utf-8")
        env = {
            "INTAKE_OUTBOX_POLL_SECONDS": "0.5",
            "DEADLINE_RULES_FILE": str(stretched_rules(self.tmp / "rules.yaml")),
            "ROSTER_FILE": str(write_roster(self.tmp / "roster.yaml", roster)),
            "ALERT_POLICY_FILE": str(policy),
            "NOTIFY_RETRY_BASE_SECONDS": "0.2",
            "NOTIFY_RETRY_CAP_SECONDS": "2",
            "NOTIFY_MAX_SLEEP_SECONDS": "1",
            "KAFKA_SEND_TIMEOUT_SECONDS": "5",
        } | self.extra_env
        self.services = {
            name: ServiceProcess(name, service_env(self.ns, name, **env), self.tmp / f"{name}.log") for name in SERVICES
        }
        return self

    def start(self) -> District:
        self.receiver.start()
        for service in self.services.values():
            service.migrate()
            service.start()
        for service in self.services.values():
            service.wait_ready(timeout=90)
        return self

    def stop(self) -> None:
        for service in self.services.values():
            service.stop()
        self.receiver.stop()

    def url(self, service: str) -> str:
        return self.services[service].url


@dataclass
class Submitted:
    case_id: str
    kind: str
    category: str
    kommune: str
    on_scene_at: datetime | None = None  # the action's own time, when the test recorded one


class Clients:
    """The portal and the police systems: each submission retried with its Idempotency-Key until a 202."""

    def __init__(self, district: District, client: httpx.AsyncClient) -> None:
        self.d = district
        self.client = client
        self.cases: dict[str, Submitted] = {}
        self.statuses: Counter[int] = Counter()
        self.server_errors: list[str] = []  # 5xx that are not a 503 with Retry-After
        self.refused_connections = 0
        self.actions: list[tuple[str, str, datetime]] = []

    async def submit(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        key = str(uuid.uuid4())
        end = time.monotonic() + 240
        while True:
            try:
                answer = await self.client.post(
                    self.d.url("intake") + path, json=body, headers=headers | {"Idempotency-Key": key}, timeout=15
                )
            except httpx.TransportError:
                self.refused_connections += 1  # intake is being killed or started: retry, same key
                if time.monotonic() > end:
                    raise
                await asyncio.sleep(0.5)
                continue
            self.statuses[answer.status_code] += 1
            if answer.status_code == 202:
                accepted: dict[str, Any] = answer.json()
                return accepted
            if answer.status_code == 503 and answer.headers.get("retry-after"):
                await asyncio.sleep(min(float(answer.headers["retry-after"]), 2.0))
                continue
            if answer.status_code >= 500:
                self.server_errors.append(f"{path} {answer.status_code}: {answer.text[:300]}")
                await asyncio.sleep(0.5)
                continue
            raise AssertionError(f"{path} answered {answer.status_code}: {answer.text}")

    async def report(self, rng: random.Random) -> None:
        kommune = rng.choice(KOMMUNER)
        burglary: tuple[str, dict[str, object]] = ("burglary_home", {"in_progress": False})
        kinds: list[tuple[str, dict[str, object]]] = [
            burglary,
            burglary,
            burglary,
            ("violence", {"acute": True}),
            ("drug_dealing_school", {"institution": "Byskolen"}),
        ]
        category, extra = rng.choice(kinds)
        body = {"category": category, "description": "Indbrud i nat; bagdøren brudt op.", "kommune": kommune,
                "address": "Bygaden 3", "contact": {"name": "Test Borger", "phone": "+4522334455"}} | extra  # fmt: skip
        accepted = await self.submit("/v1/reports", body, PORTAL)
        case = Submitted(accepted["case_id"], "report", category, kommune)
        self.cases[case.case_id] = case
        if rng.random() < 0.6:
            # The patrol arrives 2-30 s later: within the 20 s window mostly, after it sometimes.
            await asyncio.sleep(rng.uniform(2, 26))
            await self.act(case, "on_scene")
        if category == "burglary_home" and case.on_scene_at is not None and rng.random() < 0.7:
            await asyncio.sleep(rng.uniform(0, 6))
            await self.act(case, "followup_done")

    async def tip(self, rng: random.Random) -> None:
        kommune = rng.choice(KOMMUNER)
        body = {"category": "drug_dealing_street", "description": "Salg bag hallen hver aften",
                "kommune": kommune, "anonymous": True}  # fmt: skip
        accepted = await self.submit("/v1/tips", body, PORTAL)
        self.cases[accepted["case_id"]] = Submitted(accepted["case_id"], "tip", "drug_dealing_street", kommune)

    async def act(self, case: Submitted, action: str) -> None:
        at = datetime.now(UTC)
        body = {"action": action, "occurred_at": at.isoformat(), "officer_id": "mvsj-1234"}
        await self.submit(f"/v1/cases/{case.case_id}/actions", body, POLICE)
        if action == "on_scene":
            case.on_scene_at = at
        self.actions.append((case.case_id, action, at))


@dataclass
class Faults:
    """kill -9 of each part, in turn, while the load runs; each started again."""

    district: District
    postgres: LocalPostgres
    kafka: KafkaBroker
    log: list[tuple[float, str]] = field(default_factory=list)
    last: float = 0.0

    def note(self, what: str) -> None:
        self.log.append((round(time.monotonic(), 1), what))
        self.last = time.monotonic()

    async def kill_service(self, name: str, down: float = 1.5) -> None:
        service = self.district.services[name]
        await asyncio.to_thread(service.kill)
        self.note(f"kill -9 {name}")
        await asyncio.sleep(down)
        service.start()
        self.note(f"started {name}")

    async def kill_notify_while_delivering(self) -> None:
        arrivals = self.district.receiver.arrivals
        end = time.monotonic() + 20
        seen = len(arrivals)
        while time.monotonic() < end and len(arrivals) == seen:
            await asyncio.sleep(0.02)
        await self.kill_service("notify")

    async def kill_kafka(self, down: float = 12.0) -> None:
        await asyncio.to_thread(self.kafka.kill9)
        self.note("kill -9 kafka")
        await asyncio.sleep(down)
        await asyncio.to_thread(self.kafka.start)
        self.note("kafka answers again")

    async def kill_postgres(self, down: float = 6.0) -> None:
        await asyncio.to_thread(self.postgres.kill9)
        self.note("kill -9 postgres (postmaster and backends)")
        await asyncio.sleep(down)
        await asyncio.to_thread(self.postgres.start)
        self.note("postgres started")

    def restore(self) -> None:
        """Whatever happened to the test, the machine's broker and database are left running."""
        with contextlib.suppress(Exception):
            self.postgres.start()
        with contextlib.suppress(Exception):
            self.kafka.start()

    async def run(self) -> None:
        at = time.monotonic()

        async def until(second: float) -> None:
            await asyncio.sleep(max(0.0, at + second - time.monotonic()))

        await until(5)
        await self.kill_service("intake")
        await until(10)
        await self.kill_service("deadlines")
        await until(15)
        await self.kill_notify_while_delivering()
        await until(20)
        await self.kill_service("reporting")
        await until(25)
        await self.kill_kafka(down=10.0)
        await until(45)
        await self.kill_postgres(down=5.0)
        await until(55)
        await self.kill_service("notify")


@pytest.fixture
def district(ns: Namespace, tmp_path: Path) -> Iterator[District]:
    d = District(ns, tmp_path).build()
    try:
        yield d.start()
    finally:
        d.stop()


@pytest.mark.timeout(600)
async def test_every_report_deadline_and_alert_once_whatever_dies(ns: Namespace, district: District) -> None:
    kafka = KafkaBroker()
    if not kafka.controllable():
        pytest.skip("the broker is not the one `make up` started here, so this test cannot kill it")
    faults = Faults(district, LocalPostgres(ns.database_url), kafka)
    await exercise(ns, district, faults, faults.run, LOAD_SECONDS, "single broker")


@pytest.fixture
def cluster() -> Iterator[KafkaCluster]:
    kafka = KafkaCluster(3)
    try:
        kafka.start()
        yield kafka
    finally:
        kafka.stop()


@pytest.mark.timeout(600)
async def test_on_three_brokers_one_killed_under_load_nothing_is_lost_or_doubled(
    database_url: str, cluster: KafkaCluster, tmp_path: Path
) -> None:
    """Production's Kafka: replication factor 3, min.insync.replicas=2; a broker killed -9 and started again."""
    ns = Namespace.new(cluster.bootstrap, database_url, prefix="c")
    await ensure_topics(cluster.bootstrap, ns.topics.all(), partitions=3, replication_factor=3)
    district = District(ns, tmp_path, extra_env={"KAFKA_REPLICATION_FACTOR": "3"}).build()
    try:
        district.start()
        faults = Faults(district, LocalPostgres(database_url), KafkaBroker())

        async def plan() -> None:
            at = time.monotonic()
            await asyncio.sleep(4)
            await asyncio.to_thread(cluster.kill, 1)
            faults.note("kill -9 broker 1 of 3")
            await asyncio.sleep(max(0.0, at + 12 - time.monotonic()))
            await asyncio.to_thread(cluster.restart, 1)
            faults.note("broker 1 answers again")
            await faults.kill_service("deadlines")

        await exercise(ns, district, faults, plan, CLUSTER_LOAD_SECONDS, "three brokers")
    finally:
        district.stop()
        for schema in ns.schemas:
            with contextlib.suppress(Exception):
                await drop_schema(database_url, schema)


async def exercise(ns: Any, district: District, faults: Faults, plan: Any, load_seconds: float, name: str) -> None:
    """Sends the load while `plan` causes the faults, waits for the district to settle, and checks every count."""
    rng = random.Random(int(os.environ.get("FAULTS_SEED", "14")))
    started = time.monotonic()

    async with httpx.AsyncClient() as client:
        clients = Clients(district, client)
        work: list[asyncio.Task[None]] = []

        async def load() -> None:
            next_tip = 0.0
            while time.monotonic() - started < load_seconds:
                work.append(asyncio.create_task(clients.report(rng)))
                if time.monotonic() >= next_tip:
                    work.append(asyncio.create_task(clients.tip(rng)))
                    next_tip = time.monotonic() + 1 / TIPS_PER_SECOND
                await asyncio.sleep(1 / REPORTS_PER_SECOND)

        async def faults_then_readiness() -> dict[str, float]:
            """Runs the faults; then, from the last one, how long until each service answers ready."""
            await plan()
            waits = [_first_ready(client, district.url(name), faults.last) for name in SERVICES]
            return dict(zip(SERVICES, await asyncio.gather(*waits), strict=True))

        try:
            _, ready_after = await asyncio.gather(load(), faults_then_readiness())
            await asyncio.gather(*work)
        finally:
            for task in work:
                task.cancel()
            await asyncio.to_thread(faults.restore)
        load_done = time.monotonic()

        # Settled: nothing waits in an outbox, every deadline due by now has fired, every delivery is done.
        settle_started = time.monotonic()
        conn = await asyncpg.connect(ns.database_url)
        try:
            await eventually(lambda: _settled(conn, ns), timeout=SETTLE_WITHIN, step=1.0, what="the district settled")
            settled_after = round(time.monotonic() - settle_started, 1)
            deliveries = await conn.fetch(
                f"SELECT id, alert_id, stage, recipient_id, channel, state FROM {ns.schema('notify')}.deliveries"
            )
        finally:
            await conn.close()

        cases = _events(await read_all(ns.kafka, ns.topics.cases, timeout=60, idle=3))
        deadlines = _events(await read_all(ns.kafka, ns.topics.deadlines, timeout=60, idle=3))
        dead = [r for s in SERVICES for r in await read_all(ns.kafka, ns.topics.dlq(s), timeout=10, idle=1.5)]
        figures = await _figures(client, district)

    reports = sum(1 for c in clients.cases.values() if c.kind == "report")
    received = []
    for hit in district.receiver.delivered_all():
        payload = Webhook(district.secrets[hit.path]).verify(hit.body, hit.headers)  # raises on a bad signature
        assert isinstance(payload, dict)
        received.append(Received(hit.path, hit.headers["webhook-id"], payload["alert"]["id"], payload["stage"]))
    on_scene = {c.case_id: c.on_scene_at for c in clients.cases.values() if c.on_scene_at is not None}
    counts = checks.deadlines_once(deadlines, on_scene, datetime.now(UTC))
    problems = {
        # 1. Every report that got a 202 is on cases.v1 once, and every police action.
        "reports": checks.reports_once(set(clients.cases), cases),
        "actions": checks.actions_once([(c, a) for c, a, _ in clients.actions], cases),
        # 2. Every deadline due by now fired once, and a breach only when it was one.
        "deadlines": counts.problems,
        # 3. Every alert stage reached each recipient once, every signature checks out, every delivery arrived.
        "alerts": checks.stages_once(received, [dict(d) for d in deliveries]),
        # 4. Reporting counts the same reports and breaches.
        "reporting": checks.figures_agree(
            figures, reports=reports, tips=len(clients.cases) - reports, standing_breaches=counts.standing_breaches
        ),
        # 5. Nothing dead-lettered; 6. no 5xx but a 503 with Retry-After.
        "dead letters": [f"dead-lettered: {dict(r.headers)}" for r in dead[:3]],
        "server errors": clients.server_errors[:5],
    }
    assert all(d["channel"] == "webhook" for d in deliveries)
    assert not any(problems.values()), {k: v for k, v in problems.items() if v}

    summary = {
        "system": name,
        "load_seconds": load_seconds,
        "seconds_until_the_last_action": round(load_done - started, 1),
        "faults": [what for _, what in faults.log],
        "accepted_reports": reports,
        "accepted_tips": len(clients.cases) - reports,
        "police_actions": len(clients.actions),
        "http_statuses": dict(clients.statuses),
        "refused_connections_retried": clients.refused_connections,
        "deadlines_started": counts.started,
        "breaches_standing": counts.standing_breaches,
        "breaches_withdrawn": counts.withdrawn,
        "webhook_deliveries": len({r.webhook_id for r in received}),
        "duplicate_webhook_requests_absorbed": len(received) - len({r.webhook_id for r in received}),
        "ready_seconds_after_last_fault": ready_after,
        "settled_seconds_after_ready": settled_after,
    }
    print("\nfault test:", json.dumps(summary))
    if os.environ.get("FAULTS_SUMMARY"):
        with Path(os.environ["FAULTS_SUMMARY"]).open("a", encoding="utf-8") as out:
            out.write(json.dumps(summary) + "\n")
    for name, seconds in ready_after.items():
        assert seconds <= READY_WITHIN, f"{name} ready only {seconds} s after the last fault"


async def _first_ready(client: httpx.AsyncClient, url: str, since: float) -> float:
    """Seconds from `since` until the service first answers /readyz with 200 (given up after two minutes)."""
    while not await _ready(client, url):
        if time.monotonic() - since > 120:
            return float("inf")
        await asyncio.sleep(0.5)
    return round(time.monotonic() - since, 1)


async def _ready(client: httpx.AsyncClient, url: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return (await client.get(url + "/readyz", timeout=3)).status_code == 200
    return False


async def _settled(conn: asyncpg.Connection, ns: Any) -> bool:
    for service in SERVICES:
        if await conn.fetchval(f"SELECT count(*) FROM {ns.schema(service)}.outbox WHERE sent_at IS NULL"):
            return False
    deadlines = ns.schema("deadlines")
    if await conn.fetchval(
        f"SELECT count(*) FROM {deadlines}.deadlines WHERE next_fire_at < now() - interval '2 seconds'"
    ):
        return False
    notify = ns.schema("notify")
    return not await conn.fetchval(f"SELECT count(*) FROM {notify}.deliveries WHERE state = 'pending'")


def _events(records: list[Any]) -> list[CloudEvent]:
    return [CloudEvent.from_bytes(r.value) for r in records]


async def _figures(client: httpx.AsyncClient, district: District) -> dict[str, Any]:
    period = Period.containing(datetime.now(UTC), "year")

    async def read() -> dict[str, Any] | None:
        answer = await client.get(
            f"{district.url('reporting')}/v1/council-reports/kreds/{period}.json", headers=COUNCIL, timeout=30
        )
        return answer.json()["current"] if answer.status_code == 200 else None

    figures: dict[str, Any] | None = None
    previous: dict[str, Any] | None = None
    # Reporting consumes the same topics: read until two readings a few seconds apart agree.
    end = time.monotonic() + 60
    while time.monotonic() < end:
        figures = await read()
        if figures is not None and previous is not None and figures == previous:
            return figures
        previous = figures
        await asyncio.sleep(3)
    assert figures is not None, "reporting never answered the council report"
    return figures
