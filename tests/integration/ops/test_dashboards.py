"""Every query of every Grafana dashboard parses and returns series from a real Prometheus scraping the services.

Grafana cannot be installed here, so this test does what Grafana would: it reads the provisioned
dashboard JSON, resolves template variables (running their label_values() queries), fills in
Grafana's interval macros and sends each expression to a real `prometheus` that scrapes the running
services, configured from deploy/prometheus/prometheus.yml. One Prometheus, one set of services,
one burst of traffic that makes every labelled series exist, then all queries.
"""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client import REGISTRY

from shared.kafka import EventProducer, OutgoingMessage
from tests.integration.ops.test_prometheus import metric_names
from tests.support.infra import ROOT, Namespace
from tests.support.notify import roster_document, write_roster
from tests.support.services import PORTAL_LIKE_HOOKS, ServiceProcess, free_port, service_env
from tests.support.waiting import eventually
from tests.testdata import SECONDS_POLICY_FILE, SECONDS_RULES_FILE

GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"

# The services of SPEC, in start order: all are started and every panel must answer.
SERVICES = ("intake", "deadlines", "notify", "reporting")
# Grafana's own macros, at values a dashboard opened on the last hour would use (scrape interval 1 s).
MACROS = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h"}

PORTAL = {"Authorization": "Bearer dev-portal-key"}
POLICE = {"Authorization": "Bearer dev-police-key"}


@dataclass(frozen=True)
class Query:
    dashboard: str
    where: str  # panel title and refId, or "variable <name>"
    expr: str

    def __str__(self) -> str:
        return f"{self.dashboard} / {self.where}: {self.expr}"


def load(path: Path) -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(path.read_text())
    return dashboard


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those inside collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def panel_queries(path: Path) -> list[Query]:
    dashboard = load(path)
    return [
        Query(path.name, f"{panel['title']} [{target.get('refId', '?')}]", target["expr"])
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
    ]


def variables(path: Path) -> list[dict[str, Any]]:
    return list(load(path).get("templating", {}).get("list", []))


LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?:(?P<match>.+?)\s*,\s*)?(?P<label>[a-zA-Z_]\w*)\s*\)\s*$")


def variable_query(variable: dict[str, Any]) -> str:
    query = variable.get("query")
    return str(query.get("query", "") if isinstance(query, dict) else query or "")


def parse_label_values(query: str) -> tuple[str | None, str]:
    """Grafana's label_values(metric, label) or label_values(label); anything else is not supported here."""
    found = LABEL_VALUES.match(query)
    if found is None:
        raise AssertionError(f"variable query {query!r}: only label_values(...) is supported by this test")
    return found["match"], found["label"]


def custom_values(variable: dict[str, Any]) -> list[str]:
    """Values of a custom variable: "text : value" pairs or plain values, comma-separated."""
    return [item.split(" : ", 1)[-1].strip() for item in variable_query(variable).split(",") if item.strip()]


def all_value(variable: dict[str, Any], values: list[str]) -> str:
    """What Grafana puts in place of a variable set to "All": its allValue, else a regex of every value."""
    if variable.get("allValue"):
        return str(variable["allValue"])
    return "(" + "|".join(re.escape(v) for v in values) + ")"


def interpolate(expr: str, values: dict[str, str]) -> str:
    """Replaces $name, ${name} and Grafana's macros; an unknown variable is a dashboard error."""

    def one(match: re.Match[str]) -> str:
        name = match["braced"] or match["plain"]
        if name in MACROS:
            return MACROS[name]
        if name not in values:
            raise AssertionError(f"unknown variable ${name} in {expr!r}")
        return values[name]

    return re.sub(r"\$\{(?P<braced>\w+)\}|\$(?P<plain>\w+)", one, expr)


def provisioned_datasource_uid() -> str:
    (source,) = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    assert source["type"] == "prometheus"
    return str(source["uid"])


# Every panel and query names its data source through the dashboard's `datasource` variable (type
# "datasource", any Prometheus), so the dashboards work against whatever uid a Grafana gave its
# Prometheus, not only against the provisioned one.
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


# --- The dashboards as files: quick checks that need no services ---------------------------------


