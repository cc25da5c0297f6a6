"""The DeliveryStore contract on the in-memory fake the worker's unit tests use (the same suite runs on Postgres)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.clock import ManualClock
from tests.support.contracts.deliveries import DeliveryStoreContract
from tests.unit.reporting.delivery_fakes import FakeDeliveryStore


class TestFakeDeliveryStore(DeliveryStoreContract):
    @pytest.fixture
    def store(self) -> FakeDeliveryStore:
        return FakeDeliveryStore(ManualClock())

    async def expire_leases(self, store: FakeDeliveryStore) -> None:  # type: ignore[override]
        for row in store.deliveries.values():
            if row.lease_until is not None:
                row.lease_until = store.clock.now() - timedelta(seconds=1)
        for send in store.sends.values():
            if send.lease_until is not None:
                send.lease_until = store.clock.now() - timedelta(seconds=1)
