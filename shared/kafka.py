"""Kafka plumbing: topic creation, a producer that cannot hang, and the FastStream broker factory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.conn import CloseReason
from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError
from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import REGISTRY

from shared.aio import within

log = logging.getLogger(__name__)


class PublishError(RuntimeError):
    """Kafka did not confirm a publish in time; the caller keeps the message and retries."""


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)


class TopicMisconfigured(RuntimeError):
    """A topic exists with settings weaker than the service requires; an operator must fix it."""


def min_insync_replicas_for(replication_factor: int) -> int | None:
    """2 when there are 3 or more replicas: an acks=all write then survives losing one broker.

    None (the broker's default, 1) for fewer replicas, where 2 would refuse every write as soon
    as one broker is away.
    """
    return 2 if replication_factor >= 3 else None


def check_replication(replication_factor: int, environment: str | None) -> None:
    """Refuses a single copy of every event outside development: one lost disk loses the bus."""
    if replication_factor == 1 and (environment or "").lower() != "development":
        raise ValueError(
            f"KAFKA_REPLICATION_FACTOR=1 with ENVIRONMENT={environment or 'unset'}: set 3 (topics then get"
            " min.insync.replicas=2); a single copy is for ENVIRONMENT=development only"
        )


async def ensure_topics(
    bootstrap: str,
    topics: Sequence[str],
    *,
    partitions: int,
    replication_factor: int,
    min_insync_replicas: int | None = None,
    timeout: float = 15.0,
) -> None:
    """Creates the topics that are missing, then checks every one has `min.insync.replicas`.

    `min_insync_replicas` defaults to what the replication factor calls for
    (`min_insync_replicas_for`). Existing topics are never altered: one with a lower setting
    raises TopicMisconfigured naming it, since acks=all alone promises little without it.
    """
    required = min_insync_replicas if min_insync_replicas is not None else min_insync_replicas_for(replication_factor)
    configs = {"min.insync.replicas": str(required)} if required else None
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    await within(admin.start(), timeout)
    try:
        existing = set(await within(admin.list_topics(), timeout))
        missing = [t for t in topics if t not in existing]
        if missing:
            await _create(admin, missing, partitions, replication_factor, configs, timeout)
        # Topics just created got the setting above (and the broker may not describe them yet).
        if required and (older := [t for t in topics if t in existing]):
            await _check_min_insync(admin, older, required, timeout)
    finally:
        await within(admin.close(), timeout)


async def _create(
    admin: AIOKafkaAdminClient,
    topics: list[str],
    partitions: int,
    replication_factor: int,
    configs: dict[str, str] | None,
    timeout: float,
) -> None:
    try:
        response = await within(
            admin.create_topics(
                [
                    NewTopic(t, num_partitions=partitions, replication_factor=replication_factor, topic_configs=configs)
                    for t in topics
                ]
            ),
            timeout,
        )
    except TopicAlreadyExistsError:
        return  # another service created them at the same moment
    for topic_error in getattr(response, "topic_errors", []):
        name, code = topic_error[0], topic_error[1]
        if code not in (0, TopicAlreadyExistsError.errno):
            raise RuntimeError(f"could not create topic {name}: Kafka error code {code}")
    log.info("topics created", extra={"topics": topics, "partitions": partitions, "configs": configs or {}})


async def _check_min_insync(admin: AIOKafkaAdminClient, topics: Sequence[str], required: int, timeout: float) -> None:
    responses = await within(
        admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, t) for t in topics]), timeout
    )
    weak = []
    for response in responses:
        # Each resource: (error_code, error_message, resource_type, resource_name, config_entries).
        for code, message, _type, name, entries in response.resources:
            if code:
                raise RuntimeError(f"could not read the configuration of topic {name}: {message or code}")
            value = next((int(e[1]) for e in entries if e[0] == "min.insync.replicas"), 1)
            if value < required:
                weak.append(f"{name} ({value})")
    if weak:
        raise TopicMisconfigured(
            f"topics with min.insync.replicas below {required}: {', '.join(weak)}; set it with kafka-configs.sh"
            f" --alter --entity-type topics --entity-name NAME --add-config min.insync.replicas={required}"
        )


async def topic_retention(bootstrap: str, topics: Sequence[str], timeout: float = 15.0) -> dict[str, timedelta | None]:
    """How long Kafka keeps each topic's events, as it applies it (the topic's `retention.ms`, or the
    broker's default when the topic sets none); None: for ever (`retention.ms=-1`, or a compacted
    topic, which keeps each key's last event). Raises for a topic Kafka cannot describe."""
    if not topics:
        return {}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    await within(admin.start(), timeout)
    try:
        responses = await within(
            admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, t) for t in topics]), timeout
        )
    finally:
        await within(admin.close(), timeout)
    found: dict[str, timedelta | None] = {}
    for response in responses:
        for code, message, _type, name, entries in response.resources:
            if code:
                raise RuntimeError(f"could not read the configuration of topic {name}: {message or code}")
            config = {e[0]: e[1] for e in entries}
            retention_ms = int(config.get("retention.ms") or -1)
            compacted = "compact" in str(config.get("cleanup.policy", ""))
            found[name] = None if retention_ms < 0 or compacted else timedelta(milliseconds=retention_ms)
    missing = set(topics) - set(found)
    if missing:
        raise RuntimeError(f"Kafka described no configuration of topics {sorted(missing)}")
    return found