def test_dashboards_are_provisioned_and_read_the_data_source_of_their_variable() -> None:
    assert {p.stem for p in DASHBOARDS} >= {"operations", "politigarantier"}
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "dashboards.yml").read_text())
    assert provider["providers"][0]["type"] == "file"
    fixed_uid = provisioned_datasource_uid()
    uids = set()
    for path in DASHBOARDS:
        dashboard = load(path)
        assert fixed_uid not in path.read_text(), f"{path.name} names the data source {fixed_uid!r} by its uid"
        assert dashboard["uid"] not in uids, f"{path.name}: uid {dashboard['uid']} used twice"
        uids.add(dashboard["uid"])
        (source,) = [v for v in variables(path) if v["type"] == "datasource"]
        assert (source["name"], source["query"]) == ("datasource", "prometheus"), path.name
        ids = [p["id"] for p in panels(dashboard)]
        assert len(ids) == len(set(ids)), f"{path.name}: panel ids repeat"
        for panel in panels(dashboard):
            if panel["type"] in ("row", "text"):
                continue
            assert panel.get("targets"), f"{path.name} / {panel['title']}: no query"
            for item in [panel, *panel["targets"]]:
                assert item.get("datasource") == DATASOURCE, f"{path.name} / {panel['title']}: data source"
            assert all(t.get("expr", "").strip() for t in panel["targets"]), f"{path.name} / {panel['title']}"
        for variable in variables(path):
            if variable["type"] == "query":
                assert variable["datasource"] == DATASOURCE, f"{path.name}: variable {variable['name']}"
                parse_label_values(variable_query(variable))


def test_kommune_choices_are_the_districts_kommuner() -> None:
    kommuner = yaml.safe_load((ROOT / "shared" / "data" / "kommuner.yaml").read_text())["kommuner"]
    codes = {k["code"] for k in kommuner}
    for path in DASHBOARDS:
        for variable in variables(path):
            if variable["name"] == "kommune" and variable["type"] == "custom":
                assert set(custom_values(variable)) == codes, path.name


def test_every_metric_a_dashboard_reads_is_declared_by_a_service() -> None:
    """Catches a misspelt metric name in a second, before the slow test below waits for its series."""
    for module in ["shared.metrics", "shared.health"] + [f"services.{s}.metrics" for s in SERVICES]:
        importlib.import_module(module)
    declared = set(REGISTRY._names_to_collectors) | {"up"}
    for path in DASHBOARDS:
        for query in panel_queries(path):
            unknown = metric_names(query.expr) - declared
            assert not unknown, f"{query}: no service declares {sorted(unknown)}"
        for variable in variables(path):
            if variable["type"] == "query":
                match, _ = parse_label_values(variable_query(variable))
                assert not metric_names(match or "") - declared, f"{path.name}: variable {variable['name']}"


def test_the_scrape_keeps_each_series_one_service_label() -> None:
    """The shared metrics label their service themselves and each job adds `service` for the others.

    With honor_labels the metric's own label stands (without it Prometheus would rename it to
    exported_service); honoured labels must then never be `job` or `instance`, which are the scrape's.
    """
    for name in ("prometheus.yml", "prometheus.compose.yml"):
        for job in yaml.safe_load((PROMETHEUS_CONFIG.parent / name).read_text())["scrape_configs"]:
            assert job.get("honor_labels") is True, f"{name}: job {job['job_name']}"
            for static in job["static_configs"]:
                assert static["labels"]["service"] == job["job_name"], f"{name}: job {job['job_name']}"
    for module in ["shared.metrics", "shared.health"] + [f"services.{s}.metrics" for s in SERVICES]:
        importlib.import_module(module)
    for collector in set(REGISTRY._names_to_collectors.values()):
        labels = set(getattr(collector, "_labelnames", ()))
        assert not labels & {"job", "instance"}, f"{collector}: {sorted(labels)}"


def test_interpolation_fills_variables_and_macros_and_refuses_unknown_ones() -> None:
    expr = 'sum by (kommune) (increase(x_total{kommune=~"$kommune", rule=~"${rule}"}[$__range]))'
    assert interpolate(expr, {"kommune": ".*", "rule": "(a|b)"}) == (
        'sum by (kommune) (increase(x_total{kommune=~".*", rule=~"(a|b)"}[1h]))'
    )
    with pytest.raises(AssertionError, match="unknown variable"):
        interpolate("up{job=~'$jobb'}", {"job": ".*"})
    assert parse_label_values("label_values(up, job)") == ("up", "job")
    assert parse_label_values("label_values(job)") == (None, "job")


# --- Every query against a real Prometheus scraping the real services ----------------------------


