"""Dead letters: a message a service cannot process goes to `dlq.<service>.v1` with the reason, untouched.

Reading one back (`DeadLetter`) and the message that re-publishes it (`redrive_message`) are here
too; the operator's tool around them is shared/dlq_tool.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.kafka import EventProducer, OutgoingMessage

HEADER_PREFIX = "dlq."
# The headers dead_letter_message adds, read back by the dlq tool.
ORIGINAL_TOPIC = "dlq.original.topic"
ORIGINAL_PARTITION = "dlq.original.partition"
ORIGINAL_OFFSET = "dlq.original.offset"
ERROR = "dlq.error"
ERROR_CLASS = "dlq.error.class"
SERVICE = "dlq.service"
CONSUMER = "dlq.consumer"
ATTEMPTS = "dlq.attempts"
FAILED_AT = "dlq.failed_at"


def dead_letter_message(
    *,
    dlq_topic: str,
    service: str,
    consumer: str,
    record: Any,
    error: BaseException | str,
    attempts: int,
) -> OutgoingMessage:
    """The original key, value and headers, plus where it came from and why it failed."""
    reason = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    headers = [(k, v) for k, v in (record.headers or ()) if not k.startswith(HEADER_PREFIX)]
    headers += [
        (ORIGINAL_TOPIC, record.topic.encode()),
        (ORIGINAL_PARTITION, str(record.partition).encode()),
        (ORIGINAL_OFFSET, str(record.offset).encode()),
        (ERROR, reason[:2000].encode()),
        (ERROR_CLASS, (type(error).__name__ if not isinstance(error, str) else "Rejected").encode()),
        (SERVICE, service.encode()),
        (CONSUMER, consumer.encode()),
        (ATTEMPTS, str(attempts).encode()),
        (FAILED_AT, datetime.now(UTC).isoformat().replace("+00:00", "Z").encode()),
    ]
    return OutgoingMessage(topic=dlq_topic, key=record.key, value=record.value or b"", headers=headers)


async def send_to_dlq(producer: EventProducer, message: OutgoingMessage) -> None:
    """Returns only when the DLQ entry is durable; raises PublishError otherwise (then do not commit)."""
    await producer.send_batch([message])


def headers_dict(headers: Any) -> dict[str, str]:
    """Kafka headers as text, for tests and tooling that read the DLQ."""
    return {k: v.decode(errors="replace") for k, v in (headers or ())}


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One message as read back from a DLQ topic: where it sits there, and what it carries."""

    dlq_topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]

    @classmethod
    def from_record(cls, record: Any) -> DeadLetter:
        return cls(
            dlq_topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.value or b"",
            headers=tuple((k, bytes(v or b"")) for k, v in (record.headers or ())),
        )

    @property
    def position(self) -> str:
        """`partition:offset` in the DLQ topic: the id an operator gives the tool."""
        return f"{self.partition}:{self.offset}"

    def header(self, name: str) -> str:
        return next((v.decode(errors="replace") for k, v in self.headers if k == name), "")

    @property
    def reason(self) -> str:
        return self.header(ERROR)

    @property
    def original_topic(self) -> str:
        return self.header(ORIGINAL_TOPIC)

    @property
    def original_position(self) -> str:
        return f"{self.header(ORIGINAL_PARTITION) or '?'}@{self.header(ORIGINAL_OFFSET) or '?'}"

    @property
    def attempts(self) -> str:
        return self.header(ATTEMPTS)

    @property
    def failed_at(self) -> str:
        return self.header(FAILED_AT)

    @property
    def original_headers(self) -> list[tuple[str, bytes]]:
        """The headers the message had on its original topic: the DLQ's own taken off."""
        return [(k, v) for k, v in self.headers if not k.startswith(HEADER_PREFIX)]

    @property
    def envelope(self) -> dict[str, Any] | None:
        """The value as a JSON object (the CloudEvent envelope), or None when it is not one."""
        try:
            parsed = json.loads(self.value)
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None

    @property
    def event_id(self) -> str:
        envelope = self.envelope
        return str(envelope.get("id", "")) if envelope else ""

    @property
    def event_type(self) -> str:
        envelope = self.envelope
        return str(envelope.get("type", "")) if envelope else ""


def redrive_message(entry: DeadLetter) -> OutgoingMessage:
    """The dead letter as it was before it failed: its original topic, key, bytes and headers."""
    if not entry.original_topic:
        raise ValueError(f"DLQ entry {entry.position} has no {ORIGINAL_TOPIC} header: its topic is unknown")
    return OutgoingMessage(topic=entry.original_topic, key=entry.key, value=entry.value, headers=entry.original_headers)
