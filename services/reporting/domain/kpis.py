"""KPI arithmetic for councils: counts, compliance per rule, response-time spread, small-number suppression.

Pure: it takes tallies the repository counted (facts per case, deadline and alert, grouped) and
returns figures. Methods, stated once so every report can quote them:

- Percentiles (median, p80, p90) use the nearest-rank method: the smallest observed value with
  at least p % of the observations at or below it (rank = ceil(p/100 * n)). Never interpolated, so
  every figure is a time some citizen actually waited; it equals PostgreSQL's percentile_disc.
- The mean is Rigspolitiet's figure: arithmetic mean with the seconds rounded down.
- Compliance of a rule = met within the window / concluded, where concluded = met within the
  window + met late + breached and never met (also when the case was closed after the breach).
  A deadline closed before it was met and before it broke (e.g. sellers caught at the school) is
  not concluded either way: it is listed as an exception. Pending deadlines are not concluded.
- A rate over fewer than `threshold` concluded cases prints no percentage ("for få sager"); its
  count is always given. Likewise a spread (mean, median, p80, p90) over fewer than `threshold`
  measurements: only its count.
- Guarantees (law) and local targets are never pooled into one figure.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

Basis = Literal["guarantee", "local_target"]
CaseKind = Literal["report", "tip", "request"]

TOO_FEW_DA = "for få sager"

# The rules behind the headline local-target KPIs of DOMAIN.md ("follow-ups done within target",
# "Bestil en betjent replied within 14 days and carried out within 30").
FOLLOWUP_RULE = "tryghedsopfoelgning_burglary"
BESTIL_REPLY_RULE = "bestil_en_betjent_reply"
BESTIL_CARRIED_OUT_RULE = "bestil_en_betjent_carried_out"


def nearest_rank(p: float, count: int) -> int:
    """The 1-based rank of the nearest-rank p-th percentile of `count` values (p in (0, 100])."""
    if not 0 < p <= 100:
        raise ValueError(f"percentile {p} outside (0, 100]")
    return max(1, math.ceil(p / 100 * count - 1e-9))


def percentile(ordered: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile of already sorted values (p in (0, 100]); None without values."""
    if len(ordered) == 0:
        return None
    return ordered[nearest_rank(p, len(ordered)) - 1]


def mean_floor_seconds(values: Sequence[float]) -> int | None:
    """Rigspolitiet's mean: seconds rounded down; None without values."""
    if not values:
        return None
    return math.floor(math.fsum(values) / len(values))


@dataclass(frozen=True, slots=True)
class Rate:
    """A share with its count: `numerator` of `denominator`; `percent` is None when suppressed or empty."""

    numerator: int
    denominator: int
    threshold: int

    @property
    def suppressed(self) -> bool:
        return self.denominator < self.threshold

    @property
    def percent(self) -> float | None:
        if self.denominator == 0 or self.suppressed:
            return None
        return 100.0 * self.numerator / self.denominator

    def as_dict(self) -> dict[str, object]:
        return {
            "numerator": self.numerator,
            "denominator": self.denominator,
            "percent": None if self.percent is None else round(self.percent, 1),
            "suppressed": self.suppressed,
        }


