"""An in-memory ReadModel, so reporting's use cases run without Postgres.

tests/support/contracts/reporting.py runs one suite against this fake and the Postgres read model.
"""

from __future__ import annotations

import bisect
import contextlib
import copy
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from datetime import date, datetime
from typing import Any, TypeVar

import numpy as np

from services.reporting.domain.facts import (
    ActionFact,
    AlertAckFact,
    AlertFact,
    AlertStageFact,
    CaseFact,
    DeadlineFact,
    FactBatch,
    RuleFact,
)
from services.reporting.domain.kpis import (
    AlertTally,
    CaseTally,
    DeadlineTally,
    DurationSample,
    PeriodFacts,
    StockTally,
)
from services.reporting.domain.periods import LOCAL, local_midnight

T = TypeVar("T")


def month_of(instant: datetime | None) -> datetime | None:
    """The local month an instant falls in, as its first instant: date_trunc('month', t, 'Europe/Copenhagen'),
    the key of the month counters (migrations/0004) that case, deadline and action counts are read from."""
    if instant is None:
        return None
    local = instant.astimezone(LOCAL)
    return local_midnight(date(local.year, local.month, 1))


def _or(value: T | None, default: T) -> T:
    return default if value is None else value


# A deadline's outcome, as the trigger count_deadlines (migrations/0004) keys it: these five partition the
# deadlines started. SQL's three-valued logic made explicit: a met deadline whose lateness is unknown is in
# neither met column.
def met_on_time(d: DeadlineFact) -> bool:
    return d.met_at is not None and d.met_late is False


def met_late(d: DeadlineFact) -> bool:
    return d.met_at is not None and d.met_late is True


def missed(d: DeadlineFact) -> bool:
    return (
        d.met_at is None and d.breached_at is not None and (d.cancelled_at is None or d.cancelled_at >= d.breached_at)
    )


def closed_before_met(d: DeadlineFact) -> bool:
    return d.met_at is None and d.cancelled_at is not None and (d.breached_at is None or d.cancelled_at < d.breached_at)


def pending(d: DeadlineFact) -> bool:
    return d.met_at is None and d.breached_at is None and d.cancelled_at is None


