"""The CaseRepository contract on the in-memory fake (the same suite runs on Postgres in integration)."""

from __future__ import annotations

import uuid

import pytest

from tests.support.contracts.intake import CaseRepositoryContract
from tests.unit.intake.fakes import FakeUnitOfWork


class TestFakeCaseRepository(CaseRepositoryContract):
    @pytest.fixture
    def uow(self) -> FakeUnitOfWork:
        return FakeUnitOfWork()

    async def emitted(self, uow: FakeUnitOfWork) -> list[uuid.UUID]:  # type: ignore[override]
        return [e.id for e in uow.committed.outbox]
