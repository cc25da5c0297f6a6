"""Settings: the contract's names with working defaults, and no development secrets in production."""

from __future__ import annotations

import pytest

from shared.settings import CommonSettings, ServiceSettings, Topics


def test_defaults_work_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "KAFKA_TOPIC_PREFIX"):
        monkeypatch.delenv(name, raising=False)
    settings = CommonSettings()
    assert settings.kafka_bootstrap_servers == "localhost:9092"
    assert settings.database_url.endswith("@localhost:5432/politi")
    assert settings.topics.cases == "cases.v1"


def test_spec_names_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-1:9092,kafka-2:9092")
    monkeypatch.setenv("KAFKA_TOPIC_PREFIX", "staging.")
    settings = CommonSettings()
    assert settings.kafka_bootstrap_servers == "kafka-1:9092,kafka-2:9092"
    assert settings.topics.dlq("intake") == "staging.dlq.intake.v1"


def test_production_refuses_the_development_keys_and_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    with pytest.raises(ValueError, match="API_KEYS_FILE"):
        CommonSettings().check_for_production()
    CommonSettings(environment="development").check_for_production()  # fine locally


def test_schema_names_must_be_plain() -> None:
    with pytest.raises(ValueError):
        ServiceSettings(db_schema='intake"; DROP')
    assert Topics("t1.").all()[:3] == ["t1.cases.v1", "t1.deadlines.v1", "t1.alerts.v1"]
