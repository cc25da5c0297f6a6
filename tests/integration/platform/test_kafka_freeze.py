"""A Kafka broker that stops answering (frozen, sockets open): shutdown stays prompt and nothing leaks.

The freeze is a TcpProxy that stops forwarding, with only the process under test routed through
it (tests/support/kafka_route.py), so the shared broker keeps serving everyone else.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from shared.db import create_pool
from shared.events import CloudEvent
from shared.kafka import EventProducer, OutgoingMessage, PublishError
from shared.outbox import enqueue
from tests.support.infra import ROOT, Namespace
from tests.support.kafka_read import read_all
from tests.support.kafka_route import client_connections_to, proxy_for, route_kafka_to
from tests.support.platform import sample_report
from tests.support.services import ServiceProcess, service_env
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import eventually


class RoutedService(ServiceProcess):
    """A service process whose every Kafka connection goes through the test's proxy."""

    def __init__(self, service: str, env: dict[str, str], log: Path, proxy: TcpProxy) -> None:
        super().__init__(service, env, log)
        self.proxy = proxy

    def start(self) -> RoutedService:
        out = self.log.open("ab")
        command = [sys.executable, "-m", "tests.support.kafka_route", str(self.proxy.port), f"services.{self.service}"]
        self.proc = subprocess.Popen(
            [*command, "serve"], cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT
        )  # fmt: skip
        return self


async def test_sigterm_during_a_kafka_freeze_ends_the_service_within_its_grace_period(
    ns: Namespace, tmp_path: Path
) -> None:
    proxy = await proxy_for(ns.kafka).start()
    env = service_env(ns, "intake", ENVIRONMENT="development", KAFKA_SEND_TIMEOUT_SECONDS="1")
    service = RoutedService("intake", env, tmp_path / "intake.log", proxy)
    service.migrate()
    pool = await create_pool(ns.database_url, ns.schema("intake"), application="tests")

    async def publish_one() -> None:
        async with pool.acquire() as conn, conn.transaction():
            await enqueue(conn, sample_report(), topic=ns.topics.cases)

    async def pending() -> int:
        return int(await pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL"))

    try:
        service.start()
        await asyncio.to_thread(service.wait_ready)  # in a thread: this loop runs the proxy
        await publish_one()
        await eventually(lambda: _none(pending), timeout=30, what="the relay publishes while Kafka answers")
        proxy.freeze()
        await publish_one()
        # The relay sends at once (NOTIFY), gives up after its 1 s send timeout, then spends up to
        # 2 s throwing the stuck producer away: the signal lands in that clean-up.
        await asyncio.sleep(1.6)
        assert service.proc is not None
        service.proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        try:
            code = await asyncio.to_thread(service.proc.wait, 20)  # well inside Kubernetes' 30 s grace period
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {time.monotonic() - started:.0f}s after SIGTERM: {service.tail()}")
        assert code in (0, -signal.SIGTERM), service.tail()  # uvicorn re-raises the signal after a clean shutdown
        assert await pending() == 1  # the frozen row waits in the outbox for the next start
    finally:
        proxy.thaw()
        service.kill()
        await pool.close()
        await proxy.stop()


async def _none(count: Callable[[], Awaitable[int]]) -> bool:
    return await count() == 0


def client_tasks() -> int:
    """Tasks of this event loop, the proxy's own left out."""
    return sum(1 for t in asyncio.all_tasks() if not getattr(t.get_coro(), "__qualname__", "").startswith("TcpProxy."))


def message(topic: str, event: CloudEvent) -> OutgoingMessage:
    return OutgoingMessage(topic, event.subject.encode(), event.to_bytes())


async def test_a_long_freeze_leaves_no_producer_behind(ns: Namespace) -> None:
    """Every send that times out throws its producer away: its task and connections must go with it,
    and the batch it held must not be delivered when the broker heals."""
    proxy = await proxy_for(ns.kafka).start()
    undo = route_kafka_to(proxy.port)
    producer = EventProducer(ns.kafka, client_id="test-freeze", send_timeout=0.5)
    first = sample_report(0)
    stuck = [sample_report(i) for i in range(1, 6)]
    tasks_idle = client_tasks()  # before any producer exists
    try:
        await producer.send_batch([message(ns.topics.cases, first)])
        proxy.freeze()
        for event in stuck:
            with pytest.raises(PublishError):
                await producer.send_batch([message(ns.topics.cases, event)])
        tasks_after, connections_after = client_tasks(), client_connections_to(proxy.port)

        proxy.thaw()
        await asyncio.sleep(3)  # time for a leaked producer to flush its batch
        records = await read_all(ns.kafka, ns.topics.cases, idle=1.0)
    finally:
        proxy.thaw()
        with contextlib.suppress(Exception):
            await producer.stop()
        undo()
        await proxy.stop()
    # Every send failed, so no producer is in use: none may still run or hold a connection.
    assert tasks_after <= tasks_idle, f"tasks {tasks_idle} -> {tasks_after}"
    assert connections_after == 0
    # A produce request already on the wire when Kafka froze may still be applied when it heals
    # (a frozen broker reads it from its socket later), but nothing is sent again: without the
    # tear-down every abandoned producer retries its batch and delivers it after the heal.
    delivered = [CloudEvent.from_bytes(r.value).id for r in records]
    assert first.id in delivered
    assert set(delivered) <= {first.id, stuck[0].id} and len(delivered) == len(set(delivered))