async def delete_topics(bootstrap: str, topics: Sequence[str], timeout: float = 15.0) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    await within(admin.start(), timeout)
    try:
        existing = set(await admin.list_topics())
        doomed = [t for t in topics if t in existing]
        if doomed:
            await within(admin.delete_topics(doomed), timeout)
    finally:
        await within(admin.close(), timeout)


async def describe_kafka(bootstrap: str, timeout: float = 3.0) -> dict[str, Any] | None:
    """The cluster as describe-cluster reports it (cluster_id, brokers, ...), or None when it does not answer."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    try:
        await within(admin.start(), timeout)
        cluster: dict[str, Any] = await within(admin.describe_cluster(), timeout)
        return cluster
    except Exception:
        return None
    finally:
        try:
            await within(admin.close(), timeout)
        except Exception:  # noqa: S110 - closing a client that never connected
            pass


async def kafka_reachable(bootstrap: str, timeout: float = 3.0) -> bool:
    """Ready means describe-cluster answers, not that a port is open."""
    return await describe_kafka(bootstrap, timeout) is not None


class EventProducer:
    """An idempotent, acks=all producer whose every wait is bounded.

    aiokafka's idempotent producer can wait forever when the broker is gone
    (aio-libs/aiokafka#1101): batches never expire and `stop()` hangs. So every send
    runs under a timeout, and after a timeout the producer is thrown away and built
    anew on the next send. A timeout means "not confirmed": the caller keeps the
    message and sends it again, and consumers deduplicate by event id.
    """

    def __init__(self, bootstrap: str, *, client_id: str, send_timeout: float = 10.0) -> None:
        self._bootstrap = bootstrap
        self._client_id = client_id
        self._timeout = send_timeout
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def _ensure(self) -> AIOKafkaProducer:
        if self._producer is not None:
            return self._producer
        producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            enable_idempotence=True,
            acks="all",
            linger_ms=5,
            request_timeout_ms=int(self._timeout * 1000),
            retry_backoff_ms=200,
            max_batch_size=256 * 1024,
        )
        try:
            await within(producer.start(), self._timeout)
        except BaseException:
            await self._abandon(producer)
            raise
        self._producer = producer
        return producer

    async def _abandon(self, producer: AIOKafkaProducer) -> None:
        """Stops a producer within 2 s; one that cannot stop (Kafka frozen) is torn down instead.

        CancelledError passes (after the tear-down): swallowing it would keep a relay running
        through its shutdown.
        """
        try:
            await within(producer.stop(), 2.0)
        except asyncio.CancelledError:
            _tear_down(producer)
            raise
        except Exception:
            _tear_down(producer)

    async def send_batch(self, messages: Sequence[OutgoingMessage]) -> None:
        """Returns once Kafka has acknowledged every message (acks=all), or raises PublishError."""
        if not messages:
            return
        async with self._lock:
            try:
                await within(self._send_all(messages), self._timeout)
            except (asyncio.CancelledError, KeyboardInterrupt):
                raise
            except BaseException as exc:
                broken, self._producer = self._producer, None
                if broken is not None:
                    await self._abandon(broken)
                raise PublishError(f"{type(exc).__name__}: {exc}".strip(": ")) from exc

    async def _send_all(self, messages: Sequence[OutgoingMessage]) -> None:
        producer = await self._ensure()
        futures = [await producer.send(m.topic, value=m.value, key=m.key, headers=m.headers or None) for m in messages]
        await asyncio.gather(*futures)

    async def stop(self) -> None:
        async with self._lock:
            if self._producer is not None:
                producer, self._producer = self._producer, None
                await self._abandon(producer)


def _tear_down(producer: AIOKafkaProducer) -> None:
    """Ends what a cut-off `stop()` leaves running: the sender task, the client's tasks and sockets.

    Left alone, each abandoned producer keeps retrying its batch (a long Kafka stall leaked about
    three a minute) and delivers it again when the broker heals. aiokafka has no forced close, so
    this reaches into its internals (0.14); every step is guarded so a newer version that renamed
    something degrades to the old leak, never to an error.
    """
    abandoned = KafkaConnectionError("producer abandoned: Kafka did not confirm in time")
    sender = getattr(producer, "_sender", None)
    task = getattr(sender, "sender_task", None)
    if task is not None and not task.done():
        # Its own done-callback would fail the batches through aiokafka's transaction manager,
        # which raises for a non-transactional producer; the batches are failed below instead.
        with contextlib.suppress(Exception):
            task.remove_done_callback(sender._fail_all)  # type: ignore[union-attr]
        task.add_done_callback(_consume_outcome)
        task.cancel()
    # Fails the batches it held, so nothing is delivered later and every waiter (the flush inside
    # the cut-off stop(), a send awaiting its result) returns now.
    accumulator = getattr(producer, "_message_accumulator", None)
    if accumulator is not None:
        with contextlib.suppress(Exception):
            accumulator.fail_all(abandoned)
    client = getattr(producer, "client", None)
    sync_task = getattr(client, "_sync_task", None)
    if sync_task is not None and not sync_task.done():
        sync_task.cancel()
    connections = getattr(client, "_conns", None) or {}
    for connection in list(connections.values()):
        # abort(), not close(): close() waits to flush what a frozen broker will never read.
        writer = getattr(connection, "_writer", None)
        with contextlib.suppress(Exception):
            if writer is not None:
                writer.transport.abort()
            connection.close(reason=CloseReason.SHUTDOWN)
    connections.clear()


def _consume_outcome(task: asyncio.Task[object]) -> None:
    """Retrieves a torn-down task's error, which nobody awaits (else asyncio warns at collection)."""
    if not task.cancelled():
        task.exception()


def bootstrap_servers(bootstrap: str) -> list[str]:
    """`KAFKA_BOOTSTRAP_SERVERS` ("host:port,host:port,...") as the list FastStream needs.

    aiokafka splits a comma-separated string by itself, but FastStream's KafkaBroker wraps a string
    in a list as one host, so "b1:9092,b2:9092" would become a single unresolvable address and the
    consumer would never start against a cluster.
    """
    servers = [s.strip() for s in bootstrap.split(",") if s.strip()]
    if not servers:
        raise ValueError("KAFKA_BOOTSTRAP_SERVERS is empty: give host:port, or several separated by commas")
    return servers


def make_broker(bootstrap: str, *, service: str) -> KafkaBroker:
    """The FastStream broker a service subscribes with.

    Services publish only through their outbox relay (EventProducer); should anything
    publish through this broker, it is idempotent with acks=all too.
    """
    return KafkaBroker(
        bootstrap_servers(bootstrap),
        client_id=f"mvsj-{service}",
        enable_idempotence=True,
        acks="all",
        request_timeout_ms=10_000,
        graceful_timeout=15.0,
        middlewares=[KafkaPrometheusMiddleware(registry=REGISTRY, app_name=service)],
        # Outside the "faststream" logger tree, so records reach our handler and format; the
        # per-message Received/Processed lines go to DEBUG (our consumer logs what matters).
        logger=logging.getLogger(f"mvsj.{service}.broker"),
        log_level=logging.DEBUG,
    )
