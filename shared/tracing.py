"""Tracing: one OpenTelemetry tracer provider per process, W3C trace context in and out, and the spans the
plumbing opens, so that one report is one trace from the portal's POST to the officer's webhook.

Where the context travels (README, "Tracing"): an HTTP request's `traceparent` header is
continued (shared/http.py); an outbox row keeps the context of the transaction that wrote it in its
headers column (shared/outbox.py), as the Debezium outbox keeps a span-context column; the relay's
publish span is that row's child and writes its own context as the Kafka message's `traceparent`
header and, the same, as the envelope's CloudEvents Distributed Tracing attributes; a consumer
continues from that header, or from the envelope's when the header is missing (shared/consumer.py);
notify's deliveries keep the context of the event that caused them, so the webhook or e-mail send, in
a later task, is in the trace too. What a timer fires later on its own account (a deadline's warning
or breach, an alert's escalation or reminder) begins a new trace (`new_trace`) whose first span links
(`link_to`) to the context its row kept from the trace that started it.

Configured by the standard variables, read once at start (`configure`, from shared/cli.py):
- `OTEL_TRACES_EXPORTER`: `otlp` or `none`. Unset: `otlp` when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
  `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, else `none`: export is off unless an endpoint is named.
- `OTEL_EXPORTER_OTLP_ENDPOINT`: e.g. http://127.0.0.1:4318 (OTLP over HTTP with protobuf, the only
  protocol pinned; `/v1/traces` is appended). `OTEL_EXPORTER_OTLP_HEADERS`, `_TIMEOUT`, `OTEL_BSP_*`
  as the SDK reads them.
- `OTEL_SERVICE_NAME` (default: the service's name), `OTEL_RESOURCE_ATTRIBUTES`,
  `OTEL_TRACES_SAMPLER`/`_ARG` (default: parent-based, always on), `OTEL_SDK_DISABLED` (`true`: the
  API's no-op, not even ids: log lines carry no trace_id, events no traceparent of their own).

With export off, spans are still begun but never recorded (an always-off sampler): they cost a few
microseconds, and every request and event still gets a trace id that log lines carry and the outbox
passes on, so logs join across services with or without a tracing backend.

Span attributes carry ids, codes, topics and counts only; never a report's text, a name, a phone
number, an address or a webhook's or e-mail's target (docs/DOMAIN.md, Privacy; tests/e2e/test_tracing.py).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Literal, ParamSpec, TypeVar

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

log = logging.getLogger(__name__)

Exporter = Literal["otlp", "none"]
P = ParamSpec("P")
T = TypeVar("T")
P_co = TypeVar("P_co", bound=trace.TracerProvider)
Attributes = Mapping[str, AttributeValue]

SERVICE_NAMESPACE = "mvsj"
INSTRUMENTATION = "mvsj"
OTLP_PROTOCOL = "http/protobuf"
# W3C Trace Context only: no baggage, which could carry anything a caller put in it.
_PROPAGATOR = TraceContextTextMapPropagator()
_TRUE = {"1", "true", "yes", "on"}

# Until `configure` runs (a test that builds an app in-process, a command that is not `serve`):
# spans are begun and never recorded, so ids exist and nothing is kept.
_provider: trace.TracerProvider = TracerProvider(sampler=ALWAYS_OFF)
# Asked for once per provider: get_tracer costs more than a span that is not recorded.
_tracer = _provider.get_tracer(INSTRUMENTATION)
_exporting = False


def exporter_from(environ: Mapping[str, str]) -> Exporter:
    """Which exporter the environment asks for; raises ValueError for one this project does not ship."""
    named = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if not named:
        endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        return "otlp" if endpoint else "none"
    if named not in ("otlp", "none"):
        raise ValueError(f"OTEL_TRACES_EXPORTER={named!r}: traces go out with 'otlp' or not at all ('none')")
    if named == "otlp":
        protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        if protocol and protocol.strip() != OTLP_PROTOCOL:
            raise ValueError(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: only {OTLP_PROTOCOL!r} is installed")
    return named  # type: ignore[return-value]


def configure(service: str, environ: Mapping[str, str] | None = None) -> str:
    """Sets this process's tracer provider from the standard variables; returns what it does, for the log.

    Raises ValueError for an exporter or protocol that is not installed (the service refuses to start).
    """
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() in _TRUE:
        # The API's no-op: no span, no id; log lines and events carry no trace (an incoming one is passed on).
        use_provider(trace.NoOpTracerProvider(), exporting=False)
        return "tracing disabled (OTEL_SDK_DISABLED): no spans and no trace ids"
    exporter = exporter_from(env)
    # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES are read by Resource.create; ours only fills gaps.
    attributes: dict[str, AttributeValue] = {"service.namespace": SERVICE_NAMESPACE}
    if not env.get("OTEL_SERVICE_NAME"):
        attributes[SERVICE_NAME] = service
    resource = Resource.create(attributes)
    if exporter == "none":
        use_provider(TracerProvider(resource=resource, sampler=ALWAYS_OFF), exporting=False)
        return "traces not exported (no OTEL_EXPORTER_OTLP_ENDPOINT, or OTEL_TRACES_EXPORTER=none)"
    # Imported only when used: the exporter brings protobuf and requests with it.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    provider = TracerProvider(resource=resource)  # sampler: OTEL_TRACES_SAMPLER, parent-based always-on by default
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    use_provider(provider, exporting=True)
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or "(default)"
    return f"traces exported over OTLP/HTTP to {endpoint} as service {resource.attributes.get(SERVICE_NAME)}"


def use_provider(provider: P_co, *, exporting: bool = True) -> P_co:
    """Makes `provider` the one every span of this process comes from (tests use an in-memory exporter)."""
    global _provider, _tracer, _exporting
    _provider = provider
    _tracer = provider.get_tracer(INSTRUMENTATION)
    _exporting = exporting
    return provider


def in_memory(processor: SpanProcessor) -> TracerProvider:
    """A provider that records every span into `processor` (a SimpleSpanProcessor of an in-memory exporter)."""
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: "test"}))
    provider.add_span_processor(processor)
    return use_provider(provider)


def exporting() -> bool:
    return _exporting


def tracer() -> trace.Tracer:
    return _tracer


def flush(timeout_seconds: float = 5.0) -> None:
    """Exports what is buffered (at a clean stop), waiting at most `timeout_seconds`."""
    if isinstance(_provider, TracerProvider):
        _provider.force_flush(int(timeout_seconds * 1000))


# --- context in and out ---


def extract(carrier: Mapping[str, str]) -> Context:
    """The context a W3C `traceparent` (and `tracestate`) in `carrier` names; an empty one when none is valid."""
    return _PROPAGATOR.extract(carrier)


def from_headers(headers: Iterable[tuple[str, bytes]] | None) -> Context:
    """The context in a Kafka message's headers (`traceparent`, `tracestate`)."""
    carrier = {k: v.decode("latin-1") for k, v in headers or () if k in ("traceparent", "tracestate") and v}
    return extract(carrier)


