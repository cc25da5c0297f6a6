"""The CloudEvents 1.0 envelope (structured JSON) that every event on the bus travels in."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii  # json.dumps of one str, without its per-call set-up
from typing import Any, ClassVar, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
)

from shared.reference import normalize_kommunekode

TYPE_PREFIX = "dk.politi."
# The CloudEvents Distributed Tracing extension's attributes (W3C Trace Context): in structured mode they
# are members of the JSON envelope, beside the Kafka message's own `traceparent` header (shared/outbox.py).
TRACE_ATTRIBUTES = ("traceparent", "tracestate")


def utc_rfc3339(value: datetime) -> str:
    """RFC 3339 in UTC with a Z, as docs/contract.md fixes for every time on the bus."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class EventData(BaseModel):
    """Base of every event's `data`: strict, immutable, and registered by its CloudEvents type.

    Each event type names the field that says when its fact happened (`time_field`), which is the
    envelope's `time`; a type whose time is not one field overrides `occurred` instead.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_type: ClassVar[str] = ""
    topic: ClassVar[str] = ""
    time_field: ClassVar[str] = ""
    # Optional fields added after events of this type were first published: left out of a
    # deterministic event id while unset, so an id computed before they existed stays the same.
    added_fields: ClassVar[frozenset[str]] = frozenset()
    registry: ClassVar[dict[str, type[EventData]]] = {}

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        # Runs once the model's fields are known, so a type without a time is refused before it is registered.
        super().__pydantic_init_subclass__(**kwargs)
        if not cls.__dict__.get("event_type"):
            return
        if cls.occurred is EventData.occurred:
            field = cls.model_fields.get(cls.time_field)
            if field is None or field.annotation not in (datetime, AwareDatetime):
                raise TypeError(f"{cls.__name__}.time_field {cls.time_field!r} is not one of its required times")
        if cls.event_type in EventData.registry:
            raise TypeError(f"event type {cls.event_type} registered twice")
        EventData.registry[cls.event_type] = cls

    @property
    def occurred(self) -> datetime:
        """When the fact happened: the envelope's `time`."""
        value: datetime = getattr(self, self.time_field)
        return value

    @field_serializer("*", when_used="json")
    def _times_in_utc(self, value: Any) -> Any:
        if isinstance(value, datetime):
            return utc_rfc3339(value)
        return value


@dataclass(frozen=True, slots=True)
class EventMeta:
    """What a use case reads from the envelope besides its payload, once the consumer has parsed it."""

    id: uuid.UUID
    subject: str  # the case id
    kommune: str
    time: datetime


class UnknownEventType(ValueError):
    """The envelope is well-formed but names a type this code does not know (a newer producer)."""


