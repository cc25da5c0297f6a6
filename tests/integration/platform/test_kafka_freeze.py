"""A Kafka broker that stops answering (frozen, sockets open): shutdown stays prompt and nothing leaks.

The freeze is a TcpProxy that stops forwarding, with only the process under test routed through
it (tests/support/kafka_route.py), so the shared broker keeps serving everyone else.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shared.db import create_pool
from shared.outbox import enqueue
from tests.support.infra import ROOT
from tests.support.platform import sample_report
from tests.support.services import ServiceProcess, service_env
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import eventually


def proxy_to(bootstrap: str) -> TcpProxy:
    host, _, port = bootstrap.rpartition(":")
    return TcpProxy(host, int(port))


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


async def test_sigterm_during_a_kafka_freeze_ends_the_service_within_its_grace_period(ns, tmp_path) -> None:
    proxy = await proxy_to(ns.kafka).start()
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


async def _none(count) -> bool:  # type: ignore[no-untyped-def]
    return await count() == 0