async def test_every_dashboard_query_returns_series_from_the_running_services(ns: Namespace, tmp_path: Path) -> None:
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        pytest.fail("prometheus is missing: `make up` installs Debian's prometheus package")
    env = {
        "INTAKE_OUTBOX_POLL_SECONDS": "0.2",
        "DEADLINE_RULES_FILE": str(SECONDS_RULES_FILE),
        "DEADLINES_GAUGES_INTERVAL_SECONDS": "1",
        "NOTIFY_GAUGES_INTERVAL_SECONDS": "1",
        # notify with a console-only roster and the seconds policy: every alert the traffic raises is
        # delivered at once and escalates after 3 s unless acknowledged, so the delivery, escalation and
        # acknowledgement panels have series.
        "ROSTER_FILE": str(write_roster(tmp_path / "roster.yaml", roster_document())),
        "ALERT_POLICY_FILE": str(SECONDS_POLICY_FILE),
    }
    services = {name: ServiceProcess(name, service_env(ns, name, **env), tmp_path / f"{name}.log") for name in SERVICES}
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump(scrape_config(services)))
    prom_port = free_port()
    api = f"http://127.0.0.1:{prom_port}/api/v1"
    prom: subprocess.Popen[bytes] | None = None
    try:
        for service in services.values():
            service.migrate()
            service.start()
        prom = subprocess.Popen(
            [prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prom_port}"],
            stdout=subprocess.DEVNULL, stderr=(tmp_path / "prometheus.log").open("wb"),
        )  # fmt: skip
        for service in services.values():
            service.wait_ready()
        await traffic(ns, services["intake"].url, services["deadlines"].url, services["notify"].url)

        async with httpx.AsyncClient(timeout=5) as client:
            queries = await resolve_queries(client, api)

            async def ask(query: Query) -> list[Any]:
                answer = (await client.post(f"{api}/query", data={"query": query.expr})).json()
                assert answer["status"] == "success", f"{query}\n{answer}"
                result: list[Any] = answer["data"]["result"]
                return result

            # Syntax errors and unknown functions first: no waiting cures them.
            for query in queries:
                await ask(query)
            # Each series has one `service` label, the service's own: a target label that clashes with
            # the metric's would be renamed exported_service (prometheus.yml keeps the metric's).
            clashing = await ask(Query("prometheus", "every series", 'count by (__name__) ({exported_service=~".+"})'))
            assert not clashing, f"series with an exported_service label: {clashing}"
            empty: set[Query] = set(queries)

            async def all_answer() -> bool:
                for query in sorted(empty, key=str):
                    if await ask(query):
                        empty.discard(query)
                return not empty

            try:
                await eventually(all_answer, timeout=45, step=1, what="every dashboard query answers")
            except AssertionError:
                pytest.fail("dashboard queries without series:\n" + "\n".join(f"  {q}" for q in sorted(empty, key=str)))
    finally:
        if prom is not None:
            prom.terminate()
            prom.wait(10)
        for service in services.values():
            service.stop()


def scrape_config(services: dict[str, ServiceProcess]) -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml with the test's ports and a 1 s scrape: the same jobs and labels."""
    config: dict[str, Any] = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    missing = sorted(set(services) - set(jobs))
    assert not missing, f"deploy/prometheus/prometheus.yml has no scrape job for {missing}"
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config.pop("alerting", None)  # the test's alerts must not reach an Alertmanager someone runs on 9093
    config["rule_files"] = [str(PROMETHEUS_CONFIG.parent / f) for f in config.get("rule_files", [])]
    config["scrape_configs"] = []
    for name, service in services.items():
        job = jobs[name]
        for static in job["static_configs"]:
            static["targets"] = [f"127.0.0.1:{service.ops_port}"]  # metrics are on the ops port
        config["scrape_configs"].append(job)
    return config


async def resolve_queries(client: httpx.AsyncClient, api: str) -> list[Query]:
    """Every panel query with its variables set to "All", as Grafana would send it.

    Each variable's own label_values() query must find values too: an empty drop-down is a defect.
    """
    ready: list[Query] = []
    for path in DASHBOARDS:
        values: dict[str, str] = {}
        for variable in variables(path):
            if variable["type"] == "datasource":
                # Grafana lists the data sources of this type; only panels' `datasource` fields name it.
                assert variable["query"] == "prometheus", (path.name, variable["name"])
                continue
            if variable["type"] == "custom":
                found = custom_values(variable)
            elif variable["type"] == "query":
                match, label = parse_label_values(variable_query(variable))
                params = {"match[]": interpolate(match, values)} if match else {}
                answer = (await client.get(f"{api}/label/{label}/values", params=params)).json()
                assert answer["status"] == "success", (path.name, variable["name"], answer)
                found = answer["data"]
                assert found, f"{path.name}: variable {variable['name']} ({variable_query(variable)}) finds no values"
            else:
                raise AssertionError(f"{path.name}: variable type {variable['type']} not supported by this test")
            values[variable["name"]] = all_value(variable, found) if variable.get("includeAll") else found[0]
        for query in panel_queries(path):
            resolved = Query(query.dashboard, query.where, interpolate(query.expr, values))
            ready.append(resolved)
    return ready


