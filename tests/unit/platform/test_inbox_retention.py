"""How long an inbox row is kept (shared/inbox.py), and that every service runs the purges (inbox, web sessions)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.clock import ManualClock
from shared.inbox import InboxPurge, inbox_retention, purge_inbox_loop
from shared.websession import purge_web_sessions_loop
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


class FakePool:
    """Answers the purge's DELETE as Postgres would, remembering the cutoff it was given."""

    def __init__(self) -> None:
        self.cutoffs: list[datetime] = []

    async def execute(self, sql: str, cutoff: datetime) -> str:
        assert sql.startswith("DELETE FROM processed_events")
        self.cutoffs.append(cutoff)
        return "DELETE 3"


async def test_a_round_reads_the_retention_from_kafka_and_purges_before_it(monkeypatch: pytest.MonkeyPatch) -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    described: dict[str, timedelta | None] = {"cases.v1": WEEK, "dlq.a.v1": 2 * DAY, "history.v1": WEEK}

    async def retention(bootstrap: str, topics: list[str]) -> dict[str, timedelta | None]:
        return {t: described[t] for t in topics}

    monkeypatch.setattr("shared.inbox.topic_retention", retention)
    pool = FakePool()
    purge = InboxPurge(pool, ManualClock(now), service="svc", bootstrap="k:9092", consumed=["cases.v1"],  # type: ignore[arg-type]
                       dead_letters=["dlq.a.v1"], margin=DAY)  # fmt: skip
    assert await purge.run_once() == 3 and pool.cutoffs == [now - (WEEK + 2 * DAY + DAY)]
    described["history.v1"] = None
    forever = InboxPurge(pool, ManualClock(now), service="svc", bootstrap="k:9092",  # type: ignore[arg-type]
                         consumed=["cases.v1", "history.v1"], dead_letters=[], margin=DAY)  # fmt: skip
    assert await forever.run_once() == 0 and await forever.run_once() == 0 and len(pool.cutoffs) == 1


@pytest.mark.parametrize("service", sorted(EVERY_APP))
def test_every_service_with_pages_purges_its_ended_sessions(service: str) -> None:
    app = EVERY_APP[service]()
    has_pages = getattr(app.state, "web_sessions", None) is not None
    assert (purge_web_sessions_loop in app.state.runtime.loops) == has_pages, f"{service}: pages and the purge"
    assert has_pages == (service in ("notify", "reporting"))
