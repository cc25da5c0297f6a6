"""Processes that die at the worst moment (SIGKILL, no clean-up), for the durability tests.

python -m tests.support.crash relay    KAFKA DB SCHEMA PREFIX   # dies after Kafka confirmed, before marking sent
python -m tests.support.crash relay-freeze KAFKA DB SCHEMA IDLE_TIMEOUT  # freezes (SIGSTOP) at that moment
python -m tests.support.crash consumer KAFKA DB SCHEMA PREFIX GROUP  # dies after the effect, before the commit
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from shared.consumer import ReliableConsumer
from shared.db import create_pool
from shared.events import CloudEvent
from shared.kafka import EventProducer, make_broker
from shared.outbox import OutboxRelay
from shared.settings import Topics
from tests.support.platform import effect_consumer


def die(*_: object) -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


async def relay(kafka: str, db: str, schema: str) -> None:
    pool = await create_pool(db, schema, application="crash-relay")
    producer = EventProducer(kafka, client_id="crash-relay")

    async def after_publish(ids: list[int]) -> None:
        print(f"published {len(ids)}", flush=True)
        die()

    await OutboxRelay(pool, producer, service="testsvc", schema=schema, after_publish=after_publish).relay_once()


async def frozen_relay(kafka: str, db: str, schema: str, idle_timeout: str) -> None:
    """Stops itself (SIGSTOP) holding the relay's transaction and row locks, as a process cut off would."""
    pool = await create_pool(db, schema, application="frozen-relay", idle_in_transaction_timeout=float(idle_timeout))
    producer = EventProducer(kafka, client_id="frozen-relay")

    async def after_publish(ids: list[int]) -> None:
        print(f"published {len(ids)}", flush=True)
        os.kill(os.getpid(), signal.SIGSTOP)

    await OutboxRelay(pool, producer, service="testsvc", schema=schema, after_publish=after_publish).relay_once()


async def consumer(kafka: str, db: str, schema: str, prefix: str, group: str, before_effect: bool = False) -> None:
    pool = await create_pool(db, schema, application="crash-consumer")
    producer = EventProducer(kafka, client_id="crash-consumer")
    broker = make_broker(kafka, service="testsvc")
    spec = effect_consumer(Topics(prefix), group)
    if before_effect:

        async def dies_on_receipt(conn: object, event: CloudEvent, payload: object) -> None:
            print(f"received {event.id}", flush=True)
            # Longer than aiokafka's 5 s auto-commit interval: a consumer that commits before or
            # regardless of the effect (FastStream's default ACK_FIRST) has committed by now.
            await asyncio.sleep(6)
            die()

        spec.handler = dies_on_receipt  # type: ignore[assignment]
    worker = ReliableConsumer(spec, pool=pool, producer=producer)

    async def after_effect(event: CloudEvent) -> None:
        print(f"applied {event.id}", flush=True)
        die()

    worker.after_effect = after_effect
    worker.subscribe(broker)
    await broker.start()
    await asyncio.sleep(120)  # killed long before this


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    if mode == "relay":
        asyncio.run(relay(*args[:3]))
    elif mode == "relay-freeze":
        asyncio.run(frozen_relay(*args[:4]))
    elif mode in ("consumer", "consumer-before"):
        kafka, db, schema, prefix, group = args
        asyncio.run(consumer(kafka, db, schema, prefix, group, before_effect=mode == "consumer-before"))
    else:
        sys.exit(f"unknown mode {mode}")
