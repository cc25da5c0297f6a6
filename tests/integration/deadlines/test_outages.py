"""The deadlines service rides out Kafka being away: it starts without it, says so, and catches up."""

from __future__ import annotations

import uuid

from services.deadlines.bootstrap import build_app
from shared.events import CloudEvent
from shared.events import deadlines as ev
from tests.integration.deadlines.conftest import CasesTopic, now, settings_for
from tests.support.cases import reported
from tests.support.infra import LocalKafka, Namespace
from tests.support.kafka_read import read_all
from tests.support.services import in_process
from tests.support.waiting import eventually


async def test_starts_while_kafka_is_down_and_consumes_once_it_is_back(
    ns: Namespace, deadlines_schema: str, cases_topic: CasesTopic, local_kafka: LocalKafka
) -> None:
    local_kafka.stop()
    try:
        app = build_app(settings_for(ns, kafka_send_timeout_seconds=2.0))
        async with in_process(app) as client:
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"] == {"postgres": "ok", "kafka": "failing", "loops": "ok"}
            assert (await client.get("/healthz")).status_code == 200  # alive, just not ready

            local_kafka.start()
            await local_kafka.wait_ready()
            await eventually(app.state.runtime.consuming.is_set, timeout=60, what="consumers started")
            case = uuid.uuid4()
            await cases_topic.publish(reported(case, "rape", now(), acute=True))
            await eventually(lambda: _started(ns, case), timeout=30, what="deadline started after Kafka returned")
    finally:
        local_kafka.start()


async def _started(ns: Namespace, case: uuid.UUID) -> bool:
    records = await read_all(ns.kafka, ns.topics.deadlines, timeout=3, idle=0.5)
    return any((e := CloudEvent.from_bytes(r.value)).type == ev.STARTED and e.subject == str(case) for r in records)
