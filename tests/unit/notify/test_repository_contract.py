"""The NotifyRepository contract on the in-memory fake (the same suite runs on Postgres in integration)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from services.notify.domain.delivery import Delivery
from tests.support.contracts.notify import NotifyRepositoryContract
from tests.unit.notify.fakes import FakeNotifyRepository


class TestFakeNotifyRepository(NotifyRepositoryContract):
    @pytest.fixture
    def uow(self) -> FakeNotifyRepository:
        return FakeNotifyRepository()

    async def emitted(self, uow: FakeNotifyRepository) -> list[uuid.UUID]:  # type: ignore[override]
        return [e.id for e in uow.outbox]

    async def deliveries(self, uow: FakeNotifyRepository, alert_id: uuid.UUID) -> dict[uuid.UUID, dict[str, Any]]:  # type: ignore[override]
        return {d["id"]: dict(d) for d in uow.of(alert_id)}

    async def audit_rows(  # type: ignore[override]
        self, uow: FakeNotifyRepository, alert_id: uuid.UUID
    ) -> list[tuple[str, str | None, dict[str, Any]]]:
        return [(r["kind"], r["actor"], r["detail"]) for r in uow.audit_rows if r["alert_id"] == alert_id]

    async def lease(self, uow: FakeNotifyRepository, at: datetime, owner: str) -> list[Delivery]:  # type: ignore[override]
        return uow.claim_deliveries(at, owner, timedelta(minutes=1))

    async def disabled(self, uow: FakeNotifyRepository) -> set[str]:  # type: ignore[override]
        return set(uow.disabled)
