"""Intake benchmark: accepted reports per second and their latency, against a raw Kafka producer.

One real intake service process (`python -m services.intake serve`, one uvicorn worker, default
pool) runs against a bench schema and topic prefix:
  1. Warm-up: WARMUP reports, not measured.
  2. REPORTS valid reports, each with its own Idempotency-Key, from CONCURRENCY kept-alive HTTP
     connections in this process (a minimal client: see KeepAliveClient). Accepted/s = REPORTS /
     wall time; latency per request (p50, p99).
     A Kafka consumer in this process notes when the last of them is on cases.v1: that gives the
     end-to-end rate (report posted -> event on Kafka, through Postgres, the outbox and the relay).
     Then UNLOADED more, one at a time: the latency when nothing queues in front of a report.
  3. The reference: a raw aiokafka idempotent producer (acks=all, the relay's settings) sends
     REPORTS CloudEvents of the same size to a bench topic, all in flight at once (its best case),
     and once more one send_and_wait at a time from CONCURRENCY tasks (a handler that publishes
     directly and waits for Kafka).
The service's peak RSS is read from /proc/<pid>/status (VmHWM) before it stops.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.harness import BenchContext, namespace, percentile
from shared.kafka import delete_topics, ensure_topics
from tests.support.services import ServiceProcess, service_env

WARMUP = 300
UNLOADED = 300
REPORTS = 3000
CONCURRENCY = 32
PARTITIONS = 6
KOMMUNER = ["0253", "0259", "0265", "0269", "0306", "0316", "0326", "0329", "0336", "0350"]
PORTAL = {"Authorization": "Bearer dev-portal-key"}


def report_body(rng: random.Random) -> dict[str, Any]:
    """A valid report of a random category, as the portal sends it."""
    category = rng.choice(["burglary_home", "violence", "traffic", "drug_dealing_school", "youth_party_nuisance"])
    body: dict[str, Any] = {
        "category": category,
        "description": "Borger oplyser at der er sket noget på adressen i aftes; se venligst nærmere. " * 3,
        "kommune": rng.choice(KOMMUNER),
        "contact": {"name": "Bench Borger", "phone": f"2{rng.randrange(10**7):07d}"},
    }
    extra: dict[str, dict[str, Any]] = {
        "burglary_home": {"in_progress": rng.random() < 0.1, "address": "Strandvejen 12"},
        "violence": {"acute": rng.random() < 0.3},
        "drug_dealing_school": {"institution": "Roskilde Katedralskole"},
    }
    return body | extra.get(category, {})


def intake_process(ctx: BenchContext, log: Path, **extra: str) -> ServiceProcess:
    """The intake service as a child process in the bench namespace, with `extra` settings (bench/privacy.py,
    bench/tracing.py use it too)."""
    return ServiceProcess(
        "intake",
        service_env(
            ctx,
            "intake",
            KAFKA_PARTITIONS=str(PARTITIONS),
            # The limits protect production from a runaway client; here the benchmark is the load.
            INTAKE_RATE_LIMIT_PER_MINUTE="100000000",
            INTAKE_RATE_LIMIT_BURST="1000000",
            INTAKE_STATUS_RATE_LIMIT_PER_MINUTE="100000000",
            INTAKE_STATUS_RATE_LIMIT_BURST="1000000",
            LOG_LEVEL="WARNING",
            **extra,
        ),
        log,
    )


class Arrivals:
    """Counts records arriving on a topic, and notes when the count reaches a target."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False, group_id=None
        )
        self.count = 0
        self.sizes: list[int] = []
        self.reached: dict[int, float] = {}
        self.targets: list[int] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.consumer.start()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=100)
            for records in batch.values():
                self.count += len(records)
                self.sizes.extend(len(r.value) for r in records[:5] if len(self.sizes) < 50)
            now = time.perf_counter()
            for target in self.targets:
                if self.count >= target and target not in self.reached:
                    self.reached[target] = now

    async def wait_for(self, target: int, timeout: float = 120.0) -> float:
        self.targets.append(target)
        end = time.monotonic() + timeout
        while target not in self.reached:
            if time.monotonic() > end:
                raise TimeoutError(f"only {self.count} of {target} events arrived")
            await asyncio.sleep(0.02)
        return self.reached[target]

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.consumer.stop()


