"""The whole flow with notify: a deadline in trouble reaches officers (signed webhook, e-mail, the console's
API), escalates until acknowledged, resolves when the patrol arrives, and the council report counts it all.

The four services run as processes on the test's topics and schemas, with the deadline rules and the
alert policy of seconds (tests/testdata: acks due in 3 s) and a roster
whose channels point at a real webhook receiver and a real SMTP server in this test.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from standardwebhooks.webhooks import Webhook

from services.reporting.domain.periods import Period
from tests.support.infra import Namespace
from tests.support.notify import new_secret, roster_document, write_roster
from tests.support.receivers import SmtpSink, WebhookReceiver
from tests.support.services import PORTAL_LIKE_HOOKS, ServiceProcess, service_env
from tests.support.waiting import eventually
from tests.testdata import SECONDS_POLICY_FILE, SECONDS_RULES_FILE

PORTAL = {"Authorization": "Bearer dev-portal-key"}
POLICE = {"Authorization": "Bearer dev-police-key"}
COUNCIL = {"Authorization": "Bearer dev-council-key"}
LEJRE = "0350"


def burglary() -> dict[str, object]:
    return {
        "category": "burglary_home",
        "description": "Kom hjem og fandt terrassedøren brudt op.",
        "in_progress": False,
        "kommune": LEJRE,
        "address": "Bygaden 3",
        "contact": {"name": "Test Borger", "phone": "+4522334455"},
    }


class AlertingSystem:
    """The four services as processes, a webhook receiver and an SMTP server; the roster sends
    Lejre's lokalbetjent (lb-0350) a webhook on /lb, the vagtchefer one on /vagtchef, the vagtcentral
    an e-mail; everyone else the console."""

    def __init__(
        self, ns: Namespace, tmp_path: Path, burglary_window_seconds: float | None, env: dict[str, str] | None = None
    ) -> None:
        self.receiver = WebhookReceiver().start()
        self.smtp = SmtpSink().start()
        self.secrets = {p: new_secret() for p in ("/lb", "/vagtchef")}

        def hook(p: str) -> dict[str, str]:
            return {"type": "webhook", "url": self.receiver.url(p), "secret": self.secrets[p]}

        channels = {
            "lb-0350": [hook("/lb"), {"type": "console"}],
            "vc-a": [hook("/vagtchef"), {"type": "console"}],
            "vc-b": [hook("/vagtchef"), {"type": "console"}],
            "vagtcentral": [{"type": "email", "to": "vagtcentral@politi.example"}, {"type": "console"}],
        }
        roster = write_roster(tmp_path / "roster.yaml", roster_document(officer_channels=channels))
        rules = SECONDS_RULES_FILE
        if burglary_window_seconds is not None:
            rules = rules_with_burglary_window(tmp_path / "rules.yaml", burglary_window_seconds)
        env = {
            "INTAKE_OUTBOX_POLL_SECONDS": "0.5",
            "DEADLINE_RULES_FILE": str(rules),
            "ROSTER_FILE": str(roster),
            "ALERT_POLICY_FILE": str(SECONDS_POLICY_FILE),
            "NOTIFY_SMTP_PORT": str(self.smtp.port),
            "NOTIFY_RETRY_BASE_SECONDS": "0.2",
            "NOTIFY_RETRY_CAP_SECONDS": "1",
            "NOTIFY_MAX_SLEEP_SECONDS": "1",
        } | (env or {})
        self.envs = {name: service_env(ns, name, **env) for name in ("intake", "deadlines", "notify", "reporting")}
        self.logs = {name: tmp_path / f"{name}.log" for name in self.envs}
        self.services = {name: ServiceProcess(name, self.envs[name], self.logs[name]) for name in self.envs}

    def url(self, service: str) -> str:
        return self.services[service].url

    def start(self) -> AlertingSystem:
        for service in self.services.values():
            service.migrate()
            service.start()
        for service in self.services.values():
            service.wait_ready()
        return self

    def restart(self, name: str, **env: str) -> None:
        """Stops a service and starts it again with these settings changed (as an operator would); new ports."""
        self.services[name].stop()
        self.services[name] = ServiceProcess(name, self.envs[name] | env, self.logs[name]).start()
        self.services[name].wait_ready()

    def stop(self) -> None:
        for service in self.services.values():
            service.stop()
        self.receiver.stop()
        self.smtp.stop()


def rules_with_burglary_window(path: Path, seconds: float) -> Path:
    """The test rules with another window for the 24-hour burglary guarantee (the rest unchanged)."""
    document = yaml.safe_load(SECONDS_RULES_FILE.read_text(encoding="utf-8"))
    for rule in document["rules"]:
        if rule["id"] == "burglary_home_24h":
            rule["window"] = f"PT{seconds:g}S"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def alerting_system(ns: Namespace, tmp_path: Path) -> Iterator[Callable[..., AlertingSystem]]:
    """Starts the whole system for a test (`alerting_system(burglary_window_seconds=10)`, `env` to change
    settings); stops it after."""
    started: list[AlertingSystem] = []

    def start(burglary_window_seconds: float | None = None, env: dict[str, str] | None = None) -> AlertingSystem:
        system = AlertingSystem(ns, tmp_path, burglary_window_seconds, env)
        started.append(system)
        return system.start()

    try:
        yield start
    finally:
        for system in started:
            system.stop()


class Flow:
    """A client of the four services' public APIs, as the portal, the police and the council use them."""

    def __init__(self, system: AlertingSystem, client: httpx.AsyncClient) -> None:
        self.s = system
        self.client = client

    async def report(self) -> str:
        accepted = await self.client.post(f"{self.s.url('intake')}/v1/reports", json=burglary(), headers=PORTAL)
        assert accepted.status_code == 202, accepted.text
        return str(accepted.json()["case_id"])

    async def act(self, case_id: str, action: str) -> None:
        body = {"action": action, "occurred_at": datetime.now(UTC).isoformat(), "officer_id": "mvsj-1234"}
        answer = await self.client.post(f"{self.s.url('intake')}/v1/cases/{case_id}/actions", json=body, headers=POLICE)
        assert answer.status_code == 202, answer.text

    async def guarantee(self, case_id: str) -> dict[str, Any]:
        deadlines = self.s.url("deadlines")
        page = (await self.client.get(f"{deadlines}/v1/deadlines", params={"limit": 500}, headers=POLICE)).json()
        found = [d for d in page["items"] if d["case_id"] == case_id and d["rule_id"] == "burglary_home_24h"]
        if not found:
            return {}
        detail: dict[str, Any] = (
            await self.client.get(f"{deadlines}/v1/deadlines/{found[0]['id']}", headers=POLICE)
        ).json()
        return detail

    async def alert(self, case_id: str) -> dict[str, Any]:
        """The guarantee's alert as the console's API shows it, with its audit trail ({} while there is none)."""
        notify = self.s.url("notify")
        page = (await self.client.get(f"{notify}/v1/alerts", params={"kommune": LEJRE}, headers=POLICE)).json()
        found = [a for a in page["items"] if a["case_id"] == case_id and a["rule_id"] == "burglary_home_24h"]
        if not found:
            return {}
        detail: dict[str, Any] = (await self.client.get(f"{notify}/v1/alerts/{found[0]['id']}", headers=POLICE)).json()
        return detail

    async def report_figures(self) -> dict[str, Any]:
        period = Period.containing(datetime.now(UTC), "quarter")
        answer = await self.client.get(f"{self.s.url('reporting')}/v1/council-reports/kreds/{period}.json",
                                       headers=COUNCIL)  # fmt: skip
        assert answer.status_code == 200, answer.text
        current: dict[str, Any] = answer.json()["current"]
        return current


