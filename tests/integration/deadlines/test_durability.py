"""Deadlines fire once, whatever dies: a killed service catches up on restart; two instances never double-fire."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

import httpx

from shared.events import CloudEvent
from shared.events import deadlines as ev
from shared.events.deadlines import DeadlineBreached
from tests.integration.deadlines.conftest import CasesTopic, deadlines_env, now
from tests.support.cases import reported
from tests.support.infra import Namespace
from tests.support.kafka_read import read_all
from tests.support.services import ServiceProcess
from tests.support.waiting import eventually


async def events_on(ns: Namespace, *, expect: int | None = None, timeout: float = 30.0) -> list[CloudEvent]:
    return [
        CloudEvent.from_bytes(r.value)
        for r in await read_all(ns.kafka, ns.topics.deadlines, expect=expect, timeout=timeout)
    ]


def per_deadline(events: list[CloudEvent], event_type: str) -> Counter[str]:
    return Counter(e.data["deadline_id"] for e in events if e.type == event_type)


async def test_killed_after_due_and_before_firing_breaches_exactly_once_after_restart(
    ns: Namespace, deadlines_schema: str, cases_topic: CasesTopic, tmp_path: Path
) -> None:
    service = ServiceProcess("deadlines", deadlines_env(ns), tmp_path / "deadlines.log")
    service.start().wait_ready()
    case = uuid.uuid4()
    received = now()
    await cases_topic.publish(reported(case, "violence", received, acute=True))  # PT4S window
    await eventually(lambda: _has_type(ns, ev.STARTED), timeout=20, what="deadline started")

    service.kill()  # SIGKILL before the 2 s warning and the 4 s breach
    while now() < received + timedelta(seconds=6):  # both fall due while nobody is running
        await asyncio.sleep(0.2)
    assert not await _has_type(ns, ev.BREACHED)

    restarted_at = now()
    service.start().wait_ready()
    try:
        await eventually(lambda: _has_type(ns, ev.BREACHED), timeout=20, what="breach after restart")
        await asyncio.sleep(2)  # room for a duplicate to show up, should there be one
    finally:
        service.stop()
    events = await events_on(ns)
    assert sum(per_deadline(events, ev.BREACHED).values()) == 1
    assert sum(per_deadline(events, ev.STARTED).values()) == 1
    breach = next(e for e in events if e.type == ev.BREACHED).payload()
    assert isinstance(breach, DeadlineBreached)
    assert breach.breached_at == received + timedelta(seconds=4)  # the promise broke at the due time
    # A warning that fell due during the outage is not sent late next to its breach.
    assert per_deadline(events, ev.WARNING) == Counter()
    assert restarted_at > breach.breached_at


async def _has_type(ns: Namespace, event_type: str) -> bool:
    records = await read_all(ns.kafka, ns.topics.deadlines, timeout=3, idle=0.5)
    return any(CloudEvent.from_bytes(r.value).type == event_type for r in records)


async def test_two_instances_fire_every_deadline_exactly_once(
    ns: Namespace, deadlines_schema: str, cases_topic: CasesTopic, tmp_path: Path
) -> None:
    env = deadlines_env(ns)
    first = ServiceProcess("deadlines", env, tmp_path / "a.log").start()
    second = ServiceProcess("deadlines", env, tmp_path / "b.log").start()
    first.wait_ready()
    second.wait_ready()
    try:
        received = now()
        reports = [reported(uuid.uuid4(), "burglary_home", received, in_progress=False) for _ in range(40)]
        await cases_topic.publish(*reports)
        # 40 cases x (24h guarantee + follow-up target) = 80 deadlines; 80 breaches expected by ~7 s.
        deadline = time.monotonic() + 45
        events: list[CloudEvent] = []
        while time.monotonic() < deadline:
            events = await events_on(ns, timeout=3)
            if sum(per_deadline(events, ev.BREACHED).values()) >= 80:
                break
            await asyncio.sleep(1)
        await asyncio.sleep(2)
        events = await events_on(ns)
        fired = [_fired_total(instance) for instance in (first, second)]
    finally:
        first.stop()
        second.stop()
    started = per_deadline(events, ev.STARTED)
    breached = per_deadline(events, ev.BREACHED)
    warned = per_deadline(events, ev.WARNING)
    assert len(started) == 80 and set(started.values()) == {1}
    assert len(breached) == 80 and set(breached.values()) == {1}, breached.most_common(3)
    assert set(warned.values()) == {1}
    # Event ids are deterministic, so the topic alone would hide a double fire; the timers' own
    # counts show that each warning and breach was claimed by exactly one instance.
    assert sum(fired) == sum(warned.values()) + sum(breached.values()), fired


def _fired_total(instance: ServiceProcess) -> float:
    text = httpx.get(instance.ops_url + "/metrics", timeout=5).text
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith("deadline_timer_fired_total"))
