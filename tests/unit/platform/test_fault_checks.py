"""Each count of the whole-system fault test (tests/faults) fails on the broken input it exists to catch."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.events import CloudEvent
from shared.events import cases as case_ev
from shared.events import deadlines as ev
from tests.support import fault_checks as checks
from tests.support.fault_checks import Received

T0 = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)


def event(
    kind: str, subject: str, data: dict[str, Any] | None = None, *, same_as: CloudEvent | None = None
) -> CloudEvent:
    return CloudEvent(
        id=same_as.id if same_as else uuid.uuid4(), source="/test", type=kind, subject=subject, time=T0,
        kommune="0265", data=data or {},
    )  # fmt: skip


def test_reports_once_sees_a_lost_a_doubled_and_a_stray_report() -> None:
    a, b = "case-a", "case-b"
    first = event(case_ev.REPORTED, a)
    redelivered = event(case_ev.REPORTED, a, same_as=first)
    assert checks.reports_once({a}, [first, redelivered]) == []  # the same id twice is one event
    assert "never on cases.v1" in checks.reports_once({a, b}, [first])[0]
    assert "two event ids" in checks.reports_once({a}, [first, event(case_ev.REPORTED, a)])[0]
    assert "no client was told" in checks.reports_once(set(), [first])[0]


def test_actions_once_sees_a_lost_and_a_doubled_action() -> None:
    on_scene = event(case_ev.ACTION_RECORDED, "c", {"action": "on_scene"})
    assert (
        checks.actions_once(
            [("c", "on_scene")],
            [on_scene, event(case_ev.ACTION_RECORDED, "c", {"action": "on_scene"}, same_as=on_scene)],
        )
        == []
    )
    assert (
        "two event ids"
        in checks.actions_once(
            [("c", "on_scene")], [on_scene, event(case_ev.ACTION_RECORDED, "c", {"action": "on_scene"})]
        )[0]
    )
    assert "never on cases.v1" in checks.actions_once([("c", "on_scene"), ("c", "followup_done")], [on_scene])[0]


def deadline(kind: str, deadline_id: str, case: str = "c", **data: Any) -> CloudEvent:
    return event(kind, case, {"deadline_id": deadline_id, **data})


def started(deadline_id: str, due: datetime, case: str = "c") -> CloudEvent:
    return deadline(ev.STARTED, deadline_id, case, due_at=due.isoformat(), stop_on=["on_scene"])


def test_deadlines_once_sees_an_unfired_a_doubled_and_a_wrong_breach() -> None:
    due = T0 + timedelta(seconds=20)
    now = due + timedelta(seconds=30)
    fine = checks.deadlines_once([started("d", due), deadline(ev.BREACHED, "d")], {}, now)
    assert fine.problems == [] and fine.standing_breaches == 1 and fine.started == 1

    unfired = checks.deadlines_once([started("d", due)], {}, now)
    assert "never fired" in unfired.problems[0]
    assert checks.deadlines_once([started("d", due)], {}, due).problems == []  # not due yet

    twice = checks.deadlines_once([started("d", due), deadline(ev.BREACHED, "d"), deadline(ev.BREACHED, "d")], {}, now)
    assert "fired twice" in twice.problems[0]

    in_time = {"c": due - timedelta(seconds=1)}
    wrong = checks.deadlines_once([started("d", due), deadline(ev.BREACHED, "d")], in_time, now)
    assert "on scene in time" in wrong.problems[0]
    withdrawn = checks.deadlines_once(
        [started("d", due), deadline(ev.BREACHED, "d"), deadline(ev.BREACH_WITHDRAWN, "d"), deadline(ev.MET, "d")],
        in_time, now,
    )  # fmt: skip
    assert withdrawn.problems == [] and withdrawn.standing_breaches == 0 and withdrawn.withdrawn == 1
    late = {"c": due + timedelta(seconds=1)}
    assert checks.deadlines_once([started("d", due), deadline(ev.BREACHED, "d")], late, now).problems == []


def test_stages_once_sees_a_double_a_pending_and_a_missing_delivery() -> None:
    one = Received("/r/vc-a", "w1", "alert-1", "raised")
    delivered = [{"id": "w1", "state": "delivered"}]
    assert checks.stages_once([one, one], delivered) == []  # the same webhook-id retried is one delivery
    assert "two webhook-ids" in checks.stages_once([one, Received("/r/vc-a", "w2", "alert-1", "raised")], delivered)[0]
    assert "not delivered" in checks.stages_once([one], [*delivered, {"id": "w3", "state": "pending"}])[0]
    assert "never reached" in checks.stages_once([], delivered)[0]


def test_figures_agree_sees_a_miscount() -> None:
    figures = {"reports": 10, "tips": 2, "breached_deadlines": {"guarantee": 3, "local_target": 1}}
    assert checks.figures_agree(figures, reports=10, tips=2, standing_breaches=4) == []
    assert len(checks.figures_agree(figures, reports=11, tips=3, standing_breaches=5)) == 3
