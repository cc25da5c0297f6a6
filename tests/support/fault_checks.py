"""The counts of the whole-system fault test, as pure functions: each returns the problems it finds.

Kept apart from the test so that each count is shown to fail on a broken input
(tests/unit/platform/test_fault_checks.py): a check that cannot fail proves nothing. Everything is
counted by distinct event id (or webhook-id): the bus is at-least-once, so the same id twice is one
event, and two ids for one fact are a double.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.events import CloudEvent
from shared.events import cases as case_ev
from shared.events import deadlines as ev


def reports_once(accepted: set[str], cases: Sequence[CloudEvent]) -> list[str]:
    """Every case a client got a 202 for is on cases.v1 under one event id; nothing else is."""
    opened: dict[str, set[uuid.UUID]] = defaultdict(set)
    for e in cases:
        if e.type in (case_ev.REPORTED, case_ev.TIP_RECEIVED, case_ev.OFFICER_REQUESTED):
            opened[e.subject].add(e.id)
    problems = []
    if lost := accepted - set(opened):
        problems.append(f"{len(lost)} accepted but never on cases.v1, e.g. {sorted(lost)[:3]}")
    if doubled := {c: ids for c, ids in opened.items() if len(ids) > 1}:
        problems.append(f"{len(doubled)} cases on cases.v1 under two event ids, e.g. {list(doubled)[:3]}")
    if strays := set(opened) - accepted:
        problems.append(f"{len(strays)} cases on cases.v1 no client was told were accepted")
    return problems


def actions_once(sent: Sequence[tuple[str, str]], cases: Sequence[CloudEvent]) -> list[str]:
    """Every police action a client got a 202 for is on cases.v1 once (by distinct event id)."""
    distinct = {e.id: e for e in cases if e.type == case_ev.ACTION_RECORDED}
    on_bus = Counter((e.subject, e.data["action"]) for e in distinct.values())
    problems = []
    if twice := [k for k, n in on_bus.items() if n > 1]:
        problems.append(f"{len(twice)} actions on cases.v1 under two event ids, e.g. {twice[:3]}")
    if missing := Counter(sent) - on_bus:
        problems.append(f"{sum(missing.values())} accepted actions never on cases.v1, e.g. {list(missing)[:3]}")
    return problems


@dataclass(frozen=True)
class DeadlineCounts:
    problems: list[str]
    started: int
    standing_breaches: int
    withdrawn: int


def deadlines_once(
    events: Sequence[CloudEvent], on_scene: Mapping[str, datetime], now: datetime, grace: float = 5.0
) -> DeadlineCounts:
    """Every deadline due by `now` fired (met, breached or cancelled), none fired twice, and none is left
    breached whose case had its patrol on scene (`on_scene`, by case id: the action's own time) in time."""
    kinds: dict[str, dict[str, set[uuid.UUID]]] = defaultdict(lambda: defaultdict(set))
    started: dict[str, CloudEvent] = {}
    for e in events:
        kind = e.type if e.type != ev.WARNING else f"{e.type}:{e.data['fraction']}"
        kinds[e.data["deadline_id"]][kind].add(e.id)
        if e.type == ev.STARTED:
            started[e.data["deadline_id"]] = e
    problems = []
    if twice := {d: [k for k, ids in ks.items() if len(ids) > 1] for d, ks in kinds.items()}:
        twice = {d: k for d, k in twice.items() if k}
        if twice:
            problems.append(f"{len(twice)} deadlines fired twice (two event ids), e.g. {list(twice.items())[:3]}")
    unfired = [
        d for d, e in started.items()
        if datetime.fromisoformat(e.data["due_at"]) < now - timedelta(seconds=grace)
        and not (kinds[d].keys() & {ev.BREACHED, ev.MET, ev.CANCELLED})
    ]  # fmt: skip
    if unfired:
        problems.append(f"{len(unfired)} deadlines due by now never fired, e.g. {unfired[:3]}")
    wrong = []
    for d, e in started.items():
        arrived = on_scene.get(e.subject)
        kept = arrived is not None and "on_scene" in (e.data.get("stop_on") or [])
        kept = kept and arrived <= datetime.fromisoformat(e.data["due_at"])  # type: ignore[operator]
        if kept and ev.BREACHED in kinds[d] and ev.BREACH_WITHDRAWN not in kinds[d]:
            wrong.append(d)
    if wrong:
        problems.append(f"{len(wrong)} deadlines breached although the patrol was on scene in time, e.g. {wrong[:3]}")
    standing = sum(1 for ks in kinds.values() if ev.BREACHED in ks and ev.BREACH_WITHDRAWN not in ks)
    withdrawn = sum(1 for ks in kinds.values() if ev.BREACH_WITHDRAWN in ks)
    return DeadlineCounts(problems, len(started), standing, withdrawn)


@dataclass(frozen=True)
class Received:
    """One webhook request the receiver answered 2xx, its signature already verified."""

    recipient: str
    webhook_id: str
    alert_id: str
    stage: str


def stages_once(received: Iterable[Received], deliveries: Iterable[Mapping[str, Any]]) -> list[str]:
    """Each alert stage reached each recipient under one webhook-id; every delivery notify recorded (its
    table's rows) is done and at the receiver."""
    ids: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for r in received:
        ids[(r.recipient, r.alert_id, r.stage)].add(r.webhook_id)
    got = {i for found in ids.values() for i in found}
    problems = []
    if twice := [k for k, v in ids.items() if len(v) > 1]:
        problems.append(f"{len(twice)} alert stages reached a recipient under two webhook-ids, e.g. {twice[:3]}")
    rows = list(deliveries)
    if pending := [str(d["id"]) for d in rows if d["state"] in ("pending", "failed")]:
        problems.append(f"{len(pending)} deliveries not delivered, e.g. {pending[:3]}")
    if missing := [str(d["id"]) for d in rows if d["state"] == "delivered" and str(d["id"]) not in got]:
        problems.append(
            f"{len(missing)} deliveries recorded as delivered never reached the receiver, e.g. {missing[:3]}"
        )
    return problems


def figures_agree(figures: Mapping[str, Any], *, reports: int, tips: int, standing_breaches: int) -> list[str]:
    """The council report of the period counts what the bus says happened."""
    problems = []
    if figures["reports"] != reports:
        problems.append(f"reporting counts {figures['reports']} reports, the clients got {reports} accepted")
    if figures["tips"] != tips:
        problems.append(f"reporting counts {figures['tips']} tips, the clients got {tips} accepted")
    breached = sum(figures["breached_deadlines"].values())
    if breached != standing_breaches:
        problems.append(f"reporting counts {breached} breaches, deadlines.v1 has {standing_breaches} standing")
    return problems
