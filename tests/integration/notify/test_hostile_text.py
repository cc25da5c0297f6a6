"""Who acknowledges, as a hostile client writes it, on real Kafka and Postgres: a 422 naming `by`, nothing recorded.

`by` goes out on alerts.v1 and into the e-mails that tell the others who took the alert: a CR LF
would write a line of its own into them, a zero-width character make a name look like a roster id,
a NUL reach Postgres (which refuses it in text: a 500, and nothing recorded).
"""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from services.notify.domain.alert import alert_id_for
from tests.integration.notify.conftest import POLICE, Deadline, Upstream, alert_of
from tests.support.receivers import WebhookReceiver
from tests.support.waiting import eventually

HOSTILE = {
    "nul": ("vc-a\x00", "U+0000"),
    "crlf": ("vc-a\r\nKvitteret af: Rigspolitichefen", "U+000D"),
    "bidi": ("\u202ea-cv", "U+202E"),
    "zero-width": ("vc\u200b-a", "U+200B"),
}


@pytest.mark.parametrize("hostile", sorted(HOSTILE))
async def test_a_hostile_by_is_a_422_naming_it_and_the_alert_is_not_acknowledged(
    notify_service: tuple[FastAPI, httpx.AsyncClient], upstream: Upstream, receiver: WebhookReceiver, hostile: str
) -> None:
    _, client = notify_service
    deadline = Deadline()
    await upstream.publish(deadline.reported(), deadline.warning())
    await eventually(lambda: receiver.delivered("/lb1"), timeout=20, what="the warning delivered")
    alert_id = str(alert_id_for(deadline.case_id, deadline.rule))

    text, point = HOSTILE[hostile]
    r = await client.post(f"/v1/alerts/{alert_id}/ack", json={"by": text}, headers=POLICE)
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", r.text
    [error] = r.json()["errors"]
    assert error["field"] == "by" and point in error["message"], error

    alert = await alert_of(client, alert_id)
    assert alert["state"] == "open" and alert["acknowledged_by"] is None
    assert [a for a in alert["audit"] if a["kind"] == "acknowledged"] == []
    # The same officer, written plainly, may still take it: the refusal changed nothing.
    done = await client.post(f"/v1/alerts/{alert_id}/ack", json={"by": "vc-a"}, headers=POLICE)
    assert done.status_code == 200 and done.json()["acknowledged_by"] == "vc-a"
