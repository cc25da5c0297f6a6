"""The retention purge: every NOTIFY_PURGE_INTERVAL_SECONDS, delete what is past its retention (domain/retention.py).

Batches of NOTIFY_PURGE_BATCH_SIZE rows, each in a transaction of its own that holds the purge's
advisory lock: with several instances one purges at a time (the others skip the round), and a
backlog is worked through without a long transaction or long-held row locks; rows being written
are skipped (`SKIP LOCKED`), never waited on. The log says how many rows went from which table,
never whose. Not among the loops /readyz and /healthz judge: a failing purge must not stop alerts.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

import asyncpg

from services.notify.adapters import repository as repo
from services.notify.domain.retention import PurgedTable, Retention
from services.notify.metrics import PURGE_LAST_DONE, PURGED
from shared.clock import Clock
from shared.db import Conn
from shared.timers import every

log = logging.getLogger(__name__)

# One batch: deletes up to `limit` rows and says how many went from which table.
Batch = Callable[[Conn, int], Awaitable[dict[PurgedTable, int]]]


class RetentionPurge:
    def __init__(
        self, pool: Callable[[], asyncpg.Pool], retention: Retention, clock: Clock, *, interval: float, batch_size: int
    ) -> None:
        self._pool = pool
        self.retention = retention
        self._clock = clock
        self._interval = interval
        self._batch_size = batch_size

    async def run_once(self, now: datetime | None = None) -> dict[PurgedTable, int]:
        """One round at `now` (the service's clock by default; tests pass a later one); returns the rows deleted.

        Stops early, having deleted what it has, when another instance holds the purge.
        """
        cut = self.retention.cutoffs(now or self._clock.now())

        async def deliveries(conn: Conn, limit: int) -> dict[PurgedTable, int]:
            return {"deliveries": await repo.purge_deliveries(conn, cut.deliveries_of_alerts_resolved_before, limit)}

        async def alerts(conn: Conn, limit: int) -> dict[PurgedTable, int]:
            gone = await repo.purge_alerts(conn, cut.alerts_resolved_before, limit)
            return {"alerts": gone["alerts"], "audit": gone["audit"], "deliveries": gone["deliveries"]}

        async def case_refs(conn: Conn, limit: int) -> dict[PurgedTable, int]:
            return {"case_refs": await repo.purge_case_refs(conn, cut.case_refs_seen_before, limit)}

        async def used_ack_links(conn: Conn, limit: int) -> dict[PurgedTable, int]:
            return {"used_ack_links": await repo.purge_used_ack_links(conn, cut.ack_links_used_before, limit)}

        async def disabled_endpoints(conn: Conn, limit: int) -> dict[PurgedTable, int]:
            return {
                "disabled_endpoints": await repo.purge_disabled_endpoints(conn, cut.endpoints_disabled_before, limit)
            }

        # Deliveries before the alerts: the alerts' statement then finds few left.
        counts: dict[PurgedTable, int] = {}
        for batch in (deliveries, alerts, case_refs, used_ack_links, disabled_endpoints):
            if not await self._until_done(batch, counts):
                break
        if any(counts.values()):
            log.info("retention purge", extra={f"{table}_purged": n for table, n in counts.items() if n})
        PURGE_LAST_DONE.set_to_current_time()  # a round that raised never gets here: the alert sees it age
        return counts

    async def _until_done(self, batch: Batch, counts: dict[PurgedTable, int]) -> bool:
        """Runs `batch` until a round deletes less than a full batch from every table; False if another
        instance holds the purge."""
        while True:
            async with self._pool().acquire() as conn, conn.transaction():
                if not await repo.lock_purge(conn):
                    return False
                gone = await batch(conn, self._batch_size)
            for table, n in gone.items():
                if n:
                    PURGED.labels(table).inc(n)
                    counts[table] = counts.get(table, 0) + n
            if all(n < self._batch_size for n in gone.values()):
                return True

    async def run(self) -> None:
        """Rounds until cancelled; a failed round is logged (once while failures last) and the next one retries."""
        await every(self._interval, self.run_once, failure="retention purge failed")