class FakeReadModel:
    """The stored facts folded by identity, as the upserts of adapters/repository.py merge them.

    It is its own unit of work: `transaction()` yields itself and, as a rollback does, undoes what
    the block wrote when it raises. `period_facts` counts the stored facts as the Postgres read model's
    queries do, month counters included: what is counted per local month (cases, deadlines, police
    actions, the stock) compares the fact's month with the period's bounds, the rest (response times,
    alerts) the instant itself. For whole local months, as every period is, the two agree.
    """

    def __init__(self) -> None:
        self.stored = FactBatch()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[FakeReadModel]:
        saved = copy.deepcopy(self.stored)
        try:
            yield self
        except BaseException:
            self.stored = saved
            raise

    async def save(self, batch: FactBatch) -> None:
        for topic, at in batch.last_event_at.items():
            self.stored.add(topic, at, [])
        self.stored.add("", datetime.min, list(batch.facts.values()))
        self.stored.last_event_at.pop("", None)

    async def period_facts(
        self, start: datetime, end: datetime, kommune: str | None, window: Sequence[tuple[str, datetime]] = ()
    ) -> PeriodFacts:
        def in_scope(fact_kommune: str) -> bool:
            return kommune is None or fact_kommune == kommune

        # Cases and deadlines: counted over the whole window when there is one, per month (width_bucket).
        first = window[0][1] if window else start
        names = [name for name, _ in window]
        starts = [month_start for _, month_start in window]

        def counted(instant: datetime | None) -> tuple[bool, str | None]:
            month = month_of(instant)
            if month is None or not first <= month < end:
                return False, None
            return True, names[bisect.bisect_right(starts, month) - 1] if window else None

        cases = self.stored.of_type(CaseFact)
        case_counts: Counter[tuple[Any, ...]] = Counter()
        for c in cases:
            inside, month = counted(c.received_at)
            if inside and c.kind is not None and in_scope(c.kommune):
                case_counts[(c.kind, c.kommune, c.category, c.focus_area, month)] += 1
        case_tallies = [
            CaseTally(kind, k, category, focus_area, n, month)
            for (kind, k, category, focus_area, month), n in case_counts.items()
        ]

        deadlines = self.stored.of_type(DeadlineFact)
        started_in: list[tuple[DeadlineFact, str | None]] = []
        for d in deadlines:
            inside, month = counted(d.started_at)
            if inside and in_scope(d.kommune):
                started_in.append((d, month))
        deadline_tallies = _deadline_tallies(started_in)
        period_months = {name for name, month_start in window if month_start >= start}

        # The stock: open at the period's end (neither met nor cancelled in a month before it ends), or broken in it.
        stock: defaultdict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0])
        for d in deadlines:
            started = month_of(d.started_at)
            if started is None or started >= end or not in_scope(d.kommune):
                continue
            met, cancelled, breached = month_of(d.met_at), month_of(d.cancelled_at), month_of(d.breached_at)
            open_at_end = (met is None or met >= end) and (cancelled is None or cancelled >= end)
            broke = breached is not None and start <= breached < end
            if open_at_end or broke:
                counts = stock[(d.rule_id, d.basis, d.kommune, d.focus_area)]
                counts[0] += open_at_end
                counts[1] += broke

        # Response times: reports received in the period (the instant), to the first patrol on scene.
        response: defaultdict[tuple[Any, ...], list[float]] = defaultdict(list)
        for c in cases:
            if (
                c.kind == "report"
                and c.first_on_scene_at is not None
                and c.received_at is not None
                and start <= c.received_at < end
                and in_scope(c.kommune)
            ):
                response[(c.kommune, c.category, c.focus_area)].append(
                    (c.first_on_scene_at - c.received_at).total_seconds()
                )

        alert_rows = self._alert_rows(start, end, in_scope)

        actions: Counter[str] = Counter()
        for a in self.stored.of_type(ActionFact):
            happened = month_of(a.occurred_at)
            if happened is not None and start <= happened < end and in_scope(a.kommune):
                actions[a.action] += 1

        return PeriodFacts(
            cases=tuple(c for c in case_tallies if not window or c.month in period_months),
            deadlines=tuple(d for d in deadline_tallies if not window or d.month in period_months),
            trend_cases=tuple(case_tallies) if window else (),
            trend_deadlines=tuple(deadline_tallies) if window else (),
            stock=tuple(
                StockTally(rule, basis, k, fa, n_open, n_broke)
                for (rule, basis, k, fa), (n_open, n_broke) in stock.items()
            ),
            response=tuple(
                DurationSample(k, category, fa, np.array(seconds, dtype=np.float64))
                for (k, category, fa), seconds in response.items()
            ),
            alerts=tuple(tally for tally, _ in alert_rows),
            ack=tuple(sample for _, sample in alert_rows),
            actions=dict(actions),
        )

    def _alert_rows(
        self, start: datetime, end: datetime, in_scope: Callable[[str], bool]
    ) -> list[tuple[AlertTally, DurationSample]]:
        """Alerts raised in the period, per kommune, latest severity, case category and focus area, with the time
        to acknowledge each stage: from its start to the first acknowledgement before the next stage begins (the
        first stage also takes one stamped before its start). An alert of one stage takes its first
        acknowledgement less its raising; one whose stages are not known is not counted, as in SQL."""
        stages: defaultdict[uuid.UUID, list[datetime]] = defaultdict(list)
        for s in self.stored.of_type(AlertStageFact):
            stages[s.alert_id].append(s.started_at)
        acks: defaultdict[uuid.UUID, list[datetime]] = defaultdict(list)
        for k in self.stored.of_type(AlertAckFact):
            acks[k.alert_id].append(k.acknowledged_at)
        # An alert is filed under its case's category and focus area once a case with a focus area is stored.
        described = {c.case_id: c for c in self.stored.of_type(CaseFact) if c.focus_area is not None}

        groups: dict[tuple[str, str, str, str], list[Any]] = {}
        for a in self.stored.of_type(AlertFact):
            if a.raised_at is None or not start <= a.raised_at < end or not in_scope(a.kommune):
                continue
            began = sorted(stages[a.alert_id])
            acked = sorted(acks[a.alert_id])
            per_stage: list[tuple[bool, float | None]] = []  # (current, seconds to acknowledge)
            if len(began) == 1:
                per_stage.append((True, (acked[0] - a.raised_at).total_seconds() if acked else None))
            elif len(began) > 1:
                for i, started in enumerate(began):
                    nxt = began[i + 1] if i + 1 < len(began) else None
                    within = [t for t in acked if (i == 0 or t >= started) and (nxt is None or t < nxt)]
                    per_stage.append((nxt is None, (within[0] - started).total_seconds() if within else None))
            if not per_stage:
                continue
            case = described.get(a.case_id)
            key = (
                a.kommune,
                _or(a.severity, "ukendt"),
                _or(case.category if case else None, "ukendt"),
                _or(case.focus_area if case else None, "lokal_tilstedevaerelse"),
            )
            group = groups.setdefault(key, [0, 0, 0, []])
            for current, seconds in per_stage:
                if current:
                    group[0] += 1
                    group[1] += seconds is not None
                    group[2] += a.escalation_level > 0
                if seconds is not None:
                    group[3].append(seconds)
        return [
            (
                AlertTally(k, severity, category, fa, raised=raised, acknowledged=acknowledged, escalated=escalated),
                DurationSample(k, category, fa, np.array(seconds, dtype=np.float64)),
            )
            for (k, severity, category, fa), (raised, acknowledged, escalated, seconds) in groups.items()
        ]

    async def deadline_months(self, start: datetime, end: datetime) -> tuple[DeadlineTally, ...]:
        def month_name(d: DeadlineFact) -> str | None:
            month = month_of(d.started_at)
            return f"{month.astimezone(LOCAL):%Y-%m}" if month is not None and start <= month < end else None

        months = ((d, month_name(d)) for d in self.stored.of_type(DeadlineFact))
        return tuple(_deadline_tallies((d, month) for d, month in months if month is not None))

    async def freshness(self) -> dict[str, datetime]:
        return dict(self.stored.last_event_at)

    async def rules_seen(self) -> list[dict[str, Any]]:
        rules = sorted(self.stored.of_type(RuleFact), key=lambda r: (r.basis, r.rule_id))
        return [{"rule_id": r.rule_id, "title": r.title, "basis": r.basis, "window_set_by": r.window_set_by,
                 "window_seconds": r.window_seconds} for r in rules]  # fmt: skip