def timeline(deadline: dict[str, Any]) -> list[str]:
    return [t["type"].rsplit(".", 1)[1] for t in deadline.get("timeline", [])]


def rule_figures(current: dict[str, Any]) -> dict[str, Any]:
    """The burglary guarantee's figures ({} until reporting has seen one of its deadlines)."""
    found: dict[str, Any] = next((r for r in current["compliance"]["rules"] if r["rule_id"] == "burglary_home_24h"), {})
    return found


def verified(system: AlertingSystem, path: str) -> list[dict[str, Any]]:
    """The payloads the receiver got on `path` whose Standard Webhooks signature checks out."""
    out = []
    for hit in system.receiver.delivered(path):
        payload = Webhook(system.secrets[path]).verify(hit.body, hit.headers)  # raises on a bad signature
        out.append(payload if isinstance(payload, dict) else json.loads(hit.body))
    return out


async def test_warning_alert_reaches_the_officer_then_the_patrol_meets_the_guarantee(
    alerting_system: Callable[..., AlertingSystem],
) -> None:
    # 10 s instead of the test file's 4 s, so the patrol can arrive after the alert and still in time.
    system = alerting_system(burglary_window_seconds=10)
    async with httpx.AsyncClient(timeout=10, event_hooks=PORTAL_LIKE_HOOKS) as client:
        flow = Flow(system, client)
        case_id = await flow.report()

        async def warned() -> bool:
            return (await flow.alert(case_id)).get("reason") == "deadline_warning"

        await eventually(warned, timeout=30, step=0.1, what="the guarantee's warning alert in the console's API")
        alert = await flow.alert(case_id)
        assert alert["state"] == "open" and alert["severity"] == "warning" and alert["kommune"] == LEJRE

        async def at_the_webhook() -> bool:
            return any(p["alert"]["id"] == alert["id"] for p in verified(system, "/lb"))

        await eventually(at_the_webhook, timeout=20, step=0.1, what="the warning at the lokalbetjent's webhook")
        delivered = next(p for p in verified(system, "/lb") if p["alert"]["id"] == alert["id"])
        assert delivered["stage"] == "raised" and delivered["alert"]["reason"] == "deadline_warning"
        assert delivered["alert"]["reference"] and delivered["ack_url"]
        assert "Test Borger" not in json.dumps(delivered) and "+4522334455" not in json.dumps(delivered)

        await flow.act(case_id, "on_scene")

        async def met() -> bool:
            return (await flow.guarantee(case_id)).get("state") == "met"

        await eventually(met, timeout=20, what="the guarantee met")
        guarantee = await flow.guarantee(case_id)
        assert guarantee["late"] is False and timeline(guarantee) == ["started", "warning", "met"]

        async def resolved() -> bool:
            return (await flow.alert(case_id)).get("state") == "resolved"

        await eventually(resolved, timeout=20, what="the alert resolved by the met guarantee")
        assert (await flow.alert(case_id))["acknowledged_at"] is None  # nobody had to: the patrol came

        async def counted() -> bool:
            # The rule is in the report only once reporting has seen one of its deadlines.
            return bool(rule_figures(await flow.report_figures()).get("concluded") == 1)

        await eventually(counted, timeout=30, what="the council report counting the guarantee")
        current = await flow.report_figures()
        figures = rule_figures(current)
        assert (figures["compliance"]["numerator"], figures["compliance"]["denominator"]) == (1, 1)
        # Two alerts: the guarantee's, and the follow-up target's (its 6 s window warned at 3 s, before this one).
        assert current["reports"] == 1 and current["alerts"]["raised"] == 2
        period = Period.containing(datetime.now(UTC), "quarter")
        reporting = system.url("reporting")
        lejre = await client.get(
            f"{reporting}/v1/kpis", params={"scope": LEJRE, "period": str(period)}, headers=COUNCIL
        )
        assert lejre.json()["current"]["reports"] == 1
        html = await client.get(f"{reporting}/v1/council-reports/kreds/{period}.html", headers=COUNCIL)
        assert html.status_code == 200 and "Test Borger" not in html.text and "+4522334455" not in html.text


