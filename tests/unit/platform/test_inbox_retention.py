"""How long an inbox row is kept (shared/inbox.py), and that every service runs the purge."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.inbox import inbox_retention, purge_inbox_loop
from tests.unit.platform.test_edge import EVERY_APP

WEEK = timedelta(days=7)
DAY = timedelta(days=1)


def test_a_row_outlives_its_topic_and_a_dead_letter_redriven_at_the_last_moment() -> None:
    keep = inbox_retention(
        {"cases.v1": WEEK, "deadlines.v1": 3 * DAY}, {"dlq.a.v1": WEEK, "dlq.b.v1": 2 * DAY}, margin=DAY
    )
    assert keep == WEEK + WEEK + DAY


@pytest.mark.parametrize("forever", ["consumed", "dead_letter"])
def test_nothing_is_purged_while_a_topic_that_can_bring_an_event_back_keeps_it_for_ever(forever: str) -> None:
    consumed: dict[str, timedelta | None] = {"cases.v1": WEEK}
    dead: dict[str, timedelta | None] = {"dlq.a.v1": WEEK}
    (consumed if forever == "consumed" else dead)["x"] = None
    assert inbox_retention(consumed, dead, margin=DAY) is None


def test_a_configured_retention_is_the_operators_decision_and_a_service_that_consumes_nothing_keeps_the_margin() -> (
    None
):
    assert inbox_retention({"cases.v1": None}, {}, margin=DAY, configured=2 * DAY) == 2 * DAY
    assert inbox_retention({}, {"dlq.a.v1": None}, margin=DAY) == DAY


@pytest.mark.parametrize("service", sorted(EVERY_APP))
def test_every_service_runs_the_inbox_purge_among_its_loops(service: str) -> None:
    app = EVERY_APP[service]()
    assert purge_inbox_loop in app.state.runtime.loops, f"{service} never purges its processed_events"