def _deadline_tallies(deadlines: Iterable[tuple[DeadlineFact, str | None]]) -> list[DeadlineTally]:
    """Deadlines counted per rule's terms, kommune, category, focus area and month (None: not per month),
    as deadline_counts (migrations/0004) adds them up."""
    by_rule: defaultdict[tuple[Any, ...], list[DeadlineFact]] = defaultdict(list)
    for d, month in deadlines:
        by_rule[(d.rule_id, d.title, d.basis, d.window_set_by, d.kommune, d.category, d.focus_area, month)].append(d)
    tallies = []
    for (rule_id, title, basis, set_by, k, category, focus_area, month), group in by_rule.items():
        windows = [d.window_seconds for d in group if d.window_seconds is not None]
        tallies.append(
            DeadlineTally(
                rule_id=rule_id,
                title=title,
                basis=basis,
                window_set_by=set_by,
                window_seconds=max(windows) if windows else None,  # max() of SQL: NULLs ignored
                kommune=k,
                category=category,
                focus_area=focus_area,
                started=len(group),
                met_on_time=sum(map(met_on_time, group)),
                met_late=sum(map(met_late, group)),
                missed=sum(map(missed, group)),
                closed_before_met=sum(map(closed_before_met, group)),
                citizen_requested_later=sum(d.rescheduled for d in group),
                pending=sum(map(pending, group)),
                month=month,
            )
        )
    return tallies