async def test_breach_escalates_until_acknowledged_and_the_late_arrival_is_counted(
    alerting_system: Callable[..., AlertingSystem],
) -> None:
    system = alerting_system()  # the 4 s guarantee; acks due within 3 s
    async with httpx.AsyncClient(timeout=10, event_hooks=PORTAL_LIKE_HOOKS) as client:
        flow = Flow(system, client)
        case_id = await flow.report()

        # Nobody comes: the guarantee breaches; the alert becomes critical and goes to the vagtchef.
        async def breach_at_the_vagtchef() -> bool:
            alert = await flow.alert(case_id)
            return any(p["alert"]["id"] == alert.get("id") and p["alert"]["reason"] == "deadline_breached"
                       for p in verified(system, "/vagtchef"))  # fmt: skip

        await eventually(breach_at_the_vagtchef, timeout=30, what="the breach at the vagtchef's webhook")
        assert "breached" in timeline(await flow.guarantee(case_id))

        # Nobody acknowledges within 3 s: the akut chain escalates to the vagtcentral (e-mail).
        async def escalated() -> bool:
            return (await flow.alert(case_id)).get("state") == "escalated"

        await eventually(escalated, timeout=30, what="the alert escalated")
        reference = (await flow.alert(case_id))["reference"]

        def guarantee_mails() -> list[str]:
            texts = []
            for m in system.smtp.to("vagtcentral@politi.example"):
                plain = m.get_body(preferencelist=("plain",))
                assert plain is not None, "an e-mail without a text/plain part"
                texts.append(plain.get_content())
            return [t for t in texts if reference in t and "24 timer" in t and t.startswith("Eskaleret")]

        await eventually(lambda: bool(guarantee_mails()), timeout=20, what="the escalation e-mailed to the vagtcentral")
        assert "Test Borger" not in guarantee_mails()[0] and "Kvittér for alarmen" in guarantee_mails()[0]

        alert = await flow.alert(case_id)
        ack = await client.post(f"{system.url('notify')}/v1/alerts/{alert['id']}/ack", json={"by": "vc-a"},
                                headers=POLICE)  # fmt: skip
        assert ack.status_code == 200, ack.text
        assert ack.json()["state"] == "acknowledged" and ack.json()["acknowledged_by"] == "vc-a"
        escalations = sum(1 for e in (await flow.alert(case_id))["audit"] if e["kind"] == "escalated")
        assert escalations >= 1

        # The patrol arrives late: the guarantee is met late, the alert resolved.
        await flow.act(case_id, "on_scene")

        async def resolved() -> bool:
            return (await flow.alert(case_id)).get("state") == "resolved"

        await eventually(resolved, timeout=20, what="the alert resolved by the late arrival")
        guarantee = await flow.guarantee(case_id)
        assert guarantee["state"] == "met" and guarantee["late"] is True
        assert timeline(guarantee) == ["started", "warning", "breached", "met"]
        # Acknowledged, escalation stopped: no escalation after the ack in the trail.
        trail = (await flow.alert(case_id))["audit"]
        kinds = [e["kind"] for e in trail]
        assert "acknowledged" in kinds and "escalated" not in kinds[kinds.index("acknowledged") :]

        async def counted() -> bool:
            current = await flow.report_figures()
            return bool(rule_figures(current).get("concluded") == 1 and current["alerts"]["acknowledged"] == 1)

        await eventually(counted, timeout=30, what="the council report counting the breach and the ack")
        current = await flow.report_figures()
        figures = rule_figures(current)
        assert (figures["compliance"]["numerator"], figures["compliance"]["denominator"]) == (0, 1)
        assert figures["exceptions"]["met_late"] == 1
        assert current["breached_deadlines"]["guarantee"] >= 1
        assert current["alerts"]["escalated"] >= 1
