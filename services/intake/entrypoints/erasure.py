"""The erasure job: every INTAKE_ERASURE_INTERVAL_SECONDS, erase what is past its retention (handlers.erase_due).

One instance works at a time (an advisory lock per batch, handlers.erase_due); every instance sets
the overdue gauge, which an alert watches (deploy/prometheus/alerts.yml, IntakeErasureBehind).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from services.intake.domain.privacy import RetentionPolicy
from services.intake.handlers import ErasureRound, PrivacyUow, erase_due
from services.intake.metrics import ACCESS_LOG_PURGED, ERASURE_OVERDUE
from shared.clock import Clock
from shared.db import is_transient
from shared.health import LoopProgress

log = logging.getLogger(__name__)


class ErasureJob:
    def __init__(
        self,
        uow: PrivacyUow,
        policy: RetentionPolicy,
        clock: Clock,
        *,
        interval: float,
        batch_size: int,
        progress: LoopProgress | None = None,
    ) -> None:
        self.uow = uow
        self.policy = policy
        self._clock = clock
        self._interval = interval
        self._batch_size = batch_size
        self.progress = progress
        self._failing = False

    async def run_once(self, now: datetime | None = None) -> ErasureRound:
        """One round at `now` (the service's clock by default; tests pass a later one)."""
        at = now or self._clock.now()
        done = await erase_due(self.uow, self.policy, at, batch_size=self._batch_size)
        if done.log_purged:
            ACCESS_LOG_PURGED.inc(done.log_purged)
        if done.contacts or done.reports or done.log_purged:
            log.info(
                "erasure round",
                extra={"contacts_erased": done.contacts, "reports_erased": done.reports,
                       "access_log_purged": done.log_purged},
            )  # fmt: skip
        async with self.uow.transaction() as repo:
            ERASURE_OVERDUE.set(await repo.overdue_seconds(self.policy, at))
        return done

    async def run(self) -> None:
        """Rounds until cancelled; a failure is logged (once while it lasts) and the next round retries."""
        while True:
            try:
                await self.run_once()
                self._failing = False
                if self.progress is not None:
                    self.progress.round_done()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.progress is not None:
                    self.progress.failed("postgres" if is_transient(exc) else None)
                level = logging.DEBUG if self._failing else logging.WARNING
                log.log(level, "erasure round failed; the next one retries: %r", exc, exc_info=not is_transient(exc))
                self._failing = True
            await asyncio.sleep(self._interval)
