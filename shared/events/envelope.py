"""The CloudEvents 1.0 envelope (structured JSON) that every event on the bus travels in."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
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


def utc_rfc3339(value: datetime) -> str:
    """RFC 3339 in UTC with a Z, as docs/contract.md fixes for every time on the bus."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class EventData(BaseModel):
    """Base of every event's `data`: strict, immutable, and registered by its CloudEvents type."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_type: ClassVar[str] = ""
    topic: ClassVar[str] = ""
    registry: ClassVar[dict[str, type[EventData]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("event_type"):
            if cls.event_type in EventData.registry:
                raise TypeError(f"event type {cls.event_type} registered twice")
            EventData.registry[cls.event_type] = cls

    @field_serializer("*", when_used="json")
    def _times_in_utc(self, value: Any) -> Any:
        if isinstance(value, datetime):
            return utc_rfc3339(value)
        return value


class UnknownEventType(ValueError):
    """The envelope is well-formed but names a type this code does not know (a newer producer)."""


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 envelope; `kommune` is our extension attribute, the main reporting dimension."""

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


__all__ = ["CloudEvent", "EventData", "UnknownEventType", "ValidationError", "utc_rfc3339"]
