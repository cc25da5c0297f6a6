"""The erasure job: every INTAKE_ERASURE_INTERVAL_SECONDS, erase what is past its retention (handlers.erase_due).

One instance erases at a time (an advisory lock per batch, handlers.erase_due); every instance sets
the overdue gauge, first thing each round, so a round that then fails still shows how far behind the
erasure is, and the alert IntakeErasureBehind (deploy/prometheus/alerts.yml) watches it. The job is
not one of the loops /readyz and /healthz judge: a fault in it must not stop intake taking reports.
"""

from __future__ import annotations

import logging
from datetime import datetime

from services.intake.domain.privacy import RetentionPolicy
from services.intake.handlers import ErasureRound, PrivacyUow, erase_due
from services.intake.metrics import ACCESS_LOG_PURGED, ERASURE_OVERDUE
from shared.clock import Clock
from shared.timers import every

log = logging.getLogger(__name__)


class ErasureJob:
    def __init__(
        self, uow: PrivacyUow, policy: RetentionPolicy, clock: Clock, *, interval: float, batch_size: int
    ) -> None:
        self.uow = uow
        self.policy = policy
        self._clock = clock
        self._interval = interval
        self._batch_size = batch_size

    async def run_once(self, now: datetime | None = None) -> ErasureRound:
        """One round at `now` (the service's clock by default; tests pass a later one)."""
        at = now or self._clock.now()
        await self._measure(at)
        done = await erase_due(self.uow, self.policy, at, batch_size=self._batch_size)
        if done.log_purged:
            ACCESS_LOG_PURGED.inc(done.log_purged)
        if done.contacts or done.reports or done.log_purged:
            log.info(
                "erasure round",
                extra={"contacts_erased": done.contacts, "reports_erased": done.reports,
                       "access_log_purged": done.log_purged},
            )  # fmt: skip
            await self._measure(at)
        return done

    async def _measure(self, at: datetime) -> None:
        async with self.uow.transaction() as repo:
            ERASURE_OVERDUE.set(await repo.overdue_seconds(self.policy, at))

    async def run(self) -> None:
        """Rounds until cancelled; a failed round is logged (once while failures last) and the next one retries."""
        await every(self._interval, self.run_once, failure="erasure round failed")
