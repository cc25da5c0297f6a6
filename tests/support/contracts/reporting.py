"""The ReadModel contract (services/reporting/handlers.py): facts stored merge alike on every backend."""

from __future__ import annotations

import random
from typing import Any

import pytest

from services.reporting import handlers
from services.reporting.domain.facts import FactBatch, RuleFact
from shared.events import CloudEvent
from shared.unit_of_work import UnitOfWork
from tests.support.quarter import district_quarter

Uow = UnitOfWork[handlers.ReadModel]


class Boom(Exception):
    pass


def batch_of(events: list[CloudEvent]) -> FactBatch:
    batch = FactBatch()
    for event in events:
        handlers.add_event(batch, event.meta, event.payload())
    return batch


def expected_time(batch: FactBatch) -> Any:
    return max(batch.last_event_at.values())


class ReadModelContract:
    """Subclasses give `uow` (a fixture) and `stored`: every stored fact, by type, as the domain's dataclasses."""

    @pytest.fixture
    def uow(self) -> Uow:
        raise NotImplementedError

    async def stored(self, uow: Uow) -> dict[type, list[Any]]:
        raise NotImplementedError

    async def test_events_saved_one_at_a_time_in_any_order_with_repeats_store_the_domains_merge(self, uow: Uow) -> None:
        events = district_quarter().events
        rng = random.Random(15)
        shuffled = events + rng.sample(events, len(events) // 3)
        rng.shuffle(shuffled)
        for event in shuffled:
            await handlers.handle(uow, event.meta, event.payload())
        expected = batch_of(events)
        stored = await self.stored(uow)
        found = FactBatch()
        for facts in stored.values():
            found.add("", expected_time(expected), facts)
        assert found.facts == expected.facts
        async with uow.transaction() as read_model:
            assert await read_model.freshness() == expected.last_event_at
            rules = await read_model.rules_seen()
        seen = sorted(expected.of_type(RuleFact), key=lambda r: (r.basis, r.rule_id))
        assert rules == [
            {"rule_id": r.rule_id, "title": r.title, "basis": r.basis, "window_set_by": r.window_set_by,
             "window_seconds": r.window_seconds} for r in seen
        ] and rules  # fmt: skip

    async def test_a_transaction_that_raises_stores_nothing(self, uow: Uow) -> None:
        events = district_quarter().events
        with pytest.raises(Boom):
            async with uow.transaction() as read_model:
                await read_model.save(batch_of(events))
                raise Boom
        assert not any((await self.stored(uow)).values())
        async with uow.transaction() as read_model:
            assert await read_model.freshness() == {}