@dataclass(frozen=True, slots=True)
class Spread:
    """A duration's distribution in whole seconds: count, Rigspolitiet's mean, median, p80, p90.

    Over fewer than `threshold` measurements only the count is given (`suppressed`): a median of one
    or three waits is one citizen's story, not a figure to compare kommuner by.
    """

    count: int
    mean: int | None
    median: int | None
    p80: int | None
    p90: int | None
    suppressed: bool = False

    @classmethod
    def of(cls, values: Iterable[float] | npt.NDArray[np.float64], threshold: int = 1) -> Spread:
        # numpy: a district's year holds hundreds of thousands of response times, sliced many ways.
        array = values if isinstance(values, np.ndarray) else np.fromiter(values, dtype=np.float64)
        clipped = np.maximum(array, 0.0)
        count = len(clipped)
        if count < max(1, threshold):
            return cls(count, None, None, None, None, suppressed=True)
        # Nearest rank needs three order statistics, not a sorted copy: np.partition puts the value of
        # each rank where a sort would (linear time; a report takes a hundred spreads of a year).
        ranks = [nearest_rank(p, count) - 1 for p in (50, 80, 90)]
        placed = np.partition(clipped, sorted(set(ranks)))
        median, p80, p90 = (math.floor(placed[rank]) for rank in ranks)
        # fsum is exactly rounded, so the order of the values does not matter.
        mean = math.floor(math.fsum(clipped.tolist()) / count)
        return cls(count, mean, median, p80, p90)

    def as_dict(self) -> dict[str, int | bool | None]:
        return {
            "count": self.count,
            "mean": self.mean,
            "median": self.median,
            "p80": self.p80,
            "p90": self.p90,
            "suppressed": self.suppressed,
        }


# ---- inputs: tallies the repository counted ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class CaseTally:
    """Cases received in the period of one kind, kommune and category."""

    kind: CaseKind
    kommune: str
    category: str
    focus_area: str
    count: int
    month: str | None = None  # YYYY-MM when counted per month (the trend)


@dataclass(frozen=True, slots=True)
class DeadlineTally:
    """Outcomes of the deadlines of one rule, kommune and category that started in the period."""

    rule_id: str
    title: str
    basis: Basis
    window_set_by: str
    window_seconds: float | None
    kommune: str
    category: str
    focus_area: str
    started: int = 0
    met_on_time: int = 0
    met_late: int = 0
    missed: int = 0  # breached and never met (closed after the breach included)
    closed_before_met: int = 0  # cancelled before it was met and before it broke
    citizen_requested_later: int = 0  # moved to the citizen's requested time
    pending: int = 0
    month: str | None = None  # YYYY-MM when counted per month (the trend)


@dataclass(frozen=True, slots=True)
class StockTally:
    """Deadlines of one rule and kommune open at the period's end, and those that broke within it."""

    rule_id: str
    basis: Basis
    kommune: str
    focus_area: str
    open_at_end: int
    breached_in_period: int


@dataclass(frozen=True, slots=True)
class DurationSample:
    """Durations in seconds of one group (kommune, case category, focus area): response times (received ->
    first on scene) or alert times to acknowledge (per stage)."""

    kommune: str
    category: str
    focus_area: str
    seconds: Sequence[float] | npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class AlertTally:
    """Alerts raised in the period in one kommune, of one (latest) severity and one case category."""

    kommune: str
    severity: str
    category: str  # the case's category ('ukendt' while the case is not known)
    focus_area: str
    raised: int
    acknowledged: int
    escalated: int


@dataclass(frozen=True, slots=True)
class PeriodFacts:
    """Everything counted for one scope and period."""

    cases: tuple[CaseTally, ...] = ()
    deadlines: tuple[DeadlineTally, ...] = ()
    stock: tuple[StockTally, ...] = ()
    response: tuple[DurationSample, ...] = ()
    alerts: tuple[AlertTally, ...] = ()
    ack: tuple[DurationSample, ...] = ()
    actions: dict[str, int] = field(default_factory=dict)
    # Per month over the 12 months ending with the period (the trend chart); empty when not asked.
    trend_cases: tuple[CaseTally, ...] = ()
    trend_deadlines: tuple[DeadlineTally, ...] = ()

    def where(
        self, *, kommune: str | None = None, focus_area: str | None = None, category: str | None = None
    ) -> PeriodFacts:
        """The facts of one slice; police actions are counted for the whole scope only."""

        def keep(row: object) -> bool:
            return (
                (kommune is None or getattr(row, "kommune", None) == kommune)
                and (focus_area is None or getattr(row, "focus_area", None) == focus_area)
                and (category is None or getattr(row, "category", None) == category)
            )

        return PeriodFacts(
            cases=tuple(r for r in self.cases if keep(r)),
            deadlines=tuple(r for r in self.deadlines if keep(r)),
            stock=tuple(r for r in self.stock if keep(r)),
            response=tuple(r for r in self.response if keep(r)),
            alerts=tuple(r for r in self.alerts if keep(r)),
            ack=tuple(r for r in self.ack if keep(r)),
            actions=self.actions if kommune is None and focus_area is None and category is None else {},
            trend_cases=tuple(r for r in self.trend_cases if keep(r)),
            trend_deadlines=tuple(r for r in self.trend_deadlines if keep(r)),
        )


