"""One report, one trace: the portal's POST, intake's outbox, Kafka, deadlines, notify's webhook to the
vagtchef and reporting's facts are spans of the same trace in the real tracing backend (Jaeger, which
`make up` runs: deploy/local/jaeger.sh), found by the report's reference as an operator finds it, and
no span says anything about the person who reported. The deadline's warning and breach, fired by the
timer seconds later, and the alert's escalation are traces of their own linked to the report's, the
breach's reaching the vagtchef's webhook; on Kafka, each event's CloudEvents tracing extension equals
its `traceparent` header.

The four services run as processes exporting over OTLP/HTTP to Jaeger, on the test's topics and schemas,
with the seconds rules and policy (an acute burglary alerts the vagtchef at once) and a roster whose
vagtchef has a webhook in this test.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.infra import Namespace
from tests.support.kafka_read import read_all
from tests.support.notify import new_secret, roster_document, write_roster
from tests.support.receivers import WebhookReceiver
from tests.support.services import PORTAL_LIKE_HOOKS, ServiceProcess, running_processes, service_env
from tests.support.waiting import eventually
from tests.testdata import SECONDS_POLICY_FILE, SECONDS_RULES_FILE

pytestmark = pytest.mark.e2e

PORTAL = {"Authorization": "Bearer dev-portal-key"}
JAEGER_QUERY = f"http://127.0.0.1:{os.environ.get('JAEGER_QUERY_PORT', '16686')}"
JAEGER_OTLP = f"http://127.0.0.1:{os.environ.get('JAEGER_OTLP_PORT', '4318')}"
SERVICES = ("intake", "deadlines", "notify", "reporting")

NAME, PHONE, EMAIL = "Birthe Sporfinder", "+4531415926", "birthe.sporfinder@example.dk"
DESCRIPTION, ADDRESS = "Der er nogen i stuen lige nu, de tager maleriet fra mormor", "Mosevej 17"
PERSONAL = (NAME, "Sporfinder", PHONE, "31415926", EMAIL, DESCRIPTION[:20], "mormor", ADDRESS, "Mosevej")


@pytest.fixture
def jaeger() -> str:
    """The query API of the Jaeger that `make up` started; the test cannot tell anything without it."""
    try:
        httpx.get(f"{JAEGER_QUERY}/api/services", timeout=3).raise_for_status()
    except httpx.HTTPError as exc:
        pytest.fail(f"no Jaeger answers at {JAEGER_QUERY} ({exc!r}): run `make up` (deploy/local/jaeger.sh up)")
    return JAEGER_QUERY


@pytest.fixture
def traced_system(
    ns: Namespace, tmp_path: Path, jaeger: str
) -> Iterator[tuple[dict[str, ServiceProcess], WebhookReceiver]]:
    receiver = WebhookReceiver().start()
    hook = {"type": "webhook", "url": receiver.url("/vagtchef"), "secret": new_secret()}
    roster = write_roster(
        tmp_path / "roster.yaml",
        roster_document(officer_channels={"vc-a": [hook, {"type": "console"}], "vc-b": [hook, {"type": "console"}]}),
    )
    env = {
        "INTAKE_OUTBOX_POLL_SECONDS": "0.5",
        "DEADLINE_RULES_FILE": str(SECONDS_RULES_FILE),
        "ROSTER_FILE": str(roster),
        "ALERT_POLICY_FILE": str(SECONDS_POLICY_FILE),
        # The standard variables, as `make demo` sets them; spans leave each process within 0.2 s.
        "OTEL_EXPORTER_OTLP_ENDPOINT": JAEGER_OTLP,
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        # At DEBUG every library says the most it ever says: none of it may reach a span either.
        "LOG_LEVEL": "DEBUG",
        "LOG_FORMAT": "json",
    }
    services = {
        name: ServiceProcess(name, service_env(ns, name, **env, OTEL_SERVICE_NAME=f"{name}"), tmp_path / f"{name}.log")
        for name in SERVICES
    }
    try:
        with running_processes(*services.values()):
            yield services, receiver
    finally:
        receiver.stop()


async def find_trace(client: httpx.AsyncClient, reference: str) -> list[dict[str, Any]]:
    """The traces whose intake spans carry the reference (`mvsj.reference`), as an operator searches them."""
    answer = await client.get(
        f"{JAEGER_QUERY}/api/traces",
        params={"service": "intake", "tags": json.dumps({"mvsj.reference": reference}), "lookback": "1h", "limit": 20},
    )
    answer.raise_for_status()
    found: list[dict[str, Any]] = answer.json()["data"] or []
    return found


async def search(client: httpx.AsyncClient, service: str, operation: str, **tags: str) -> list[dict[str, Any]]:
    """Whole traces that have a span of `service` named `operation` with these tags (Jaeger's search)."""
    answer = await client.get(
        f"{JAEGER_QUERY}/api/traces",
        params={"service": service, "operation": operation, "tags": json.dumps(tags), "lookback": "1h", "limit": 20},
    )
    answer.raise_for_status()
    found: list[dict[str, Any]] = answer.json()["data"] or []
    return found


def hex_id(value: str, width: int) -> str:
    return value.zfill(width)  # Jaeger leaves out leading zeros


def named_spans(trace: dict[str, Any]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    spans: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for span in trace["spans"]:
        spans.setdefault((trace["processes"][span["processID"]]["serviceName"], span["operationName"]), []).append(span)
    return spans


async def test_a_report_is_one_trace_across_the_four_services_and_names_no_person(
    traced_system: tuple[dict[str, ServiceProcess], WebhookReceiver], ns: Namespace
) -> None:
    services, receiver = traced_system
    cases, deadlines = ns.topics.cases, ns.topics.deadlines  # the test's own topics, as the spans name them
    report = {
        "category": "burglary_home",
        "in_progress": True,  # acute: notify alerts the vagtchef as soon as the deadline starts
        "description": DESCRIPTION,
        "kommune": "0350",
        "address": ADDRESS,
        "contact": {"name": NAME, "phone": PHONE, "email": EMAIL},
    }
    async with httpx.AsyncClient(timeout=10, event_hooks=PORTAL_LIKE_HOOKS) as client:
        accepted = await client.post(f"{services['intake'].url}/v1/reports", json=report, headers=PORTAL)
        assert accepted.status_code == 202, accepted.text
        reference, case_id = accepted.json()["reference"], accepted.json()["case_id"]

        await eventually(lambda: bool(receiver.delivered("/vagtchef")), timeout=60, what="the vagtchef's webhook")

        trace: dict[str, Any] = {}

        async def whole_trace() -> bool:
            nonlocal trace
            traces = await find_trace(client, reference)
            if len(traces) != 1:
                return False
            answer = await client.get(f"{JAEGER_QUERY}/api/traces/{traces[0]['traceID']}")
            [trace] = answer.json()["data"]
            names = {(trace["processes"][s["processID"]]["serviceName"], s["operationName"]) for s in trace["spans"]}
            return {("notify", "deliver webhook"), ("reporting", f"process {cases}")} <= names

        await eventually(whole_trace, timeout=60, what="the report's trace with the webhook's send, in Jaeger")

    spans = trace["spans"]
    trace_id = str(trace["traceID"]).zfill(32)  # Jaeger leaves out leading zeros
    service_of = {pid: p["serviceName"] for pid, p in trace["processes"].items()}
    assert {s["traceID"] for s in spans} == {trace["traceID"]}
    assert set(SERVICES) <= {service_of[s["processID"]] for s in spans}
    named = {(service_of[s["processID"]], s["operationName"]) for s in spans}
    # The report's path, hop by hop.
    assert {
        ("intake", "POST /v1/reports"),
        ("intake", "intake.report_case"),
        ("intake", "outbox write"),
        ("intake", f"publish {cases}"),
        ("deadlines", f"process {cases}"),
        ("deadlines", "handle dk.politi.case.reported"),
        ("deadlines", f"publish {deadlines}"),
        ("notify", f"process {deadlines}"),
        ("notify", "handle dk.politi.deadline.started"),
        ("notify", "deliver webhook"),
        ("reporting", f"process {cases}"),
    } <= named, sorted(named)
    # One tree: every span but the request's has its parent in the trace.
    ids = {s["spanID"] for s in spans}
    roots = [s for s in spans if not any(r["refType"] == "CHILD_OF" and r["spanID"] in ids for r in s["references"])]
    assert [(service_of[r["processID"]], r["operationName"]) for r in roots] == [("intake", "POST /v1/reports")]
    tags = {t["key"]: t["value"] for s in spans for t in s["tags"]}
    assert tags["mvsj.case_id"] == case_id and tags["mvsj.reference"] == reference

    # Nothing about the person in any span, tag, event or process description of the trace.
    text = json.dumps(trace, ensure_ascii=False)
    for personal in PERSONAL:
        assert personal not in text, f"the trace carries {personal!r}"

    # Later, on their own account: the deadline's warning and breach (fired by the deadlines timer) and
    # the alert's escalation (notify's timer) are each a trace of their own, found by the reference or
    # the case id, whose first span links (FOLLOWS_FROM in Jaeger's JSON) to the span of the report's
    # trace that started the deadline or raised the alert; the breach's handling in notify, and its
    # webhook to the vagtchef, are in the breach's trace.
    in_report = {hex_id(s["spanID"], 16): (service_of[s["processID"]], s["operationName"]) for s in spans}

    def links_into_report(span: dict[str, Any]) -> set[tuple[str, str]]:
        return {
            in_report.get(hex_id(r["spanID"], 16), ("?", "a span not in the report's trace"))
            for r in span["references"]
            if r["refType"] == "FOLLOWS_FROM" and hex_id(r["traceID"], 32) == trace_id
        }

    breach_path = {
        ("deadlines", "deadline breach"), ("deadlines", f"publish {deadlines}"), ("notify", f"process {deadlines}"),
        ("notify", "handle dk.politi.deadline.breached"), ("notify", "deliver webhook"),
        ("reporting", f"process {deadlines}"),
    }  # fmt: skip
    acute_escalation = {("notify", "handle dk.politi.deadline.started")}  # what the acute alert's escalation links to
    fired: dict[str, dict[str, Any]] = {}
    linked: list[set[tuple[str, str]]] = []

    async def fired_later() -> bool:
        nonlocal linked
        for what in ("warning", "breach"):
            found = await search(client, "deadlines", f"deadline {what}", **{"mvsj.reference": reference,
                                 "mvsj.rule_id": "burglary_home_in_progress"})  # fmt: skip
            fired[what] = found[0] if len(found) == 1 else {}
        escalations = await search(client, "notify", "alert escalation", **{"mvsj.case_id": case_id})
        linked = [links_into_report(s) for e in escalations for s in named_spans(e)["notify", "alert escalation"]]
        # Spans reach Jaeger from four processes in their own time: wait for every one asserted below.
        return (
            bool(fired["warning"] and fired["breach"])
            and breach_path <= set(named_spans(fired["breach"]))
            and acute_escalation in linked
        )

    # Read meanwhile: two deadlines started (the acute guarantee, the follow-up target), two warnings, and
    # the acute guarantee's breach, the fifth (the follow-up's comes 2 s after it).
    reading = asyncio.create_task(read_all(ns.kafka, deadlines, expect=5, timeout=60))
    async with httpx.AsyncClient(timeout=10) as client:
        await eventually(fired_later, timeout=60, what="the warning's and breach's traces, and an escalation")
    for what, later in fired.items():
        assert hex_id(later["traceID"], 32) != trace_id
        [first] = named_spans(later)["deadlines", f"deadline {what}"]
        assert not [r for r in first["references"] if r["refType"] == "CHILD_OF"]  # a root ...
        assert links_into_report(first) == {("deadlines", "handle dk.politi.case.reported")}  # ... linked
        text = json.dumps(later, ensure_ascii=False)
        assert not [p for p in PERSONAL if p in text]
    # The acute alert, raised in the report's trace, escalates in a trace of its own that links back to it.
    assert acute_escalation in linked, linked

    # On Kafka each event names its trace twice, alike: the header and the CloudEvents tracing extension.
    events = [(json.loads(r.value), dict(r.headers)) for r in await reading if r.key == case_id.encode()]
    assert len(events) >= 5
    for body, headers in events:
        assert body["traceparent"] == headers["traceparent"].decode(), body["type"]
    trace_of = {
        body["type"].rsplit(".", 1)[1]: body["traceparent"].split("-")[1]
        for body, _ in events
        if body["data"]["rule_id"] == "burglary_home_in_progress"
    }
    assert trace_of["warning"] == hex_id(fired["warning"]["traceID"], 32)
    assert trace_of["breached"] == hex_id(fired["breach"]["traceID"], 32)
    assert trace_of["started"] == trace_id

    # And the log lines lead to it: intake's "case accepted" names the same trace.
    for service in services.values():
        service.stop()
    lines = [json.loads(line) for line in services["intake"].log.read_text().splitlines() if line.startswith("{")]
    [accepted_line] = [line for line in lines if line.get("message") == "case accepted"]
    assert accepted_line["trace_id"] == trace_id
    assert accepted_line["span_id"].lstrip("0") in {i.lstrip("0") for i in ids}
