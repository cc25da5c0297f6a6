"""The CloudEvents Distributed Tracing extension: the relay puts the publish span's W3C context into the
structured envelope as well as the Kafka header; envelopes without it (or with nonsense in it) are read
all the same, and an event's id never depends on it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from shared import tracing
from shared.consumer import continued_trace
from shared.events import CloudEvent, envelope
from shared.events.cases import CaseReported
from shared.events.envelope import trace_context_of, with_trace_context
from shared.outbox import _message, _publish_span

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE}-{PARENT}-01"
OTHER = f"00-{'a' * 32}-{'b' * 16}-01"
CASE = uuid.UUID("6f1c2b1e-8a7d-4a53-9d0e-4a2f1c3b5d7e")
T0 = datetime(2026, 3, 1, 8, 15, tzinfo=UTC)


def reported(**over: Any) -> CloudEvent:
    data = CaseReported(
        case_id=CASE, reference="MV-7K3Q-9F", category="burglary_home", focus_area="indbrud", received_at=T0
    )
    return envelope(data, source="/mvsj/intake", kommune="0265").model_copy(update=over)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    before = tracing._provider, tracing.exporting()
    tracing.in_memory(SimpleSpanProcessor(exporter))
    yield exporter
    tracing.use_provider(before[0], exporting=before[1])


def test_an_envelope_without_trace_context_is_written_as_before_and_read_with_or_without_it() -> None:
    event = reported()
    assert event.traceparent is None and event.tracestate is None
    body = json.loads(event.to_bytes())
    assert "traceparent" not in body and "tracestate" not in body  # unset: not written, not even as null

    traced = CloudEvent.from_bytes(json.dumps(body | {"traceparent": TRACEPARENT, "tracestate": "ro=1"}))
    assert (traced.traceparent, traced.tracestate) == (TRACEPARENT, "ro=1")
    assert traced.model_copy(update={"traceparent": None, "tracestate": None}) == event
    assert json.loads(traced.to_bytes()) == body | {"traceparent": TRACEPARENT, "tracestate": "ro=1"}
    # A producer's odd value is no trace context, and no reason to refuse the event.
    for odd in (17, "", None, ["x"], {"a": 1}):
        assert CloudEvent.from_bytes(json.dumps(body | {"traceparent": odd, "tracestate": odd})) == event


def test_with_trace_context_appends_the_members_to_an_envelope_and_replaces_old_ones() -> None:
    event = reported()
    raw = event.to_bytes()
    added = with_trace_context(raw, {"traceparent": TRACEPARENT, "tracestate": "congo=t61rcWkgMzE"})
    assert json.loads(added) == json.loads(raw) | {"traceparent": TRACEPARENT, "tracestate": "congo=t61rcWkgMzE"}
    assert added.startswith(raw[:-1])  # appended, nothing else rewritten
    assert with_trace_context(raw, {}) == raw  # outside a trace: the envelope as it was
    assert with_trace_context(raw, {"other": "x"}) == raw

    # Already there (a row republished by hand): replaced, with a tracestate the new context lacks removed.
    again = with_trace_context(added, {"traceparent": OTHER})
    assert json.loads(again) == json.loads(raw) | {"traceparent": OTHER}
    assert json.loads(with_trace_context(added, {})) == json.loads(raw)


def test_with_trace_context_keeps_data_that_merely_mentions_the_names_and_leaves_non_envelopes_alone() -> None:
    body = json.loads(reported().to_bytes())
    body["data"]["category"] = 'a "traceparent": trap'  # not a real category: what matters is the text
    raw = json.dumps(body, ensure_ascii=False).encode()
    out = json.loads(with_trace_context(raw, {"traceparent": TRACEPARENT}))
    assert out == body | {"traceparent": TRACEPARENT}
    assert json.loads(with_trace_context(b" {} ", {"traceparent": TRACEPARENT})) == {"traceparent": TRACEPARENT}
    for junk in (b"{not json", b"[1, 2]", b"", b'"traceparent"'):
        assert with_trace_context(junk, {"traceparent": TRACEPARENT}) == junk


def test_trace_context_of_reads_the_attributes_or_nothing() -> None:
    raw = with_trace_context(reported().to_bytes(), {"traceparent": TRACEPARENT, "tracestate": "ro=1"})
    assert trace_context_of(raw) == {"traceparent": TRACEPARENT, "tracestate": "ro=1"}
    assert trace_context_of(reported().to_bytes()) == {}
    for junk in (None, b"", b'{"traceparent": 5}', b'["traceparent"]', b'{"traceparent"'):
        assert trace_context_of(junk) == {}


def test_the_relay_s_message_says_the_publish_span_s_context_in_the_header_and_in_the_envelope(
    spans: InMemorySpanExporter,
) -> None:
    event = reported()
    row = {
        "event_id": event.id, "topic": "cases.v1", "key": event.subject, "value": event.to_bytes(),
        "headers": {"content-type": "application/cloudevents+json; charset=UTF-8", "event-type": event.type,
                    "traceparent": TRACEPARENT},
    }  # fmt: skip
    span = _publish_span(row)  # type: ignore[arg-type]  # a Record reads like a dict
    message = _message(row, span)  # type: ignore[arg-type]
    span.end()
    [published] = spans.get_finished_spans()
    assert published.kind is SpanKind.PRODUCER and published.parent is not None
    assert f"{published.parent.span_id:016x}" == PARENT  # the write's child, as before

    headers = {k: v.decode() for k, v in message.headers}
    assert headers["traceparent"].startswith(f"00-{TRACE}-") and headers["traceparent"] != TRACEPARENT
    sent = CloudEvent.from_bytes(message.value)
    assert sent.traceparent == headers["traceparent"]  # one hop: the same context twice
    assert sent.model_copy(update={"traceparent": None}) == event
    assert not [k for k in headers if k.startswith("ce_")]  # structured mode: no binary-mode headers


def record(headers: list[tuple[str, bytes]], value: bytes) -> Any:
    return SimpleNamespace(headers=headers, value=value)


def test_a_consumer_continues_the_header_s_trace_else_the_envelope_s_else_a_new_one() -> None:
    in_envelope = with_trace_context(reported().to_bytes(), {"traceparent": OTHER})

    def trace_id(context: Any) -> str | None:
        found = trace.get_current_span(context).get_span_context()
        return f"{found.trace_id:032x}" if found.is_valid else None

    assert trace_id(continued_trace(record([("traceparent", TRACEPARENT.encode())], in_envelope))) == TRACE
    assert trace_id(continued_trace(record([], in_envelope))) == "a" * 32  # headers lost on the way
    assert trace_id(continued_trace(record([("traceparent", b"garbage")], in_envelope))) == "a" * 32
    assert trace_id(continued_trace(record([], reported().to_bytes()))) is None
    assert trace_id(continued_trace(record([], b"{not json"))) is None