# ---- outputs ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RuleCompliance:
    """One rule's compliance in the period, with its exceptions listed."""

    rule_id: str
    title: str
    basis: Basis
    window_set_by: str
    window_seconds: float | None
    started: int
    met_on_time: int
    met_late: int
    missed: int
    closed_before_met: int
    citizen_requested_later: int
    pending: int
    rate: Rate

    @property
    def concluded(self) -> int:
        return self.met_on_time + self.met_late + self.missed

    def as_dict(self) -> dict[str, object]:
        return {
            "rule_id": self.rule_id,
            "title": self.title,
            "basis": self.basis,
            "window_set_by": self.window_set_by,
            "window_seconds": self.window_seconds,
            "started": self.started,
            "concluded": self.concluded,
            "met_within_window": self.met_on_time,
            "pending": self.pending,
            "compliance": self.rate.as_dict(),
            "exceptions": {
                "citizen_requested_later": self.citizen_requested_later,
                "closed_before_met": self.closed_before_met,
                "met_late": self.met_late,
            },
            "missed": self.missed,
        }


@dataclass(frozen=True, slots=True)
class Figures:
    """The KPIs of one slice (the scope, a kommune, a focus area or a category) of one period."""

    reports: int
    tips: int
    requests: int
    rules: tuple[RuleCompliance, ...]
    guarantees: Rate  # every guarantee rule pooled: law only
    local_targets: Rate  # every local-target rule pooled: never mixed with the guarantees
    response: Spread
    response_by_category: dict[str, Spread]
    open_deadlines: dict[str, int]  # by basis, at the period's end
    breached_deadlines: dict[str, int]  # by basis, within the period
    followups: Rate
    bestil_replied: Rate
    bestil_carried_out: Rate
    alerts_raised: int
    alerts_acknowledged: int
    alerts_escalated: int
    alert_ack: Spread
    actions: dict[str, int]

    def rule(self, rule_id: str) -> RuleCompliance | None:
        return next((r for r in self.rules if r.rule_id == rule_id), None)

    def as_dict(self) -> dict[str, object]:
        return {
            "reports": self.reports,
            "tips": self.tips,
            "officer_requests": self.requests,
            "compliance": {
                "guarantees": self.guarantees.as_dict(),
                "local_targets": self.local_targets.as_dict(),
                "rules": [r.as_dict() for r in self.rules],
            },
            "response_time_seconds": {
                **self.response.as_dict(),
                "by_category": {k: v.as_dict() for k, v in self.response_by_category.items()},
            },
            "open_deadlines": self.open_deadlines,
            "breached_deadlines": self.breached_deadlines,
            "followups_within_target": self.followups.as_dict(),
            "bestil_en_betjent": {
                "replied_within_14_days": self.bestil_replied.as_dict(),
                "carried_out_within_30_days": self.bestil_carried_out.as_dict(),
            },
            "alerts": {
                "raised": self.alerts_raised,
                "acknowledged": self.alerts_acknowledged,
                "escalated": self.alerts_escalated,
                "time_to_acknowledge_seconds": self.alert_ack.as_dict(),
            },
            "police_actions": self.actions,
        }


