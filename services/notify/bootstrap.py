"""Composition root of the notify service: the one place that knows every part and wires them."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

import httpx
from fastapi import FastAPI

from services.notify import handlers
from services.notify.adapters.ack_links import AckLinks
from services.notify.adapters.channels import EmailClient, WebhookClient
from services.notify.adapters.heartbeat import heartbeat
from services.notify.adapters.police_api import PoliceApis
from services.notify.adapters.policy_file import load_policy
from services.notify.adapters.repository import PostgresNotifyRepository, open_unacknowledged
from services.notify.adapters.roster_file import load_roster
from services.notify.domain.delivery import Backoff
from services.notify.domain.retention import Retention
from services.notify.domain.roster import describe_gaps
from services.notify.entrypoints.console import SESSION_COOKIE, ConsoleFeed, console_router
from services.notify.entrypoints.consumer import CASE_EVENTS, DEADLINE_EVENTS, notify_consumers
from services.notify.entrypoints.followups import followups_router
from services.notify.entrypoints.http import alerts_router
from services.notify.entrypoints.retention import RetentionPurge
from services.notify.entrypoints.timers import DeliveryWorker, EscalationTimer, Timer
from services.notify.metrics import OpenAlertGauges
from services.notify.settings import NotifySettings
from shared.app import service_app
from shared.asyncapi import asyncapi_document
from shared.auth import ApiKeys
from shared.clock import Clock, CorrectedClock
from shared.db import Migration, migrations_in, shared_migrations
from shared.events import alerts as alert_events
from shared.inbox import purge_inbox_loop
from shared.runtime import ServiceRuntime
from shared.timers import DurableTimer, every
from shared.unit_of_work import PostgresUnitOfWork
from shared.websession import purge_web_sessions_loop, sign_in_router, web_sessions

SERVICE = "notify"
# How long the escalation timer gathers wake-ups before it looks; at most this late for a step that
# falls due sooner than the one it sleeps towards (steps are minutes apart).
ESCALATION_WAKE_LINGER_SECONDS = 0.25
VERSION = "1.0.0"
log = logging.getLogger(__name__)


def migrations() -> list[Migration]:
    return shared_migrations() + migrations_in("services.notify.migrations")


def build_app(
    settings: NotifySettings | None = None,
    *,
    clock: Clock | None = None,
    extra_loops: list[Callable[[ServiceRuntime], Awaitable[None]]] | None = None,
) -> FastAPI:
    """Builds the service; the roster, policy and key files are checked here, so a bad one stops start-up."""
    settings = settings or NotifySettings()
    settings.check_for_production()
    # One line per webhook request at INFO would drown the log; failures are logged and audited.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # Corrected to Postgres's clock by the runtime once started (shared/runtime.py), shared by every part here.
    clock = CorrectedClock(clock)
    roster = load_roster(settings.roster_file)
    policy = load_policy(settings.alert_policy_file)
    api_keys = ApiKeys.load(settings.api_keys_file)
    topics = settings.topics
    now = clock.now()
    gaps = roster.gaps(now, now + timedelta(days=settings.rota_check_days))
    if gaps:
        # Not fatal: in a gap the vagtcentral's shared channel takes the alerts. But someone should fill it.
        log.warning(
            "the vagtchef rota has gaps in the next %d days; alerts then go to the vagtcentral's shared channel: %s",
            settings.rota_check_days,
            "; ".join(describe_gaps(gaps, roster.tz)),
        )
    ctx = handlers.Context(policy=lambda: policy, roster=lambda: roster, alerts_topic=topics.alerts)
    links = AckLinks(
        settings.ack_secret,
        settings.public_url,
        settings.ack_link_max_age_seconds,
        previous=settings.ack_previous_secrets,
    )
    backoff = Backoff(
        base=settings.retry_base_seconds, cap=settings.retry_cap_seconds, max_attempts=settings.max_attempts
    )

    def durable(
        runtime: ServiceRuntime, timer: Timer, batch: int, loop_name: str, wake_linger: float = 0.0
    ) -> DurableTimer:
        return DurableTimer(
            runtime.db, channel=timer.channel, name=type(timer).__name__, fire_due=timer.fire_due,
            next_due=timer.next_due, batch_size=batch, max_sleep=settings.max_sleep_seconds, clock=clock,
            wake_linger=wake_linger,
            progress=runtime.health.loop(loop_name, sleeps_up_to=settings.max_sleep_seconds + wake_linger),
        )  # fmt: skip

    async def delivery_loop(runtime: ServiceRuntime) -> None:
        webhooks = WebhookClient(timeout=settings.send_timeout_seconds)
        email = EmailClient(
            settings.smtp_host, settings.smtp_port, settings.smtp_from, timeout=settings.send_timeout_seconds,
            starttls=settings.smtp_starttls, use_tls=settings.smtp_use_tls, username=settings.smtp_username,
            password=settings.smtp_password,
        )  # fmt: skip
        worker = DeliveryWorker(
            runtime.db, ctx, clock, schema=settings.db_schema, webhooks=webhooks, email=email, ack_links=links,
            backoff=backoff, lease=timedelta(seconds=settings.delivery_lease_seconds),
            batch=settings.delivery_batch_size, concurrency=settings.delivery_concurrency,
        )  # fmt: skip
        try:
            await durable(runtime, worker, settings.delivery_batch_size, "delivery worker").run()
        finally:
            await worker.close()
            await webhooks.close()

    async def escalation_loop(runtime: ServiceRuntime) -> None:
        timer = EscalationTimer(runtime.db, ctx, clock, schema=settings.db_schema, batch=settings.timer_batch_size)
        # Every alert written wakes this timer, though its first step falls due minutes later: in a
        # burst of alerts the wake-ups share a round (six statements each) instead of one per alert.
        await durable(
            runtime, timer, settings.timer_batch_size, "escalation timer", wake_linger=ESCALATION_WAKE_LINGER_SECONDS
        ).run()

    async def gauges_loop(runtime: ServiceRuntime) -> None:
        gauges = OpenAlertGauges()

        async def refresh() -> None:
            async with runtime.db.acquire() as conn:
                gauges.set(await open_unacknowledged(conn))

        await every(settings.gauges_interval_seconds, refresh, failure="notify gauges not refreshed")

    async def retention_loop(_runtime: ServiceRuntime) -> None:
        purge: RetentionPurge = app.state.retention_purge
        await purge.run()

    feed = ConsoleFeed(settings.db_schema)
    # Officers sign in to the console as themselves, through the district's identity provider.
    sessions = web_sessions(settings, lambda: runtime.db, clock.now, cookie=SESSION_COOKIE, home="/console",
                            public_url=settings.public_url)  # fmt: skip
    loops = [delivery_loop, escalation_loop, gauges_loop, feed.run, purge_inbox_loop, retention_loop,
             purge_web_sessions_loop, *(extra_loops or [])]  # fmt: skip
    if settings.heartbeat_url:
        url = settings.heartbeat_url

        async def heartbeat_loop(runtime: ServiceRuntime) -> None:
            await heartbeat(url, settings.heartbeat_interval_seconds, runtime.postgres_ready)

        loops.append(heartbeat_loop)

    runtime = ServiceRuntime(
        settings,
        service=SERVICE,
        migrations=migrations(),
        consumers=notify_consumers(ctx, topics, clock.now, workers=settings.consumer_workers),
        loops=loops,
        # Four LISTEN connections (relay, two timers, the console feed) stay taken; sends in flight record results.
        pool_max_size=20,
        clock=clock,
    )
    app = service_app(
        service=SERVICE,
        title="MVSJ notify",
        version=VERSION,
        description=(
            "Tells the right officers when a politigaranti (police guarantee) is about to slip or has, escalates"
            " until someone acknowledges, and records every delivery. Roster version"
            f" {roster.version} ({settings.roster_file.name}), policy version {policy.version}"
            f" ({settings.alert_policy_file.name})."
        ),
        settings=settings,
        runtime=runtime,
        api_keys=api_keys,
        readiness={"postgres": runtime.postgres_ready, "kafka": runtime.kafka_ready},
        routers=[
            alerts_router(ctx, links, clock.now),
            console_router(ctx, feed, clock.now, sessions),
            followups_router(clock.now, sessions),
            sign_in_router(sessions),
        ],
        asyncapi_doc=asyncapi_document(
            service=SERVICE,
            version=VERSION,
            bootstrap=settings.kafka_bootstrap_servers,
            publishes={
                topics.alerts: [
                    alert_events.AlertRaised,
                    alert_events.AlertUpdated,
                    alert_events.AlertDelivered,
                    alert_events.AlertDeliveryFailed,
                    alert_events.AlertAcknowledged,
                    alert_events.AlertEscalated,
                    alert_events.AlertResolved,
                ]
            },
            consumes={topics.cases: list(CASE_EVENTS), topics.deadlines: list(DEADLINE_EVENTS)},
        ),
        asyncapi_summary="AsyncAPI: what this service consumes and publishes",
    )
    app.state.roster = roster
    app.state.policy = policy
    app.state.context = ctx
    # The use cases' unit of work for the HTTP routes: a transaction of its own per request.
    app.state.uow = PostgresUnitOfWork(
        lambda: runtime.db, lambda conn: PostgresNotifyRepository(conn, topic=topics.alerts)
    )
    app.state.ack_links = links
    # Deliveries, audit rows, used ack links and sessions past their retention (docs/privacy.md).
    app.state.retention_purge = RetentionPurge(
        lambda: runtime.db,
        Retention(
            deliveries=settings.delivery_retention,
            audit=settings.audit_retention,
            ack_link_max_age=timedelta(seconds=settings.ack_link_max_age_seconds),
        ),
        clock,
        interval=settings.purge_interval_seconds,
        batch_size=settings.purge_batch_size,
    )
    app.state.web_sessions = sessions
    # The console's calls to intake and deadlines, as the signed-in officer (adapters/police_api.py).
    app.state.police_apis = PoliceApis(
        intake_url=settings.intake_url.rstrip("/"),
        deadlines_url=settings.deadlines_url.rstrip("/"),
        http=httpx.AsyncClient(timeout=settings.police_api_timeout_seconds),
    )
    return app
