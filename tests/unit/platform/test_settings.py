"""Settings: the contract's names with working defaults, and no development secrets in production."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from services.deadlines.settings import DeadlinesSettings
from services.intake.bootstrap import SERVICE, build_app, migrations
from services.intake.settings import IntakeSettings
from services.notify.settings import NotifySettings
from services.reporting.settings import ReportingSettings
from shared.cli import command_line
from shared.settings import DEFAULT_OPS_PORTS, PROJECT_ROOT, CommonSettings, ServiceSettings, Topics


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


@pytest.mark.parametrize("environment", [None, "", "staging", "prod", "dev", "test"])
def test_development_secrets_only_with_environment_development(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, environment: str | None
) -> None:
    """Fails closed: unset, empty or any other name refuses the public key file and the dev password."""
    if environment is None:
        monkeypatch.delenv("ENVIRONMENT", raising=False)
    else:
        monkeypatch.setenv("ENVIRONMENT", environment)
    monkeypatch.delenv("API_KEYS_FILE", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(ValueError, match=r"set API_KEYS_FILE.*ENVIRONMENT=development"):
        CommonSettings().check_for_production()
    keys = tmp_path / "keys.yaml"
    keys.write_text("keys: []\n")
    monkeypatch.setenv("API_KEYS_FILE", str(keys))
    with pytest.raises(ValueError, match=r"DATABASE_URL uses the development password.*ENVIRONMENT=development"):
        CommonSettings().check_for_production()
    monkeypatch.setenv("DATABASE_URL", "postgresql://mvsj:s3cret@db.internal:5432/mvsj")
    CommonSettings().check_for_production()  # real secrets: no ENVIRONMENT needed


def test_a_service_without_environment_refuses_to_start_and_says_what_to_set(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ENVIRONMENT", raising=False)
    monkeypatch.delenv("API_KEYS_FILE", raising=False)
    for command in ("serve", "migrate"):
        assert command_line(SERVICE, IntakeSettings, build_app, migrations, argv=[command]) == 2
        assert "ENVIRONMENT=development" in capsys.readouterr().err


def test_schema_names_must_be_plain() -> None:
    with pytest.raises(ValueError):
        ServiceSettings(db_schema='intake"; DROP')
    assert Topics("t1.").all()[:3] == ["t1.cases.v1", "t1.deadlines.v1", "t1.alerts.v1"]


def test_prometheus_scrapes_each_service_on_its_default_ops_port(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("INTAKE_OPS_PORT", "DEADLINES_OPS_PORT", "NOTIFY_OPS_PORT", "REPORTING_OPS_PORT"):
        monkeypatch.delenv(name, raising=False)
    config = yaml.safe_load((PROJECT_ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    settings = {
        "intake": IntakeSettings(),
        "deadlines": DeadlinesSettings(),
        "notify": NotifySettings(),
        "reporting": ReportingSettings(),
    }
    for service, own in settings.items():
        assert targets[service] == [f"127.0.0.1:{own.ops_port}"] != [f"127.0.0.1:{own.port}"]
        assert own.ops_port == DEFAULT_OPS_PORTS[service]


def test_a_refused_setting_is_not_echoed_in_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A setting's value may be a secret (DATABASE_URL holds a password): errors name the setting, not the value."""
    from pydantic import ValidationError

    monkeypatch.setenv("KAFKA_PARTITIONS", "s3cret-looking-value")
    for settings in (CommonSettings, IntakeSettings, DeadlinesSettings, NotifySettings, ReportingSettings):
        with pytest.raises(ValidationError) as refused:
            settings()
        assert "KAFKA_PARTITIONS" in str(refused.value) and "s3cret" not in str(refused.value), settings
