"""A service's running parts in one place: pool, outbox relay, Kafka consumers, background loops.

Kafka being down at start-up does not stop a service: topics, consumers and the relay
keep retrying in the background and /readyz says what is missing. Postgres is needed
to start (nothing can be accepted without it), so start-up waits for it with a clear log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import asyncpg
from faststream.kafka import KafkaBroker

from shared import tracing
from shared.aio import within
from shared.backoff import Backoff
from shared.clock import Clock, CorrectedClock
from shared.consumer import ConsumerSpec, ReliableConsumer
from shared.db import Migration, clock_offset, create_pool, ping
from shared.health import Health
from shared.kafka import (
    EventProducer,
    TopicMisconfigured,
    check_replication,
    ensure_topics,
    kafka_reachable,
    make_broker,
)
from shared.metrics import CLOCK_SKEW
from shared.outbox import OnPublished, OutboxRelay
from shared.settings import ServiceSettings
from shared.timers import every

log = logging.getLogger(__name__)

BackgroundLoop = Callable[["ServiceRuntime"], Awaitable[None]]

# How often the host's clock is compared with Postgres's, and the skew worth a warning.
CLOCK_CHECK_SECONDS = 10.0
CLOCK_SKEW_WARNING_SECONDS = 1.0
# How long stop() waits for a cancelled background task, and how often it cancels one that lingers.
STOP_GRACE_SECONDS = 5.0
STOP_ATTEMPTS = 3
# How often the loop-stall gauges are set.
LOOP_GAUGES_SECONDS = 5.0


class NotMigrated(RuntimeError):
    pass


async def check_migrated(pool: asyncpg.Pool, migrations: Sequence[Migration], schema: str, service: str) -> None:
    """Start-up refuses a schema that lacks migrations: they are a separate step, not a side effect."""
    async with pool.acquire() as conn:
        exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
        applied = (
            set() if not exists else {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        )
    missing = [m.version for m in migrations if m.version not in applied]
    if missing:
        raise NotMigrated(
            f"schema '{schema}' lacks migrations {missing}; run `python -m services.{service} migrate` first"
        )


class ServiceRuntime:
    def __init__(
        self,
        settings: ServiceSettings,
        *,
        service: str,
        migrations: Sequence[Migration],
        consumers: Sequence[ConsumerSpec] = (),
        loops: Sequence[BackgroundLoop] = (),
        pool_max_size: int = 10,
        on_published: OnPublished | None = None,
        clock: Clock | None = None,
    ) -> None:
        check_replication(settings.kafka_replication_factor, settings.environment)
        self.settings = settings
        self.service = service
        self.migrations = migrations
        self.consumer_specs = list(consumers)
        self.loops = list(loops)
        self.pool_max_size = pool_max_size
        self.on_published = on_published
        # "Now" for everything the service stamps or schedules: the host's clock (or a test's)
        # corrected to Postgres's, so hosts whose clocks drift still agree (hardening 19).
        # A service that hands its parts the clock before the runtime exists passes a CorrectedClock itself.
        self.clock = clock if isinstance(clock, CorrectedClock) else CorrectedClock(clock)
        self._clock_warned = False
        self.pool: asyncpg.Pool | None = None
        self.producer = EventProducer(
            settings.kafka_bootstrap_servers,
            client_id=f"mvsj-{service}",
            send_timeout=settings.kafka_send_timeout_seconds,
        )
        self.relay: OutboxRelay | None = None
        self.broker: KafkaBroker | None = None
        self.consumers: list[ReliableConsumer] = []
        self.consuming = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._kafka_checked = (0.0, False)
        # Whether each background loop makes progress: /readyz, /healthz and the loop metrics read it.
        self.health = Health(
            service, ready_bound=settings.loop_ready_bound_seconds, live_bound=settings.loop_live_bound_seconds
        )

    @property
    def db(self) -> asyncpg.Pool:
        assert self.pool is not None, "runtime not started"
        return self.pool

    async def _connect_db(self) -> asyncpg.Pool:
        backoff = Backoff()
        while True:
            try:
                return await create_pool(
                    self.settings.database_url,
                    self.settings.db_schema,
                    application=f"mvsj-{self.service}",
                    max_size=self.pool_max_size,
                )
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                delay = backoff.next()
                log.warning("waiting for Postgres at DATABASE_URL (%r); retrying in %.0fs", exc, delay)
                await asyncio.sleep(delay)

    async def start(self) -> None:
        self.pool = await self._connect_db()
        await check_migrated(self.pool, self.migrations, self.settings.db_schema, self.service)
        await self.measure_clock()  # corrected before the first request is served
        self._spawn(every(CLOCK_CHECK_SECONDS, self.measure_clock, failure="clock skew not measured"), "clock")
        self.relay = OutboxRelay(
            self.pool,
            self.producer,
            service=self.service,
            schema=self.settings.db_schema,
            batch_size=self.settings.outbox_batch_size,
            poll_seconds=self.settings.outbox_poll_seconds,
            on_published=self.on_published,
            progress=self.health.loop("outbox relay", sleeps_up_to=self.settings.outbox_poll_seconds),
        )
        self._spawn(self.relay.run(), "outbox-relay")
        self._spawn(every(LOOP_GAUGES_SECONDS, self._publish_health, failure="loop gauges not updated"), "health")
        if self.consumer_specs:
            self.broker = make_broker(self.settings.kafka_bootstrap_servers, service=self.service)
            for spec in self.consumer_specs:
                consumer = ReliableConsumer(
                    spec,
                    pool=self.pool,
                    producer=self.producer,
                    progress=self.health.loop(f"consumer {spec.name}", idle_ok=True),
                )
                consumer.subscribe(self.broker)
                self.consumers.append(consumer)
        self._spawn(self._start_kafka_side(), "kafka-start")
        for loop in self.loops:
            self._spawn(loop(self), getattr(loop, "__name__", "loop"))

    async def measure_clock(self) -> None:
        """Compares the host's clock with Postgres's and corrects `clock` by the difference."""
        offset = await clock_offset(self.db, self.clock.base)
        self.clock.offset = offset
        skew = -offset.total_seconds()
        CLOCK_SKEW.labels(self.service).set(skew)
        if abs(skew) >= CLOCK_SKEW_WARNING_SECONDS and not self._clock_warned:
            log.warning(
                "this host's clock is %.1f s %s of Postgres's; correcting by it (check NTP)",
                abs(skew), "ahead" if skew > 0 else "behind",
            )  # fmt: skip
        self._clock_warned = abs(skew) >= CLOCK_SKEW_WARNING_SECONDS

    def _spawn(self, coro: Awaitable[Any], name: str) -> None:
        task = asyncio.ensure_future(coro)
        task.set_name(f"{self.service}:{name}")
        task.add_done_callback(self._task_done)
        self._tasks.append(task)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s died", task.get_name(), exc_info=task.exception())

    async def _start_kafka_side(self) -> None:
        """Creates topics and starts consumers, retrying while Kafka is away."""
        delay = 1.0
        while True:
            try:
                await ensure_topics(
                    self.settings.kafka_bootstrap_servers,
                    self.settings.topics.all(),
                    partitions=self.settings.kafka_partitions,
                    replication_factor=self.settings.kafka_replication_factor,
                )
                if self.broker is not None:
                    await within(self.broker.start(), 30.0)
                self.consuming.set()
                log.info("kafka side started", extra={"consumers": len(self.consumers)})
                return
            except asyncio.CancelledError:
                raise
            except TopicMisconfigured as exc:
                # Consumers stay off until an operator fixes the topics; checked again every 15 s.
                log.error("refusing to consume: %s", exc)
                delay = 15.0
                await asyncio.sleep(delay)
                continue
            except Exception as exc:
                log.warning("Kafka not ready (%r); retrying in %.0fs", exc, delay)
                if self.broker is not None:
                    with contextlib.suppress(Exception):
                        await within(self.broker.stop(), 10.0)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 15.0)

    async def stop(self) -> None:
        # Offsets of finished messages whose commit is still on its way: sent before the consumers
        # close, so a restart does not read them again (the inbox would drop them, at some cost).
        with contextlib.suppress(Exception):
            await within(asyncio.gather(*(c.flush_commits() for c in self.consumers)), 5.0)
        if self.broker is not None:
            with contextlib.suppress(Exception):
                await within(self.broker.stop(), 20.0)
        await self._cancel_tasks()
        await self.producer.stop()
        if self.pool is not None:
            with contextlib.suppress(Exception):
                await within(self.pool.close(), 10.0)
        # The spans of the last moments, before the process exits (in a thread: the exporter blocks).
        await asyncio.to_thread(tracing.flush, 5.0)

    async def _cancel_tasks(self) -> None:
        """Cancels the background tasks and waits for them; one that ignores it is named and cancelled again.

        A loop that swallows its cancellation (shared/aio.py says how that happened once) would
        otherwise hold the shutdown forever with nothing in the log.
        """
        pending = {task for task in self._tasks if not task.done()}
        for _attempt in range(STOP_ATTEMPTS):
            if not pending:
                break
            for task in pending:
                task.cancel()
            _done, pending = await asyncio.wait(pending, timeout=STOP_GRACE_SECONDS)
            if pending:
                log.error(
                    "background tasks %s still running %.0f s after being cancelled",
                    sorted(t.get_name() for t in pending), STOP_GRACE_SECONDS,
                )  # fmt: skip
        if pending:
            log.error("stopping without background tasks %s", sorted(t.get_name() for t in pending))
        self._tasks.clear()

    async def _publish_health(self) -> None:
        self.health.publish()

    async def stalled_loops(self) -> dict[str, float]:
        """Loops past their readiness bound (a dependency away, or stuck): the instance cannot do its work."""
        return self.health.stalled()

    async def stuck_loops(self) -> dict[str, float]:
        """Loops stalled past the liveness bound although Postgres and Kafka answer: a restart would cure it."""
        return await self.health.live(self._dependencies_answer)

    async def _dependencies_answer(self) -> bool:
        return await self.postgres_ready() and await self.kafka_ready()

    async def postgres_ready(self) -> bool:
        return self.pool is not None and await ping(self.pool)

    async def kafka_ready(self) -> bool:
        checked_at, ok = self._kafka_checked
        if time.monotonic() - checked_at < 5.0:
            return ok
        ok = await kafka_reachable(self.settings.kafka_bootstrap_servers)
        self._kafka_checked = (time.monotonic(), ok)
        return ok

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Any) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.stop()
