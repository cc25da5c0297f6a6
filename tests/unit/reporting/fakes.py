"""An in-memory ReadModel, so reporting's use cases run without Postgres.

tests/support/contracts/reporting.py runs one suite against this fake and the Postgres read model.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from services.reporting.domain.facts import FactBatch, RuleFact
from services.reporting.domain.kpis import PeriodFacts


class FakeReadModel:
    """The stored facts folded by identity, as the upserts of adapters/repository.py merge them.

    It is its own unit of work: `transaction()` yields itself and, as a rollback does, undoes what
    the block wrote when it raises.
    """

    def __init__(self) -> None:
        self.stored = FactBatch()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[FakeReadModel]:
        saved = copy.deepcopy(self.stored)
        try:
            yield self
        except BaseException:
            self.stored = saved
            raise

    async def save(self, batch: FactBatch) -> None:
        for topic, at in batch.last_event_at.items():
            self.stored.add(topic, at, [])
        self.stored.add("", datetime.min, list(batch.facts.values()))
        self.stored.last_event_at.pop("", None)

    async def period_facts(
        self, start: datetime, end: datetime, kommune: str | None, window: Sequence[tuple[str, datetime]] = ()
    ) -> PeriodFacts:
        # The tallies are SQL over month counters kept by triggers; tests/integration/reporting checks them.
        raise NotImplementedError("the in-memory read model keeps facts, not the month counters")

    async def freshness(self) -> dict[str, datetime]:
        return dict(self.stored.last_event_at)

    async def rules_seen(self) -> list[dict[str, Any]]:
        rules = sorted(self.stored.of_type(RuleFact), key=lambda r: (r.basis, r.rule_id))
        return [{"rule_id": r.rule_id, "title": r.title, "basis": r.basis, "window_set_by": r.window_set_by,
                 "window_seconds": r.window_seconds} for r in rules]  # fmt: skip
