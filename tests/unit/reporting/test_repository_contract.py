"""The ReadModel contract on the in-memory fake (the same suite runs on Postgres in integration)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.contracts.reporting import ReadModelContract
from tests.unit.reporting.fakes import FakeReadModel

KINDS = ("CaseFact", "ActionFact", "DeadlineFact", "AlertFact", "AlertStageFact", "AlertAckFact", "RuleFact")


class TestFakeReadModel(ReadModelContract):
    @pytest.fixture
    def uow(self) -> FakeReadModel:
        return FakeReadModel()

    async def stored(self, uow: FakeReadModel) -> dict[type, list[Any]]:  # type: ignore[override]
        by_type: dict[type, list[Any]] = {}
        for fact in uow.stored.facts.values():
            by_type.setdefault(type(fact), []).append(fact)
        return by_type
