"""Reading what really landed on a topic, for assertions."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord


async def read_all(
    bootstrap: str, topic: str, *, expect: int | None = None, timeout: float = 20.0, idle: float = 1.5
) -> list[ConsumerRecord[Any, Any]]:
    """Every record of `topic` from the start; waits for `expect` records (or `idle` quiet seconds)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    records: list[ConsumerRecord[Any, Any]] = []
    try:
        deadline = time.monotonic() + timeout
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            got = [r for rs in batch.values() for r in rs]
            if got:
                records.extend(got)
                quiet_since = time.monotonic()
            if expect is not None and len(records) >= expect:
                # a little longer, so duplicates beyond `expect` are seen too
                await asyncio.sleep(0.3)
                extra = await consumer.getmany(timeout_ms=300)
                records.extend(r for rs in extra.values() for r in rs)
                break
            if expect is None and time.monotonic() - quiet_since > idle:
                break
    finally:
        await consumer.stop()
    return records
