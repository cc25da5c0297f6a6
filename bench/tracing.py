"""What tracing costs per report: intake (bench/intake.py's load) with trace export off and on.

One real intake process per round, in the bench namespace, takes WARMUP reports, then REPORTS from
CONCURRENCY connections, until the last event is on cases.v1; its CPU time over those REPORTS (HTTP,
use case, outbox, relay, and with export on the batch exporter's thread) is divided by REPORTS.
Each report makes four spans in intake: the request, the use case, the outbox write, the publish.
  - off: the default, no OTEL_EXPORTER_OTLP_ENDPOINT. Spans are begun with an always-off sampler
    (ids for the log lines and the outbox, nothing recorded or sent).
  - on: OTEL_EXPORTER_OTLP_ENDPOINT at the Jaeger `make up` runs, every trace sampled and exported
    over OTLP/HTTP (BatchSpanProcessor defaults), as `make demo` runs.
  - disabled: OTEL_SDK_DISABLED=true, OpenTelemetry's no-op: no span, no id, as before tracing. The
    difference to off is what spans cost while nothing is exported.
Rounds alternate (disabled, off, on, disabled, ...) so that a machine busy with something else hits
each alike; each variant's figures are the median of its rounds.

On a shared 2-core machine the per-report CPU moves by a few tenths of a millisecond from round to
round, so the same costs are also measured in this process with the CPU clock (`span_costs`): one
span begun and ended (with its context injected, as the relay does) under each variant, and the
OTLP exporter's CPU per span (protobuf encoding and the HTTP post to Jaeger, in batches of 512).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from bench.harness import namespace, percentile
from bench.intake import PARTITIONS, Arrivals, intake_process, post_reports
from shared import tracing

WARMUP = 300
REPORTS = 3000
ROUNDS = 3
JAEGER_QUERY = f"http://127.0.0.1:{os.environ.get('JAEGER_QUERY_PORT', '16686')}"
JAEGER_OTLP = f"http://127.0.0.1:{os.environ.get('JAEGER_OTLP_PORT', '4318')}"

VARIANTS: dict[str, dict[str, str]] = {
    "off": {"OTEL_TRACES_EXPORTER": "", "OTEL_EXPORTER_OTLP_ENDPOINT": ""},
    "on": {"OTEL_EXPORTER_OTLP_ENDPOINT": JAEGER_OTLP, "OTEL_TRACES_EXPORTER": "otlp"},
    "disabled": {"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": ""},
}


async def one_round(variant: str, seed: int, service_name: str) -> dict[str, float]:
    """One intake process in a namespace of its own (fresh topics and schema), as bench/intake.py measures it."""
    async with namespace(partitions=PARTITIONS) as ctx:
        log = Path(tempfile.mkdtemp(prefix=f"bench-tracing-{variant}-")) / "intake.log"
        service = intake_process(ctx, log, **VARIANTS[variant], OTEL_SERVICE_NAME=service_name)
        arrivals = Arrivals(ctx.kafka, ctx.topics.cases)
        service.migrate()
        service.start()
        try:
            service.wait_ready()
            await arrivals.start()
            await post_reports(service.port, WARMUP, seed=seed)
            await arrivals.wait_for(WARMUP)
            started = time.perf_counter()
            cpu_before = service.cpu_seconds()
            latencies, statuses, wall = await post_reports(service.port, REPORTS, seed=seed + 1)
            last = await arrivals.wait_for(WARMUP + REPORTS)
            cpu = service.cpu_seconds() - cpu_before
            memory = service.memory_kib()
        finally:
            service.stop()
            await arrivals.stop()
    accepted = sum(1 for s in statuses if s == 202)
    return {
        "cpu_ms_per_report": cpu / REPORTS * 1000,
        "accepted_per_s": accepted / wall,
        "report_to_kafka_per_s": REPORTS / (last - started),
        "latency_p50_ms": percentile(latencies, 50) * 1000,
        "latency_p99_ms": percentile(latencies, 99) * 1000,
        "peak_rss_mib": memory.get("VmHWM", 0) / 1024,
        "non_202": float(len(statuses) - accepted),
    }


class _Discard(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def span_costs(n: int = 20000, batches: int = 10) -> dict[str, float]:
    """CPU microseconds per span in this process: begun, given five attributes, injected, ended; and exported."""
    attributes = {"messaging.system": "kafka", "messaging.destination.name": "cases.v1", "messaging.message.id": "x",
                  "mvsj.event_type": "dk.politi.case.reported", "mvsj.case_id": str(uuid.uuid4())}  # fmt: skip
    recorded = InMemorySpanExporter()
    providers: dict[str, trace.TracerProvider] = {
        "disabled": trace.NoOpTracerProvider(),
        "off": TracerProvider(sampler=ALWAYS_OFF),
        "on_batched": TracerProvider(),  # recorded and queued for the exporter thread (which discards them)
        "on_recorded": TracerProvider(),
    }
    providers["on_batched"].add_span_processor(BatchSpanProcessor(_Discard()))  # type: ignore[attr-defined]
    providers["on_recorded"].add_span_processor(SimpleSpanProcessor(recorded))  # type: ignore[attr-defined]
    before = tracing._provider, tracing.exporting()
    costs: dict[str, float] = {}
    try:
        for name, provider in providers.items():
            tracing.use_provider(provider)
            started = time.process_time()
            for _ in range(n):
                with tracing.span("publish cases.v1", kind=tracing.SpanKind.PRODUCER, attributes=attributes):
                    tracing.inject()
            if isinstance(provider, TracerProvider):
                provider.force_flush()
            costs[f"span_{name}_us"] = round((time.process_time() - started) / n * 1e6, 1)
    finally:
        tracing.use_provider(before[0], exporting=before[1])
    spans = recorded.get_finished_spans()[: 512 * batches]
    exporter = OTLPSpanExporter(endpoint=f"{JAEGER_OTLP}/v1/traces")
    started = time.process_time()
    for i in range(0, len(spans), 512):
        exporter.export(spans[i : i + 512])
    costs["otlp_export_us_per_span"] = round((time.process_time() - started) / len(spans) * 1e6, 1)
    exporter.shutdown()  # type: ignore[no-untyped-call]
    return costs


async def jaeger_spans_of(service: str) -> int:
    """How many spans of `service` Jaeger holds now (the traces of the last hour, up to 100,000)."""
    params: dict[str, str | int] = {"service": service, "lookback": "1h", "limit": 100000}
    async with httpx.AsyncClient(timeout=120) as client:
        answer = await client.get(f"{JAEGER_QUERY}/api/traces", params=params)
    answer.raise_for_status()
    return sum(len(t["spans"]) for t in answer.json()["data"] or [])


async def run() -> dict[str, Any]:
    try:
        async with httpx.AsyncClient(timeout=3) as client:
            (await client.get(f"{JAEGER_QUERY}/api/services")).raise_for_status()
    except httpx.HTTPError as exc:
        raise SystemExit(f"no Jaeger answers at {JAEGER_QUERY} ({exc!r}): `make up` starts it") from None
    rounds: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
    order = [v for _ in range(ROUNDS) for v in ("disabled", "off", "on")]
    service_name = f"intake-bench-{uuid.uuid4().hex[:8]}"  # this run's spans, apart from any other's
    for i, variant in enumerate(order):
        result = await one_round(variant, seed=10 * i, service_name=service_name)
        rounds[variant].append(result)
        print(f"[bench] tracing {variant}: {result['cpu_ms_per_report']:.2f} ms CPU/report, "
              f"{result['accepted_per_s']:.0f} reports/s", flush=True)  # fmt: skip
    await asyncio.sleep(2.0)  # the last batch of spans reaches Jaeger (the service flushed it as it stopped)
    exported = await jaeger_spans_of(service_name)

    def median(variant: str, key: str) -> float:
        return round(statistics.median(r[key] for r in rounds[variant]), 2)

    keys = ("cpu_ms_per_report", "accepted_per_s", "report_to_kafka_per_s", "latency_p50_ms", "latency_p99_ms")
    summary: dict[str, Any] = {f"{key}_{v}": median(v, key) for v in VARIANTS for key in keys}
    cpu = {v: summary[f"cpu_ms_per_report_{v}"] for v in VARIANTS}
    summary["spans_cpu_ms_per_report"] = round(cpu["off"] - cpu["disabled"], 2)
    summary["export_cpu_ms_per_report"] = round(cpu["on"] - cpu["off"], 2)
    summary["export_on_cpu_share_over_disabled"] = round((cpu["on"] - cpu["disabled"]) / cpu["disabled"], 3)
    summary["spans_exported_per_report"] = round(exported / ((WARMUP + REPORTS) * ROUNDS), 2)
    micro = span_costs()
    summary |= micro
    # Intake's four spans per report (request, use case, outbox write, publish), from the in-process figures.
    summary["four_spans_off_over_disabled_ms"] = round(4 * (micro["span_off_us"] - micro["span_disabled_us"]) / 1000, 3)
    summary["four_spans_on_over_disabled_ms"] = round(
        4 * (micro["span_on_batched_us"] + micro["otlp_export_us_per_span"] - micro["span_disabled_us"]) / 1000, 3
    )
    details = {
        "reports_per_round": REPORTS,
        "warmup_per_round": WARMUP,
        "rounds": rounds,
        "order": order,
        "spans_in_jaeger_after": exported,
        "load_average_after": os.getloadavg(),
        "setup": "intake as one process (one uvicorn worker); load generator, intake, Kafka, Postgres and "
        "Jaeger share this machine; export over OTLP/HTTP to Jaeger v2 with traces in memory",
    }
    return {"summary": summary, "details": details}
