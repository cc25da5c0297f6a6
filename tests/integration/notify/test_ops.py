"""Watching the watcher: the heartbeat reaches an external monitor, and the metrics count what happened."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from services.notify.bootstrap import build_app
from tests.integration.notify.conftest import POLICE, Deadline, TestRoster, Upstream, settings_for
from tests.support.infra import Namespace
from tests.support.receivers import SmtpSink, WebhookReceiver
from tests.support.services import in_process
from tests.support.waiting import eventually


def sample(text: str, name: str, **labels: str) -> float:
    """One sample's value (0 when absent); the registry is the test process's, so tests compare differences."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


async def test_heartbeat_and_metrics(
    ns: Namespace, notify_schema: str, roster: TestRoster, smtp: SmtpSink, receiver: WebhookReceiver, upstream: Upstream
) -> None:
    app = build_app(settings_for(ns, roster, smtp, heartbeat_url=receiver.url("/heartbeat"),
                                 heartbeat_interval_seconds=0.2))  # fmt: skip
    async with in_process(app) as client:
        await app.state.runtime.consuming.wait()
        await eventually(lambda: len(receiver.to("/heartbeat")) >= 2, timeout=10, what="heartbeats")
        before = (await client.get("/metrics")).text
        deadline = Deadline()
        await upstream.publish(deadline.reported(), deadline.warning())
        await eventually(lambda: smtp.to("lb2@politi.example"), timeout=20)

        # Unacknowledged: escalated after 3 s, to the last step after 3 more, then reminded: past its chain.
        async def past_chain() -> bool:
            return sample((await client.get("/metrics")).text, "notify_alerts_past_chain") == 1.0

        await eventually(past_chain, timeout=30, what="alert counted as past its chain")
        after = (await client.get("/metrics")).text

        def grew(name: str, **labels: str) -> float:
            return sample(after, name, **labels) - sample(before, name, **labels)

        assert grew("notify_alerts_raised_total", kommune="0265", reason="deadline_warning", severity="warning") == 1
        assert grew("notify_delivery_latency_seconds_count", channel="email", kind="raised") == 1
        assert grew("notify_escalations_total", level="1") == 1 and grew("notify_escalations_total", level="2") == 1
        assert sample(after, "notify_alerts_open_unacknowledged", kommune="0265", severity="warning") == 1
        alert = (await client.get("/v1/alerts", headers=POLICE)).json()["items"][0]
        assert (
            await client.post(f"/v1/alerts/{alert['id']}/ack", headers=POLICE, json={"by": "vc-a"})
        ).status_code == 200
        acked = (await client.get("/metrics")).text
        count = "notify_time_to_acknowledge_seconds_count"
        assert sample(acked, count, severity="warning") - sample(before, count, severity="warning") == 1
