"""Composition root of the deadlines service: the one place that knows every part and wires them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI

from services.deadlines.adapters import repository
from services.deadlines.adapters.rules_file import load_rules
from services.deadlines.domain.rules import RuleSet
from services.deadlines.entrypoints.consumer import CASE_EVENTS, case_consumer
from services.deadlines.entrypoints.http import deadlines_router
from services.deadlines.entrypoints.progress import ConsumerProgress, EndOffsets
from services.deadlines.entrypoints.timers import DeadlineScheduler
from services.deadlines.metrics import OpenDeadlineGauges, observe_published
from services.deadlines.settings import DeadlinesSettings
from shared.app import service_app
from shared.asyncapi import asyncapi_document
from shared.auth import ApiKeys
from shared.clock import Clock
from shared.db import Migration, migrations_in, shared_migrations
from shared.events import deadlines as deadline_events
from shared.inbox import purge_inbox_loop
from shared.runtime import ServiceRuntime
from shared.timers import every

SERVICE = "deadlines"
VERSION = "1.0.0"


def migrations() -> list[Migration]:
    return shared_migrations() + migrations_in("services.deadlines.migrations")


def build_app(
    settings: DeadlinesSettings | None = None,
    *,
    clock: Clock | None = None,
    extra_loops: list[Callable[[ServiceRuntime], Awaitable[None]]] | None = None,
) -> FastAPI:
    """Builds the service; the rules file and key file are checked here, so a bad one stops start-up."""
    settings = settings or DeadlinesSettings()
    settings.check_for_production()
    rules: RuleSet = load_rules(settings.rules_file)
    api_keys = ApiKeys.load(settings.api_keys_file)
    topics = settings.topics
    cases = case_consumer(rules, topics)

    async def scheduler_loop(runtime: ServiceRuntime) -> None:
        scheduler = DeadlineScheduler(
            runtime.db,
            runtime.clock,
            topic=topics.deadlines,
            cases_topic=topics.cases,
            schema=settings.db_schema,
            batch_size=settings.scheduler_batch_size,
            max_sleep=settings.scheduler_max_sleep_seconds,
            progress=runtime.health.loop("deadline scheduler", sleeps_up_to=settings.scheduler_max_sleep_seconds),
        )
        await scheduler.run()

    async def progress_loop(runtime: ServiceRuntime) -> None:
        # The consumer side of the breach gate: how far the cases.v1 consumer has caught up.
        consumer = next(c for c in runtime.consumers if c.spec.name == cases.name)
        end_offsets = EndOffsets(settings.kafka_bootstrap_servers, client_id=f"mvsj-{SERVICE}-progress")
        progress = ConsumerProgress(runtime.db, consumer, topic=topics.cases, end_offsets=end_offsets)
        # A gate that stops moving holds every breach: /readyz and LoopStalled say so by name.
        health = runtime.health.loop("breach gate", sleeps_up_to=settings.progress_interval_seconds)

        async def tick() -> None:
            try:
                await progress.tick()
            except Exception:
                health.failed()
                raise
            health.round_done()

        try:
            await every(settings.progress_interval_seconds, tick, failure="cases.v1 progress not recorded")
        finally:
            await end_offsets.close()

    async def gauges_loop(runtime: ServiceRuntime) -> None:
        gauges = OpenDeadlineGauges()

        async def refresh() -> None:
            gauges.set(await repository.count_open(runtime.db))

        await every(settings.gauges_interval_seconds, refresh, failure="open-deadline gauges not refreshed")

    runtime = ServiceRuntime(
        settings,
        service=SERVICE,
        migrations=migrations(),
        consumers=[cases],
        loops=[scheduler_loop, progress_loop, gauges_loop, purge_inbox_loop, *(extra_loops or [])],
        on_published=observe_published,
        clock=clock,
    )
    return service_app(
        service=SERVICE,
        title="MVSJ deadlines",
        version=VERSION,
        description=(
            "Keeps every politigaranti (police guarantee) and local target of every case: starts a deadline per"
            " matching rule, warns before it slips, declares a breach the moment it happens (exactly once), and"
            f" records when it was met. Rules file version {rules.version}: {settings.rules_file.name}."
        ),
        settings=settings,
        runtime=runtime,
        api_keys=api_keys,
        readiness={"postgres": runtime.postgres_ready, "kafka": runtime.kafka_ready},
        routers=[deadlines_router(rules)],
        asyncapi_doc=asyncapi_document(
            service=SERVICE,
            version=VERSION,
            bootstrap=settings.kafka_bootstrap_servers,
            publishes={
                topics.deadlines: [
                    deadline_events.DeadlineStarted,
                    deadline_events.DeadlineWarning,
                    deadline_events.DeadlineMet,
                    deadline_events.DeadlineBreached,
                    deadline_events.DeadlineCancelled,
                    deadline_events.DeadlineRescheduled,
                    deadline_events.DeadlineBreachWithdrawn,
                ]
            },
            consumes={topics.cases: list(CASE_EVENTS)},
        ),
        asyncapi_summary="AsyncAPI: what this service consumes and publishes",
    )
