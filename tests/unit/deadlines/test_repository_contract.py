"""The DeadlinesRepository contract on the in-memory fake (the same suite runs on Postgres in integration)."""

from __future__ import annotations

import uuid

import pytest

from tests.support.contracts.deadlines import DeadlinesRepositoryContract
from tests.unit.deadlines.fakes import FakeDeadlinesRepository


class TestFakeDeadlinesRepository(DeadlinesRepositoryContract):
    @pytest.fixture
    def uow(self) -> FakeDeadlinesRepository:
        return FakeDeadlinesRepository()

    async def emitted(self, uow: FakeDeadlinesRepository) -> list[uuid.UUID]:  # type: ignore[override]
        return [e.id for e in uow.outbox]