def rule_compliance(rows: Sequence[DeadlineTally], threshold: int) -> tuple[RuleCompliance, ...]:
    """Each rule's compliance over the given tallies (the council report's, and the public figures')."""
    by_rule: dict[str, list[DeadlineTally]] = {}
    for row in rows:
        by_rule.setdefault(row.rule_id, []).append(row)
    out = []
    for rule_id, group in by_rule.items():
        first = group[0]

        def total(name: str, group: list[DeadlineTally] = group) -> int:
            return sum(getattr(r, name) for r in group)

        met, late, missed = total("met_on_time"), total("met_late"), total("missed")
        out.append(
            RuleCompliance(
                rule_id=rule_id,
                title=first.title,
                basis=first.basis,
                window_set_by=first.window_set_by,
                window_seconds=next((r.window_seconds for r in group if r.window_seconds), None),
                started=total("started"),
                met_on_time=met,
                met_late=late,
                missed=missed,
                closed_before_met=total("closed_before_met"),
                citizen_requested_later=total("citizen_requested_later"),
                pending=total("pending"),
                rate=Rate(met, met + late + missed, threshold),
            )
        )
    # Law first, then local targets; within each, by title.
    return tuple(sorted(out, key=lambda r: (r.basis != "guarantee", r.title, r.rule_id)))


def _pooled(rules: Iterable[RuleCompliance], basis: Basis, threshold: int) -> Rate:
    chosen = [r for r in rules if r.basis == basis]
    return Rate(sum(r.met_on_time for r in chosen), sum(r.concluded for r in chosen), threshold)


def _rate_of(rules: Sequence[RuleCompliance], rule_id: str, threshold: int) -> Rate:
    found = next((r for r in rules if r.rule_id == rule_id), None)
    return found.rate if found else Rate(0, 0, threshold)


def _by_basis(rows: Iterable[StockTally], attr: Callable[[StockTally], int]) -> dict[str, int]:
    out = {"guarantee": 0, "local_target": 0}
    for row in rows:
        out[row.basis] = out.get(row.basis, 0) + attr(row)
    return out


def figures(facts: PeriodFacts, threshold: int) -> Figures:
    """The KPIs of a slice of facts; `threshold` is the small-number limit (default 10)."""
    counts = {"report": 0, "tip": 0, "request": 0}
    for row in facts.cases:
        counts[row.kind] += row.count
    rules = rule_compliance(facts.deadlines, threshold)
    by_category: dict[str, list[npt.NDArray[np.float64]]] = {}
    for sample in facts.response:
        by_category.setdefault(sample.category, []).append(np.asarray(sample.seconds, dtype=np.float64))
    joined = {k: np.concatenate(v) for k, v in by_category.items()}
    everything = np.concatenate(list(joined.values())) if joined else np.empty(0)
    acks = [np.asarray(s.seconds, dtype=np.float64) for s in facts.ack]
    return Figures(
        reports=counts["report"],
        tips=counts["tip"],
        requests=counts["request"],
        rules=rules,
        guarantees=_pooled(rules, "guarantee", threshold),
        local_targets=_pooled(rules, "local_target", threshold),
        response=Spread.of(everything, threshold),
        response_by_category={k: Spread.of(v, threshold) for k, v in sorted(joined.items())},
        open_deadlines=_by_basis(facts.stock, lambda r: r.open_at_end),
        breached_deadlines=_by_basis(facts.stock, lambda r: r.breached_in_period),
        followups=_rate_of(rules, FOLLOWUP_RULE, threshold),
        bestil_replied=_rate_of(rules, BESTIL_REPLY_RULE, threshold),
        bestil_carried_out=_rate_of(rules, BESTIL_CARRIED_OUT_RULE, threshold),
        alerts_raised=sum(a.raised for a in facts.alerts),
        alerts_acknowledged=sum(a.acknowledged for a in facts.alerts),
        alerts_escalated=sum(a.escalated for a in facts.alerts),
        alert_ack=Spread.of(np.concatenate(acks) if acks else np.empty(0), threshold),
        actions=dict(sorted(facts.actions.items())),
    )
