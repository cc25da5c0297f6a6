"""Logging set-up: one JSON object (or one readable line) per record, carrying the ids of the request or
event it belongs to; never report text or contact data.

Every service configures its logs here once (`configure`, from shared/cli.py). `trace_id` and
`span_id` are those of the OpenTelemetry span current when the line is written (shared/tracing.py: the
HTTP request's, continuing an incoming W3C `traceparent`; the consumed event's, continuing the one
the producer sent; the relay's publish), so a line leads to its span and its trace in the tracing
backend. The other ids come from a context variable that the plumbing fills where it knows them: the
HTTP edge per request (`request_id`: the request's span id), the consumer per message (`event_id`,
`event_type`, `case_id` = the event's subject), the outbox relay per published row, the timers per
fired item. A line logged while they are set carries them, in whichever module it is written: no
logger needs to know.

The formatters also mask known personal fields (name, phone, e-mail, address, description, contact,
text) should one ever be passed in `extra`, at any depth: a log line is read by ops engineers, who
never see personal data (docs/DOMAIN.md).
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal, TextIO

from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter

LogFormat = Literal["json", "console"]

# The ids a line carries when known, in this order (after time, level, service, logger, message).
CONTEXT_FIELDS = ("trace_id", "span_id", "request_id", "event_id", "event_type", "case_id", "alert_id", "deadline_id")

# A key is personal when one of its words (split on anything but letters) is one of these.
PERSONAL_WORDS = frozenset({"name", "phone", "email", "mail", "address", "description", "contact", "text"})
MASK = "[masked]"

# color_message: uvicorn's ANSI copy of the message; taskName: Python 3.12's, not ours to report.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "color_message",
    "taskName",
}
_WORDS = re.compile(r"[a-z]+")

_context: ContextVar[Mapping[str, str]] = ContextVar("log_context", default=MappingProxyType({}))


@contextlib.contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Every line logged inside (in this task, and in tasks it starts meanwhile) carries these fields.

    None values are left out; the previous fields come back at the end.
    """
    token = _context.set(_with(fields))
    try:
        yield
    finally:
        _context.reset(token)


def bind_log_context(**fields: object) -> None:
    """Adds fields to the current context until the enclosing `log_context` ends (for ids learnt midway)."""
    _context.set(_with(fields))


def _with(fields: Mapping[str, object]) -> Mapping[str, str]:
    return {**_context.get(), **{k: str(v) for k, v in fields.items() if v is not None}}


def current_log_context() -> Mapping[str, str]:
    return _context.get()


def is_personal(key: str) -> bool:
    return any(word in PERSONAL_WORDS for word in _WORDS.findall(key.lower()))


def masked(value: Any, depth: int = 0) -> Any:
    """The value with every personal key's value replaced by MASK, in nested mappings and sequences too."""
    if depth > 5:
        return value
    if isinstance(value, Mapping):
        return {k: MASK if is_personal(str(k)) else masked(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [masked(v, depth + 1) for v in value]
    return value


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    """The context ids then the record's extras, personal ones masked; an explicit extra wins over the context."""
    extras = {k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")}
    found: dict[str, Any] = {k: v for k, v in _context.get().items() if k not in extras}
    span = trace.get_current_span().get_span_context()
    if span.is_valid:
        found.setdefault("trace_id", trace.format_trace_id(span.trace_id))
        found.setdefault("span_id", trace.format_span_id(span.span_id))
    for key in CONTEXT_FIELDS:  # the ids first, whichever way they came
        if key in extras:
            found[key] = extras.pop(key)
    ordered = {k: found[k] for k in CONTEXT_FIELDS if k in found} | {
        k: v for k, v in found.items() if k not in CONTEXT_FIELDS
    }
    for key, value in sorted(extras.items()):
        ordered[key] = MASK if is_personal(key) else masked(value)
    return ordered


class JsonLineFormatter(JsonFormatter):
    """One JSON object per line: time (UTC, ISO 8601), level, service, logger, message, the ids, the extras."""

    def __init__(self, service: str) -> None:
        super().__init__(json_ensure_ascii=False)
        self.service = service

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        log_data["time"] = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        log_data["level"] = record.levelname
        log_data["service"] = self.service
        log_data["logger"] = record.name
        log_data["message"] = record.message
        log_data.update(fields_of(record))
        for key in ("exc_info", "stack_info"):  # the traceback, as the JsonFormatter formatted it
            if message_dict.get(key):
                log_data[key] = message_dict[key]


class ConsoleFormatter(logging.Formatter):
    """A line a person reads in a terminal: time, level, service, logger, message, then key=value ids and extras."""

    def __init__(self, service: str) -> None:
        super().__init__(f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        fields = fields_of(record)
        if not fields:
            return base
        first, newline, rest = base.partition("\n")  # a traceback stays below the line
        pairs = " ".join(f"{k}={v}" for k, v in fields.items())
        return f"{first} {pairs}{newline}{rest}"


def formatter(service: str, log_format: LogFormat) -> logging.Formatter:
    return JsonLineFormatter(service) if log_format == "json" else ConsoleFormatter(service)


def configure(service: str, level: str = "INFO", log_format: LogFormat = "json", stream: TextIO | None = None) -> None:
    """Routes every logger (uvicorn's and FastStream's too) to one stderr handler in the chosen format."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(service, log_format))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiokafka logs every refused connection at ERROR while Kafka is down; the relay reports that itself.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL if level.upper() != "DEBUG" else logging.DEBUG)
    # uvicorn's access line has the client's address and the path as typed, query string included;
    # shared.http.RequestContext writes one per request instead, with the route template.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    # httpx logs every request's URL at INFO: a webhook's may carry a token or be a person's own endpoint.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "faststream"):
        # uvicorn and FastStream may give their loggers handlers of their own; one format for every line instead.
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
