"""One report, two services, JSON logs: every line that names the case names the report's trace, none names the person."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.infra import Namespace
from tests.support.services import PORTAL_LIKE_HOOKS, ServiceProcess, running_processes, service_env
from tests.support.waiting import eventually

PORTAL = {"Authorization": "Bearer dev-portal-key"}
POLICE = {"Authorization": "Bearer dev-police-key"}
TRACE = "0af7651916cd43dd8448eb211c80319c"  # the portal's trace, as a tracing gateway would send it

NAME, PHONE, EMAIL = "Gudrun Logtestesen", "+4521436587", "gudrun.logtestesen@example.dk"
DESCRIPTION, ADDRESS = "Vinduet i kælderen knust, computeren og sølvtøjet fra oldemor væk", "Kildevej 47"
PERSONAL = (NAME, "Logtestesen", PHONE, "21436587", "21 43 65 87", EMAIL, DESCRIPTION[:25], "oldemor", ADDRESS)


@pytest.fixture
def json_logging_system(ns: Namespace, tmp_path: Path) -> Iterator[dict[str, ServiceProcess]]:
    """intake and deadlines as processes, with JSON logs at DEBUG (the most they ever say)."""
    env = {"LOG_FORMAT": "json", "LOG_LEVEL": "DEBUG", "INTAKE_OUTBOX_POLL_SECONDS": "0.5"}
    services = {
        name: ServiceProcess(name, service_env(ns, name, **env), tmp_path / f"{name}.log")
        for name in ("intake", "deadlines")
    }
    with running_processes(*services.values()):
        yield services


def lines_of(service: ServiceProcess) -> list[dict[str, Any]]:
    """Every line of the service's output, each of which must be one JSON object from that service."""
    found = []
    for number, text in enumerate(service.log.read_text().splitlines(), 1):
        try:
            line = json.loads(text)
        except json.JSONDecodeError:
            raise AssertionError(f"{service.service}.log line {number} is not JSON: {text[:300]}") from None
        assert isinstance(line, dict) and line["service"] == service.service, text[:300]
        assert {"time", "level", "logger", "message"} <= set(line), text[:300]
        found.append(line)
    return found


async def test_a_report_s_lines_carry_its_trace_and_never_the_person(
    json_logging_system: dict[str, ServiceProcess],
) -> None:
    intake, deadlines = json_logging_system["intake"], json_logging_system["deadlines"]
    report = {
        "category": "burglary_home",
        "description": DESCRIPTION,
        "in_progress": False,
        "kommune": "0350",
        "address": ADDRESS,
        "contact": {"name": NAME, "phone": PHONE, "email": EMAIL},
    }
    async with httpx.AsyncClient(timeout=10, event_hooks=PORTAL_LIKE_HOOKS) as client:
        accepted = await client.post(
            f"{intake.url}/v1/reports",
            json=report,
            headers=PORTAL | {"traceparent": f"00-{TRACE}-b7ad6b7169203331-01"},
        )
        assert accepted.status_code == 202, accepted.text
        case_id = accepted.json()["case_id"]

        async def deadlines_started() -> bool:
            page = (await client.get(f"{deadlines.url}/v1/deadlines", params={"limit": 500}, headers=POLICE)).json()
            return any(d["case_id"] == case_id for d in page["items"])

        await eventually(deadlines_started, timeout=30, what="the case's deadlines started")

    def published_by_deadlines() -> bool:
        # While the process runs, its last line may be half written: judged once it has stopped, below.
        text = deadlines.log.read_text()
        return any('"logger": "shared.outbox"' in line and case_id in line for line in text.splitlines())

    await eventually(published_by_deadlines, timeout=15, what="deadlines' relay published the case's events")
    intake.stop()
    deadlines.stop()
    in_intake, in_deadlines = lines_of(intake), lines_of(deadlines)

    # The request: its access line and the use case's line share the trace and the request id.
    [access] = [line for line in in_intake if line["logger"] == "shared.http.access" and line.get("trace_id") == TRACE]
    assert access["message"] == "POST /v1/reports 202" and access["route"] == "/v1/reports"
    [accepted_line] = [line for line in in_intake if line["message"] == "case accepted"]
    assert accepted_line["case_id"] == case_id and accepted_line["request_id"] == access["request_id"]

    # Every line that names the case, in either service, names the report's trace too.
    about_the_case = [line for line in in_intake + in_deadlines if line.get("case_id") == case_id]
    assert all(line.get("trace_id") == TRACE for line in about_the_case), [
        line for line in about_the_case if line.get("trace_id") != TRACE
    ]
    by = {(line["service"], line["logger"]) for line in about_the_case}
    assert {
        ("intake", "services.intake.handlers"),  # case accepted
        ("intake", "shared.outbox"),  # the relay published case.reported
        ("deadlines", "shared.consumer"),  # deadlines applied it
        ("deadlines", "shared.outbox"),  # and published the deadlines it started
    } <= by, by
    consumed = next(line for line in in_deadlines if line["logger"] == "shared.consumer" and line in about_the_case)
    assert consumed["event_type"] == "dk.politi.case.reported" and consumed["event_id"]

    # Nothing personal anywhere, at DEBUG, in any library's lines either.
    for service in (intake, deadlines):
        text = service.log.read_text()
        for personal in PERSONAL:
            assert personal not in text, f"{service.service} logged {personal!r}"
