"""Dead letters: a message a service cannot process goes to `dlq.<service>.v1` with the reason, untouched."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shared.kafka import EventProducer, OutgoingMessage

HEADER_PREFIX = "dlq."


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
        ("dlq.original.topic", record.topic.encode()),
        ("dlq.original.partition", str(record.partition).encode()),
        ("dlq.original.offset", str(record.offset).encode()),
        ("dlq.error", reason[:2000].encode()),
        ("dlq.error.class", (type(error).__name__ if not isinstance(error, str) else "Rejected").encode()),
        ("dlq.service", service.encode()),
        ("dlq.consumer", consumer.encode()),
        ("dlq.attempts", str(attempts).encode()),
        ("dlq.failed_at", datetime.now(UTC).isoformat().replace("+00:00", "Z").encode()),
    ]
    return OutgoingMessage(topic=dlq_topic, key=record.key, value=record.value or b"", headers=headers)


async def send_to_dlq(producer: EventProducer, message: OutgoingMessage) -> None:
    """Returns only when the DLQ entry is durable; raises PublishError otherwise (then do not commit)."""
    await producer.send_batch([message])


def headers_dict(headers: Any) -> dict[str, str]:
    """Kafka headers as text, for tests and tooling that read the DLQ."""
    return {k: v.decode(errors="replace") for k, v in (headers or ())}
