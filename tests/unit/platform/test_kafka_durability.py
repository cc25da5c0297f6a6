"""Kafka durability settings: min.insync.replicas follows the replication factor; one copy is for development only."""

from __future__ import annotations

import pytest

from shared.kafka import check_replication, min_insync_replicas_for
from shared.runtime import ServiceRuntime
from shared.settings import ServiceSettings


def test_three_replicas_get_min_insync_replicas_two() -> None:
    assert min_insync_replicas_for(3) == 2
    assert min_insync_replicas_for(5) == 2
    # Fewer replicas keep the broker's default: 2 of 2 would refuse every write while one is away.
    assert min_insync_replicas_for(2) is None
    assert min_insync_replicas_for(1) is None


@pytest.mark.parametrize("environment", ["production", "staging", "", None])
def test_one_replica_is_refused_outside_development(environment: str | None) -> None:
    with pytest.raises(ValueError, match="KAFKA_REPLICATION_FACTOR=1"):
        check_replication(1, environment)


def test_one_replica_is_fine_in_development_and_three_everywhere() -> None:
    check_replication(1, "development")
    check_replication(3, "production")


def test_a_service_refuses_to_start_with_one_replica_in_production() -> None:
    settings = ServiceSettings(environment="production", kafka_replication_factor=1)
    with pytest.raises(ValueError, match="ENVIRONMENT=production"):
        ServiceRuntime(settings, service="testsvc", migrations=[])
    ServiceRuntime(ServiceSettings(environment="production", kafka_replication_factor=3), service="t", migrations=[])
