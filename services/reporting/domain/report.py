"""The council report (rådsrapport) as data: one scope, one period, compared with the previous period
and the same period a year earlier, sliced per kommune, focus area and category. Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from services.reporting.domain.kpis import Figures, PeriodFacts, Rate, figures
from services.reporting.domain.periods import Period
from shared.reference import categories, focus_areas, kommuner

KREDS = "kreds"


class ScopeError(ValueError):
    """A scope that is neither `kreds` nor a kommunekode of the district."""


@dataclass(frozen=True, slots=True)
class Scope:
    """The whole district (kreds, read by the kredsråd) or one kommune (read by its lokalråd)."""

    kommune: str | None  # None: the whole district

    @classmethod
    def parse(cls, text: str) -> Scope:
        value = text.strip().lower()
        if value == KREDS:
            return cls(None)
        if value.isdigit() and len(value) <= 4:
            code = value.zfill(4)
            if code in kommuner():
                return cls(code)
        # A fixed sentence: an answer never repeats what the client typed (shared/validation.py).
        raise ScopeError("Not a scope; write 'kreds' or a kommunekode of the district such as 0265.")

    def __str__(self) -> str:
        return self.kommune or KREDS

    def label_da(self) -> str:
        if self.kommune is None:
            return "Midt- og Vestsjællands Politi, hele kredsen"
        return f"{kommuner()[self.kommune].name} Kommune"

    @property
    def council_da(self) -> str:
        return "Kredsrådet" if self.kommune is None else f"Lokalrådet i {kommuner()[self.kommune].name}"


@dataclass(frozen=True, slots=True)
class TrendPoint:
    month: Period
    reports: int
    tips: int
    requests: int
    guarantees: Rate


@dataclass(frozen=True, slots=True)
class RuleTerms:
    """A rule's window as the newest deadline started under it stated it (for the method notes)."""

    rule_id: str
    title: str
    basis: str
    window_set_by: str
    window_seconds: float


@dataclass(frozen=True, slots=True)
class CouncilReport:
    scope: Scope
    period: Period
    focus_area: str | None
    threshold: int
    generated_at: datetime
    current: Figures
    previous: Figures
    year_earlier: Figures
    by_kommune: dict[str, Figures]
    by_focus_area: dict[str, tuple[Figures, Figures]]  # current, previous
    by_category: dict[str, Figures]
    trend: tuple[TrendPoint, ...]
    freshness: dict[str, datetime]
    rules: tuple[RuleTerms, ...]
    response_seconds: npt.NDArray[np.float64]  # the period's response times, for the distribution chart

    @property
    def at_once_seconds(self) -> list[float]:
        """The district's operational targets for the guarantees the law words "med det samme"."""
        return sorted(
            {r.window_seconds for r in self.rules if r.basis == "guarantee" and r.window_set_by == "district"}
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "scope": {"id": str(self.scope), "label": self.scope.label_da(), "council": self.scope.council_da},
            "period": {
                "id": str(self.period),
                "label": self.period.label_da(),
                "start": self.period.start.isoformat(),
                "end": self.period.end.isoformat(),
                "previous": str(self.period.previous()),
                "year_earlier": str(self.period.year_earlier()),
            },
            "focus_area": self.focus_area,
            "small_number_threshold": self.threshold,
            "generated_at": self.generated_at.isoformat(),
            "current": self.current.as_dict(),
            "previous": self.previous.as_dict(),
            "year_earlier": self.year_earlier.as_dict(),
            "by_kommune": {code: f.as_dict() for code, f in self.by_kommune.items()},
            "by_focus_area": {
                fa: {"current": cur.as_dict(), "previous": prev.as_dict()}
                for fa, (cur, prev) in self.by_focus_area.items()
            },
            "by_category": {cat: f.as_dict() for cat, f in self.by_category.items()},
            "trend": [
                {
                    "month": str(p.month),
                    "reports": p.reports,
                    "tips": p.tips,
                    "officer_requests": p.requests,
                    "guarantees": p.guarantees.as_dict(),
                }
                for p in self.trend
            ],
            "data_freshness": {topic: at.isoformat() for topic, at in sorted(self.freshness.items())},
            "rules": [
                {
                    "rule_id": r.rule_id,
                    "title": r.title,
                    "basis": r.basis,
                    "window_set_by": r.window_set_by,
                    "window_seconds": r.window_seconds,
                }
                for r in self.rules
            ],
        }


def trend_of(facts: PeriodFacts, months: list[Period], threshold: int) -> tuple[TrendPoint, ...]:
    """Month by month: cases received, and guarantee deadlines met within the window / concluded."""
    points = []
    for month in months:
        name = str(month)
        counts = {"report": 0, "tip": 0, "request": 0}
        for c in facts.trend_cases:
            if c.month == name:
                counts[c.kind] += c.count
        law = [d for d in facts.trend_deadlines if d.month == name and d.basis == "guarantee"]
        met = sum(d.met_on_time for d in law)
        concluded = sum(d.met_on_time + d.met_late + d.missed for d in law)
        points.append(
            TrendPoint(month, counts["report"], counts["tip"], counts["request"], Rate(met, concluded, threshold))
        )
    return tuple(points)


def build_report(
    *,
    scope: Scope,
    period: Period,
    focus_area: str | None,
    threshold: int,
    generated_at: datetime,
    current: PeriodFacts,
    previous: PeriodFacts,
    year_earlier: PeriodFacts,
    freshness: dict[str, datetime],
    rules: list[RuleTerms],
) -> CouncilReport:
    """Computes every figure of the report from the facts of the three periods."""
    if focus_area is not None:
        current, previous, year_earlier = (f.where(focus_area=focus_area) for f in (current, previous, year_earlier))
    codes = [scope.kommune] if scope.kommune else list(kommuner())
    areas = [focus_area] if focus_area else list(focus_areas())
    seen_categories = sorted({c.category for c in current.cases} | {d.category for d in current.deadlines})
    ordered_categories = [c for c in categories() if c in seen_categories]
    previous_figures = figures(previous, threshold)
    return CouncilReport(
        scope=scope,
        period=period,
        focus_area=focus_area,
        threshold=threshold,
        generated_at=generated_at,
        current=figures(current, threshold),
        previous=previous_figures,
        # A year's previous period is the year earlier: the same facts, figured once.
        year_earlier=previous_figures if year_earlier is previous else figures(year_earlier, threshold),
        by_kommune={code: figures(current.where(kommune=code), threshold) for code in codes},
        by_focus_area={
            fa: (figures(current.where(focus_area=fa), threshold), figures(previous.where(focus_area=fa), threshold))
            for fa in areas
        },
        by_category={cat: figures(current.where(category=cat), threshold) for cat in ordered_categories},
        trend=trend_of(current, period.trailing_months(12), threshold),
        freshness=freshness,
        rules=tuple(rules),
        response_seconds=np.concatenate([np.asarray(s.seconds, dtype=np.float64) for s in current.response])
        if current.response
        else np.empty(0),
    )