class KeepAliveClient:
    """A minimal HTTP/1.1 client on one kept-alive connection: the load generator.

    httpx spends about 6 ms of CPU per POST in the client; on a two-core machine that shares its
    cores with the service, Postgres and Kafka, it would measure httpx, not intake. This costs a
    tenth of that. It speaks only what the benchmarks need: POST JSON or GET, read a Content-Length body.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        status, _ = await self.request("POST", path, headers, body)
        return status

    async def request(self, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, bytes]:
        """(status, body) of one request on the kept-alive connection (a GET without a body, or JSON)."""
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        if body:
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        status = int((await self._reader.readline()).split()[1])
        length = 0
        while (line := await self._reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self._reader.readexactly(length)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


async def post_reports(
    port: int, n: int, seed: int, concurrency: int = CONCURRENCY
) -> tuple[list[float], list[int], float]:
    """n reports from `concurrency` connections; returns per-request latencies (s), statuses, wall time (s)."""
    rng = random.Random(seed)
    bodies = [json.dumps(report_body(rng)).encode() for _ in range(n)]
    latencies: list[float] = []
    statuses: list[int] = []
    queue = iter(range(n))

    async def worker() -> None:
        client = KeepAliveClient("127.0.0.1", port)
        try:
            for i in queue:
                headers = PORTAL | {"Idempotency-Key": str(uuid.uuid4())}
                started = time.perf_counter()
                statuses.append(await client.post("/v1/reports", bodies[i], headers))
                latencies.append(time.perf_counter() - started)
        finally:
            await client.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, statuses, time.perf_counter() - started


async def raw_producer(bootstrap: str, topic: str, payload: bytes, n: int) -> dict[str, float]:
    """The reference: aiokafka's idempotent acks=all producer with the relay's settings, nothing else."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", linger_ms=5, max_batch_size=256 * 1024
    )
    await producer.start()
    try:
        await producer.send_and_wait(topic, payload, key=b"warm-up")
        keys = [str(uuid.uuid4()).encode() for _ in range(n)]
        started = time.perf_counter()
        futures = [await producer.send(topic, payload, key=k) for k in keys]
        await asyncio.gather(*futures)
        pipelined = n / (time.perf_counter() - started)

        queue = iter(keys)
        waits: list[float] = []

        async def one_at_a_time() -> None:
            for key in queue:
                sent = time.perf_counter()
                await producer.send_and_wait(topic, payload, key=key)
                waits.append(time.perf_counter() - sent)

        started = time.perf_counter()
        await asyncio.gather(*(one_at_a_time() for _ in range(CONCURRENCY)))
        awaited = n / (time.perf_counter() - started)
    finally:
        await producer.stop()
    return {
        "pipelined_msgs_per_s": round(pipelined),
        "send_and_wait_x32_msgs_per_s": round(awaited),
        "send_and_wait_p50_ms": round(percentile(waits, 50) * 1000, 2),
        "send_and_wait_p99_ms": round(percentile(waits, 99) * 1000, 2),
    }


async def run() -> dict[str, Any]:
    async with namespace(partitions=PARTITIONS) as ctx:
        log = Path(tempfile.mkdtemp(prefix="bench-intake-")) / "intake.log"
        service = intake_process(ctx, log)
        arrivals = Arrivals(ctx.kafka, ctx.topics.cases)
        service.migrate()
        service.start()
        try:
            service.wait_ready()
            await arrivals.start()
            _, warm_statuses, _ = await post_reports(service.port, WARMUP, seed=1)
            await arrivals.wait_for(WARMUP)
            e2e_started = time.perf_counter()
            cpu_before = service.cpu_seconds()
            latencies, statuses, wall = await post_reports(service.port, REPORTS, seed=2)
            last_on_kafka = await arrivals.wait_for(WARMUP + REPORTS)
            service_cpu = service.cpu_seconds() - cpu_before
            # One client at a time: the latency of a report when nothing queues in front of it.
            unloaded, unloaded_statuses, _ = await post_reports(service.port, UNLOADED, seed=3, concurrency=1)
            memory = service.memory_kib()
        finally:
            service.stop()
            await arrivals.stop()
        event_bytes = round(sum(arrivals.sizes) / max(1, len(arrivals.sizes)))

        raw_topic = f"{ctx.topics.prefix}bench.raw.v1"
        await ensure_topics(ctx.kafka, [raw_topic], partitions=PARTITIONS, replication_factor=1)
        try:
            raw = await raw_producer(ctx.kafka, raw_topic, b"x" * event_bytes, REPORTS)
        finally:
            await delete_topics(ctx.kafka, [raw_topic])

    accepted = sum(1 for s in statuses if s == 202)
    accepted_per_s = accepted / wall
    e2e_per_s = REPORTS / (last_on_kafka - e2e_started)
    summary = {
        "accepted_reports_per_s": round(accepted_per_s),
        "latency_p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "latency_p99_ms": round(percentile(latencies, 99) * 1000, 2),
        "unloaded_latency_p50_ms": round(percentile(unloaded, 50) * 1000, 2),
        "unloaded_latency_p99_ms": round(percentile(unloaded, 99) * 1000, 2),
        "report_to_kafka_per_s": round(e2e_per_s),
        "raw_producer_msgs_per_s": raw["pipelined_msgs_per_s"],
        "ratio_accepted_to_raw": round(accepted_per_s / raw["pipelined_msgs_per_s"], 3),
        "raw_send_and_wait_x32_msgs_per_s": raw["send_and_wait_x32_msgs_per_s"],
        "ratio_accepted_to_raw_send_and_wait": round(accepted_per_s / raw["send_and_wait_x32_msgs_per_s"], 3),
        "service_peak_rss_mib": round(memory.get("VmHWM", 0) / 1024, 1),
        "non_202": len(statuses) - accepted + sum(1 for s in warm_statuses + unloaded_statuses if s != 202),
    }
    details = {
        "reports": REPORTS,
        "warmup": WARMUP,
        "concurrency": CONCURRENCY,
        "partitions": PARTITIONS,
        "event_bytes": event_bytes,
        "wall_seconds": round(wall, 3),
        "latency_ms": {p: round(percentile(latencies, p) * 1000, 2) for p in (50, 90, 99, 99.9, 100)},
        "service_memory_kib": memory,
        # CPU the service spent per report, HTTP and relay included: what the rate costs on any machine.
        "service_cpu_ms_per_report": round(service_cpu / REPORTS * 1000, 2),
        "load_average_after": os.getloadavg(),
        "raw_producer": raw,
        "setup": "one uvicorn worker, pool_max_size 10; load generator, service, Kafka and Postgres share this machine",
    }
    return {"summary": summary, "details": details}
