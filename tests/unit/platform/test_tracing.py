"""Tracing: the standard variables choose the exporter; a request's span continues its `traceparent`, is
named by route template and carries no path as typed; log lines name the span they were written in."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from shared import tracing
from shared.http import install_problem_handlers, install_request_context
from shared.logs import configure

pytestmark = pytest.mark.unit

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    before = tracing._provider, tracing.exporting()
    tracing.in_memory(SimpleSpanProcessor(exporter))
    yield exporter
    tracing.use_provider(before[0], exporting=before[1])


def test_export_is_off_unless_an_endpoint_or_the_exporter_is_named() -> None:
    assert tracing.exporter_from({}) == "none"
    assert tracing.exporter_from({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}) == "otlp"
    assert tracing.exporter_from({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://x:4318/v1/traces"}) == "otlp"
    assert (
        tracing.exporter_from({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318", "OTEL_TRACES_EXPORTER": "none"})
        == "none"
    )
    assert tracing.exporter_from({"OTEL_TRACES_EXPORTER": "OTLP"}) == "otlp"
    with pytest.raises(ValueError, match="zipkin"):
        tracing.exporter_from({"OTEL_TRACES_EXPORTER": "zipkin"})
    with pytest.raises(ValueError, match="grpc"):
        tracing.exporter_from({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})


def test_configure_says_what_it_does_and_export_off_still_gives_ids() -> None:
    before = tracing._provider, tracing.exporting()
    try:
        said = tracing.configure("intake", {})
        assert "not exported" in said and not tracing.exporting()
        with tracing.span("a request") as span:
            assert not span.is_recording()  # nothing kept ...
            found = tracing.ids()
            assert found is not None and found[0] != "0" * 32  # ... yet the ids exist, for the logs
            sent = str(tracing.current_traceparent())
            assert sent.startswith(f"00-{found[0]}-{found[1]}-") and int(sent[-2:], 16) & 1 == 0  # not sampled
        said = tracing.configure("intake", {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
        assert "127.0.0.1:4318" in said and "intake" in said and tracing.exporting()
        said = tracing.configure("intake", {"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"})
        assert "disabled" in said and not tracing.exporting()
        with tracing.span("a request"):
            assert tracing.ids() is None and tracing.inject() == {}  # the no-op: nothing at all
    finally:
        tracing.use_provider(before[0], exporting=before[1])


def test_only_a_valid_traceparent_is_continued() -> None:
    good = tracing.extract({"traceparent": f"00-{TRACE}-{PARENT}-01"})
    with tracing.span("child", parent=good):
        assert tracing.ids() is not None and tracing.ids()[0] == TRACE  # type: ignore[index]
    for bad in (
        "", "garbage", f"00-{'0' * 32}-{PARENT}-01", f"00-{TRACE}-{'0' * 16}-01", f"ff-{TRACE}-{PARENT}-01",
        f"00-{TRACE}-{PARENT}-01\nx=1",
    ):  # fmt: skip
        with tracing.span("root", parent=tracing.extract({"traceparent": bad})):
            assert tracing.ids()[0] != TRACE, bad  # type: ignore[index]
    assert tracing.inject() == {}  # nothing to pass on outside a trace
    assert tracing.from_headers([("traceparent", f"00-{TRACE}-{PARENT}-01".encode()), ("other", b"x")])


def edge_app() -> FastAPI:
    app = FastAPI()
    router = APIRouter()

    @router.get("/v1/cases/{case_id}")
    async def case(case_id: str, q: str = "") -> dict[str, str]:
        logging.getLogger("services.test.http").info("looked up")
        return {"case_id": case_id}

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug with mette.testesen@example.dk in it")

    app.include_router(router)
    install_problem_handlers(app)
    install_request_context(app)
    return app


async def call(app: FastAPI, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        return await client.get(path, headers=headers)


async def test_a_request_s_span_continues_its_traceparent_by_route_and_without_the_path(
    spans: InMemorySpanExporter,
) -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    out = io.StringIO()
    configure("intake", "INFO", "json", stream=out)
    try:
        answer = await call(edge_app(), "/v1/cases/c-1?q=mette.testesen@example.dk",
                            {"traceparent": f"00-{TRACE}-{PARENT}-01"})  # fmt: skip
        assert answer.status_code == 200
        assert (await call(edge_app(), "/boom")).status_code == 500
        await call(edge_app(), "/healthz")  # a probe: no span
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    first, boom = spans.get_finished_spans()
    assert first.name == "GET /v1/cases/{case_id}" and first.kind is SpanKind.SERVER
    assert first.context is not None and first.parent is not None
    assert f"{first.context.trace_id:032x}" == TRACE and f"{first.parent.span_id:016x}" == PARENT
    assert dict(first.attributes or {}) == {
        "http.request.method": "GET", "http.route": "/v1/cases/{case_id}", "http.response.status_code": 200,
        "mvsj.case_id": "c-1",
    }  # fmt: skip
    assert boom.name == "GET /boom" and boom.status.status_code is StatusCode.ERROR
    assert "mette" not in json.dumps([dict(s.attributes or {}) for s in (first, boom)])
    # The route's line names the request's span; the request id is that span's id.
    [looked_up] = [json.loads(line) for line in out.getvalue().splitlines() if "looked up" in line]
    assert looked_up["trace_id"] == TRACE and looked_up["span_id"] == f"{first.context.span_id:016x}"
    assert looked_up["request_id"] == looked_up["span_id"]


async def test_a_use_case_is_a_span_of_its_own_inside_the_request_s(spans: InMemorySpanExporter) -> None:
    @tracing.use_case
    async def report_case(n: int) -> int:
        tracing.annotate(reference="MV-1234-AB", nothing=None)
        return n + 1

    with tracing.span("POST /v1/reports", kind=SpanKind.SERVER):
        assert await report_case(1) == 2
    inner, outer = spans.get_finished_spans()
    assert inner.name.endswith(".report_case") and inner.parent is not None and outer.context is not None
    assert inner.parent.span_id == outer.context.span_id
    assert dict(inner.attributes or {}) == {"mvsj.reference": "MV-1234-AB"}
