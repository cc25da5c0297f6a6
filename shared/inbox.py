"""Inbox: remembers which events a consumer applied, in the same transaction as the effect; forgets them in time.

A row must outlive every way its event can come back: Kafka redelivers an event while its topic
still holds it (a failed commit, a rebalance, a group whose offsets expired and restarts from the
earliest offset), and an operator can redrive a dead letter to its original topic while the
dead-letter topic holds it, which may be as late as the original topic's retention plus the
dead-letter topic's. So a row is purged once it is older than the longest retention of the topics
the service consumes plus the longest of the dead-letter topics, plus a margin
(`inbox_retention`): a replay within that time is still recognised. When any of those topics
keeps its events for ever (`retention.ms=-1`, or compaction) nothing is purged, unless the
operator sets `<SERVICE>_INBOX_RETENTION_HOURS` and so accepts that a replay of older events
would apply them again. Every service runs `purge_inbox_loop` among its background loops.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import asyncpg
from prometheus_client import Counter

from shared.clock import Clock
from shared.db import Conn
from shared.kafka import topic_retention
from shared.timers import every

if TYPE_CHECKING:  # the runtime imports the consumer, which imports this module
    from shared.runtime import ServiceRuntime

log = logging.getLogger(__name__)

INBOX_PURGED = Counter(
    "inbox_purged_total", "processed_events rows forgotten, being older than any replay can reach", ["service"]
)
PURGE_INTERVAL_SECONDS = 3600.0


async def claim(conn: Conn, consumer: str, event_id: uuid.UUID) -> bool:
    """True the first time `consumer` sees `event_id`; False for a redelivery (apply nothing then)."""
    if not conn.is_in_transaction():
        raise RuntimeError("inbox.claim must run inside the transaction that applies the effect")
    status = await conn.execute(
        "INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        consumer,
        event_id,
    )
    return bool(status == "INSERT 0 1")


def inbox_retention(
    consumed: Mapping[str, timedelta | None],
    dead_letters: Mapping[str, timedelta | None],
    *,
    margin: timedelta,
    configured: timedelta | None = None,
) -> timedelta | None:
    """How long an inbox row is kept, or None: for ever (some topic keeps its events for ever).

    `consumed` and `dead_letters` map each topic to its retention (None: kept for ever). A
    configured retention wins: the operator's decision, stated in the settings.
    """
    if configured is not None:
        return configured
    if not consumed:
        return margin  # consumes nothing: no row can come back (intake before it consumed)
    if any(r is None for r in (*consumed.values(), *dead_letters.values())):
        return None
    longest_consumed = max(r for r in consumed.values() if r is not None)
    longest_dead_letter = max((r for r in dead_letters.values() if r is not None), default=timedelta(0))
    return longest_consumed + longest_dead_letter + margin


async def purge(pool: asyncpg.Pool, older_than: datetime) -> int:
    """Forgets the rows processed before `older_than`; returns how many."""
    status = await pool.execute("DELETE FROM processed_events WHERE processed_at < $1", older_than)
    return int(status.split()[-1])


class InboxPurge:
    """One service's inbox purge: reads the topics' retention from Kafka, forgets the rows older than it allows."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        clock: Clock,
        *,
        service: str,
        bootstrap: str,
        consumed: Sequence[str],
        dead_letters: Sequence[str],
        margin: timedelta,
        configured: timedelta | None = None,
    ) -> None:
        self._pool = pool
        self._clock = clock
        self._service = service
        self._bootstrap = bootstrap
        self._consumed = sorted(set(consumed))
        self._dead_letters = sorted(set(dead_letters))
        self._margin = margin
        self._configured = configured
        self._said_kept = False

    async def retention(self) -> timedelta | None:
        retentions: dict[str, timedelta | None] = {}
        if self._configured is None and self._consumed:
            # Raises for a topic Kafka cannot describe: no purge on a guess (the next round tries again).
            retentions = await topic_retention(self._bootstrap, [*self._consumed, *self._dead_letters])
        keep = inbox_retention(
            {t: retentions[t] for t in self._consumed if t in retentions},
            {t: retentions[t] for t in self._dead_letters if t in retentions},
            margin=self._margin,
            configured=self._configured,
        )
        if keep is None and not self._said_kept:
            forever = sorted(t for t, r in retentions.items() if r is None)
            log.info("inbox kept: topics %s keep their events for ever, so a replay could reach any row", forever)
            self._said_kept = True
        return keep

    async def run_once(self) -> int:
        """One round; returns how many rows were forgotten."""
        keep = await self.retention()
        if keep is None:
            return 0
        purged = await purge(self._pool, self._clock.now() - keep)
        if purged:
            INBOX_PURGED.labels(self._service).inc(purged)
            log.info("inbox purged", extra={"purged": purged, "kept_hours": round(keep.total_seconds() / 3600, 1)})
        return purged


async def purge_inbox_loop(runtime: ServiceRuntime) -> None:
    """The background loop every service runs (in its bootstrap's `loops`): an inbox purge each hour."""
    settings = runtime.settings
    hours = settings.inbox_retention_hours
    purge_ = InboxPurge(
        runtime.db,
        runtime.clock,
        service=runtime.service,
        bootstrap=settings.kafka_bootstrap_servers,
        consumed=[t for spec in runtime.consumer_specs for t in spec.topics],
        dead_letters=settings.topics.dead_letters(),
        margin=timedelta(hours=settings.inbox_retention_margin_hours),
        configured=timedelta(hours=hours) if hours is not None else None,
    )
    await every(PURGE_INTERVAL_SECONDS, purge_.run_once, failure="inbox not purged")