async def traffic(ns: Namespace, intake: str, deadlines: str, notify: str) -> None:
    """One burst that makes every series the dashboards read exist, for guarantees and local targets alike.

    With the seconds rules (4-8 s windows): a burglary met at once (guarantee and follow-up target met
    on time), a burglary left to warn and breach and then met late, a burglary closed before the
    patrol came (guarantee cancelled), an officer request replied to and then closed (local target met,
    the other cancelled), a tip, refused requests (401, 422) and a message the consumer dead-letters.
    The late burglary's breach alerts escalate, and one is acknowledged through notify's API.
    """
    async with httpx.AsyncClient(timeout=10, event_hooks=PORTAL_LIKE_HOOKS) as client:

        async def submit(path: str, body: dict[str, Any]) -> str:
            answer = await client.post(f"{intake}{path}", json=body, headers=PORTAL)
            assert answer.status_code == 202, answer.text
            return str(answer.json()["case_id"])

        async def act(case_id: str, action: str, **extra: str) -> None:
            body = {"action": action, "occurred_at": datetime.now(UTC).isoformat(), **extra}
            answer = await client.post(f"{intake}/v1/cases/{case_id}/actions", json=body, headers=POLICE)
            assert answer.status_code == 202, answer.text

        met = await submit("/v1/reports", burglary("0265"))
        late = await submit("/v1/reports", burglary("0316"))
        closed = await submit("/v1/reports", burglary("0253"))
        request = await submit("/v1/officer-requests", {
            "request_type": "traffic_control", "description": "Biler kører for stærkt forbi skolen",
            "kommune": "0259", "address": "Ølbyvej 2", "contact": {"email": "skole@example.dk"},
        })  # fmt: skip
        await submit("/v1/tips", {"category": "drug_dealing_street", "description": "Salg bag hallen",
                                  "kommune": "0316", "anonymous": True})  # fmt: skip
        assert (await client.post(f"{intake}/v1/reports", json=burglary("0265"))).status_code == 401
        assert (await client.post(f"{intake}/v1/reports", json={}, headers=PORTAL)).status_code == 422

        await act(met, "on_scene")
        await act(met, "followup_done")
        await act(closed, "closed", outcome="no_offence")
        await act(request, "replied")
        await act(request, "closed", outcome="resolved")

        producer = EventProducer(ns.kafka, client_id="dashboards-test")
        await producer.send_batch([OutgoingMessage(ns.topics.cases, b"junk", b"not a cloudevent")])
        await producer.stop()

        async def both_breached() -> bool:
            page = (await client.get(f"{deadlines}/v1/deadlines", params={"limit": 500}, headers=POLICE)).json()
            mine = [d for d in page["items"] if d["case_id"] == late]
            return len(mine) == 2 and all(d["state"] == "breached" for d in mine)

        await eventually(both_breached, timeout=30, what="the guarantee and the follow-up target breached")

        escalated_alerts: list[str] = []

        async def escalated() -> bool:
            page = await client.get(f"{notify}/v1/alerts", params={"state": "escalated"}, headers=POLICE)
            escalated_alerts[:] = [a["id"] for a in page.json()["items"] if a["case_id"] == late]
            return bool(escalated_alerts)

        await eventually(escalated, timeout=30, what="a breach alert escalated")
        ack = await client.post(f"{notify}/v1/alerts/{escalated_alerts[0]}/ack", headers=POLICE, json={"by": "vc-a"})
        assert ack.status_code == 200 and ack.json()["state"] == "acknowledged", ack.text
        await act(late, "on_scene")
        await act(late, "followup_done")


def burglary(kommune: str) -> dict[str, Any]:
    return {
        "category": "burglary_home", "description": "Terrassedøren brudt op.", "in_progress": False,
        "kommune": kommune, "address": "Bygaden 3", "contact": {"phone": "+4522334455"},
    }  # fmt: skip