def names_a_span(context: Context) -> bool:
    """Whether `context` holds a valid span context (what `extract` found, if anything)."""
    return trace.get_current_span(context).get_span_context().is_valid


def inject(context: Context | None = None) -> dict[str, str]:
    """`traceparent` (and `tracestate` if any) of the current span, or of `context`; {} outside a trace."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=context)
    return carrier


def current_traceparent() -> str | None:
    return inject().get("traceparent")


def ids(span: Span | None = None) -> tuple[str, str] | None:
    """(trace id, span id) in hex of `span` or the current one, None outside a trace: what log lines carry."""
    context = (span or trace.get_current_span()).get_span_context()
    if not context.is_valid:
        return None
    return trace.format_trace_id(context.trace_id), trace.format_span_id(context.span_id)


# --- spans ---


@contextlib.contextmanager
def span(
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Attributes | None = None,
    parent: Context | None = None,
    links: Sequence[Link] = (),
) -> Iterator[Span]:
    """A span around the block, current inside it; an exception is recorded (type only) and re-raised.

    Only the exception's type is kept, never its message: a message may quote the data it failed on.
    """
    with tracer().start_as_current_span(
        name,
        context=parent,
        kind=kind,
        attributes=attributes,
        links=links,
        record_exception=False,
        set_status_on_exception=False,
    ) as current:
        try:
            yield current
        except BaseException as exc:
            failed(current, exc)
            raise


def use_case(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """A span around each call of a use case (handlers.py), named `<service>.<function>`: the handler's own
    span inside the request's or the event's."""
    module = fn.__module__.split(".")
    name = f"{module[1] if module[0] == 'services' and len(module) > 1 else fn.__module__}.{fn.__name__}"

    @functools.wraps(fn)
    async def traced(*args: P.args, **kwargs: P.kwargs) -> T:
        with span(name):
            return await fn(*args, **kwargs)

    return traced


def annotate(**ids: object) -> None:
    """Puts ids (a case's id or reference, an alert's id) on the current span as `mvsj.<name>`; None is left out.

    Ids and codes only: what an operator searches a trace by, never what a person wrote or is called.
    """
    current = trace.get_current_span()
    if current.is_recording():
        current.set_attributes({f"mvsj.{k}": str(v) for k, v in ids.items() if v is not None})


def failed(span: Span, error: BaseException | str) -> None:
    """Marks the span as failed, naming the error's type, never its text."""
    if not span.is_recording():
        return
    kind = error if isinstance(error, str) else type(error).__qualname__
    span.set_status(Status(StatusCode.ERROR, kind))
    span.set_attribute("error.type", kind)


def start(
    name: str,
    *,
    kind: SpanKind,
    parent: Context | None = None,
    attributes: Attributes | None = None,
    links: Sequence[Link] = (),
) -> Span:
    """A span that is not made current: for work done on behalf of many (the relay's publish of a batch)."""
    return tracer().start_span(name, context=parent, kind=kind, attributes=attributes, links=links)


def new_trace() -> Context:
    """A parent that is none: the span started with it begins a trace of its own, whatever is current.

    For work that happens later than what caused it and on its own account (a deadline's warning hours
    after the report): a new trace, linked (`link_to`) to the one that caused it rather than a child of it.
    """
    return Context()


def link_to(traceparent: str | None) -> list[Link]:
    """A link to the span a stored `traceparent` names (none when it names none)."""
    if not traceparent:
        return []
    context = trace.get_current_span(extract({"traceparent": traceparent})).get_span_context()
    return [Link(context)] if context.is_valid else []


__all__ = [
    "Attributes",
    "SpanKind",
    "annotate",
    "configure",
    "current_traceparent",
    "extract",
    "failed",
    "flush",
    "from_headers",
    "ids",
    "inject",
    "link_to",
    "names_a_span",
    "new_trace",
    "span",
    "start",
    "tracer",
    "use_case",
    "use_provider",
]