def _unset(value: object) -> bool:
    return value is None


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 envelope; `kommune` is our extension attribute, the main reporting dimension.

    `traceparent` and `tracestate` are the Distributed Tracing extension: set by the outbox relay as it
    publishes (the same context as the message's `traceparent` header), left out while unset, never part
    of an event's id. An event without them, or with a value that is not a valid trace context, is read
    all the same: tracing never makes an event invalid.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: uuid.UUID = Field(default_factory=uuid.uuid4, description="Unique per event; the idempotency key")
    source: str = Field(min_length=1, pattern=r"^/")
    type: str = Field(pattern=r"^dk\.politi\.[a-z_]+\.[a-z_]+$")
    subject: str = Field(min_length=1, description="The case id")
    time: AwareDatetime
    datacontenttype: Literal["application/json"] = "application/json"
    kommune: str
    data: dict[str, Any]
    traceparent: str | None = Field(
        default=None,
        exclude_if=_unset,
        description="CloudEvents Distributed Tracing extension: the W3C traceparent the event was published in",
    )
    tracestate: str | None = Field(
        default=None,
        exclude_if=_unset,
        description="CloudEvents Distributed Tracing extension: the W3C tracestate, when the trace has one",
    )

    @field_validator("traceparent", "tracestate", mode="before")
    @classmethod
    def _trace_context_or_none(cls, value: Any) -> str | None:
        # A producer's odd value (a number, an empty string) is no trace context, not a reason to refuse the event.
        return value if isinstance(value, str) and value else None

    @field_validator("kommune", mode="before")
    @classmethod
    def _known_kommune(cls, value: Any) -> str:
        code = normalize_kommunekode(value) if isinstance(value, str | int) else None
        if code is None:
            raise ValueError(f"{value!r} is not a kommunekode of the district")
        return code

    @field_serializer("time")
    def _time_rfc3339(self, value: datetime) -> str:
        return utc_rfc3339(value)

    @classmethod
    def of(
        cls,
        data: EventData,
        *,
        source: str,
        subject: str,
        kommune: str,
        time: datetime,
        event_id: uuid.UUID | None = None,
    ) -> CloudEvent:
        """Wraps a typed payload in an envelope; `time` is when the fact happened, in UTC."""
        if not data.event_type:
            raise TypeError(f"{type(data).__name__} has no event type")
        return cls(
            id=event_id or uuid.uuid4(),
            source=source,
            type=data.event_type,
            subject=subject,
            time=time,
            kommune=kommune,
            data=data.model_dump(mode="json"),
        )

    @classmethod
    def from_bytes(cls, raw: bytes | str) -> CloudEvent:
        return cls.model_validate_json(raw)

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    def payload(self) -> EventData:
        """The typed `data`; raises UnknownEventType for a type this code does not know."""
        model = EventData.registry.get(self.type)
        if model is None:
            raise UnknownEventType(self.type)
        return model.model_validate(self.data)

    @property
    def case_id(self) -> str:
        return self.subject

    @property
    def meta(self) -> EventMeta:
        return EventMeta(id=self.id, subject=self.subject, kommune=self.kommune, time=self.time)


def with_trace_context(value: bytes, context: Mapping[str, str]) -> bytes:
    """The structured envelope `value` with its Distributed Tracing attributes set to `context`'s `traceparent`
    and `tracestate` (any it had are replaced; none are added when `context` has none).

    The relay's step for every message it publishes, so the common case (an envelope as `to_bytes` wrote
    it, with no such member yet) appends the members without parsing. Bytes that are not a JSON object
    are returned as they are: the consumer dead-letters them, as it would have without this.
    """
    attributes = {k: context[k] for k in TRACE_ATTRIBUTES if context.get(k)}
    body = value.rstrip()
    if body.startswith(b"{") and body.endswith(b"}") and b'"trace' not in body:
        if not attributes:
            return value
        head = body[:-1].rstrip()
        members = ",".join(f'"{k}":{encode_basestring_ascii(v)}' for k, v in attributes.items()).encode()
        return head + (b"" if head == b"{" else b",") + members + b"}"
    try:
        document = json.loads(value)
    except ValueError:
        return value
    if not isinstance(document, dict):
        return value
    for name in TRACE_ATTRIBUTES:
        document.pop(name, None)
    document.update(attributes)
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def trace_context_of(value: bytes | None) -> dict[str, str]:
    """The Distributed Tracing attributes of a structured envelope (none when it has none or is not JSON)."""
    if not value or b'"traceparent"' not in value:
        return {}
    try:
        document = json.loads(value)
    except ValueError:
        return {}
    if not isinstance(document, dict):
        return {}
    return {k: v for k in TRACE_ATTRIBUTES if isinstance(v := document.get(k), str) and v}


def envelope(data: EventData, *, source: str, kommune: str, event_id: uuid.UUID | None = None) -> CloudEvent:
    """The envelope a service publishes `data` in: subject the case, time when the fact happened (`occurred`).

    Every service builds its envelopes here, so subject and time mean the same on every topic.
    """
    case_id = getattr(data, "case_id", None)
    if not isinstance(case_id, uuid.UUID):
        raise TypeError(f"{type(data).__name__} names no case")
    return CloudEvent.of(
        data, source=source, subject=str(case_id), kommune=kommune, time=data.occurred, event_id=event_id
    )


__all__ = [
    "TRACE_ATTRIBUTES",
    "CloudEvent",
    "EventData",
    "EventMeta",
    "UnknownEventType",
    "ValidationError",
    "envelope",
    "trace_context_of",
    "utc_rfc3339",
    "with_trace_context",
]
