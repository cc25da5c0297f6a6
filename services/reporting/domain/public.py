"""Whether the politigarantier (police guarantees) were kept, per kommune and quarter, for everyone; pure, no I/O.

The figures are the council report's own: the same tallies (a deadline counts in the local month it
started) and the same arithmetic (kpis.rule_compliance: met within the window ÷ concluded), so a
kommune's quarter reads the same here as in its lokalråd's report. The public sees a cell in one way
less: under the small-number threshold it sees neither the share nor the counts, only "for få sager"
(too few cases), since a handful of cases in one kommune and quarter can point at the people behind
them. Such cells are suppressed, never rounded, and no total is published beside them (a total less
the published cells would give a suppressed one back). Nothing of a single case is in it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from services.reporting.domain.kpis import DeadlineTally, Rate, rule_compliance
from services.reporting.domain.periods import Period
from services.reporting.domain.report import RuleTerms
from shared.reference import kommuner

# The politigarantier are in force since 1 November 2021: no guarantee deadline starts before this quarter.
IN_FORCE = Period(2021, "quarter", 4)


@dataclass(frozen=True, slots=True)
class Guarantee:
    """One guarantee as its newest deadline stated it: whose window (law or the district's target) and how long."""

    rule_id: str
    title: str
    window_seconds: float | None
    window_set_by: str  # "law", or "district" where the law says "med det samme" (at once) or names no time


@dataclass(frozen=True, slots=True)
class Cell:
    """A guarantee in one kommune and quarter: met within the window of the concluded, as the public sees it."""

    rate: Rate

    @property
    def too_few(self) -> bool:
        """Some concluded, but fewer than the threshold: nothing but "for få sager" is shown."""
        return 0 < self.rate.denominator < self.rate.threshold

    @property
    def met(self) -> int | None:
        return None if self.too_few else self.rate.numerator

    @property
    def concluded(self) -> int | None:
        return None if self.too_few else self.rate.denominator

    @property
    def percent(self) -> float | None:
        return None if self.rate.percent is None else round(self.rate.percent, 1)


@dataclass(frozen=True, slots=True)
class GuaranteeCompliance:
    """Every quarter from the first with a guarantee deadline to the one under way, every kommune, every guarantee."""

    quarters: tuple[Period, ...]  # oldest first; the last is the quarter under way
    guarantees: tuple[Guarantee, ...]
    kommuner: tuple[str, ...]
    cells: dict[tuple[Period, str, str], Cell]  # (quarter, kommune, rule_id)
    threshold: int
    generated_at: datetime
    data_as_of: datetime | None  # the newest event the read model holds

    @property
    def running(self) -> Period:
        """The quarter under way: its figures are preliminary."""
        return self.quarters[-1]

    @property
    def latest_complete(self) -> Period:
        """The quarter a reader wants first: the last one that has ended, if any is published."""
        return self.quarters[-2] if len(self.quarters) > 1 else self.quarters[-1]

    def cell(self, quarter: Period, kommune: str, rule_id: str) -> Cell:
        return self.cells[(quarter, kommune, rule_id)]


def quarter_of(month: str) -> Period:
    """The quarter of a month named YYYY-MM."""
    parsed = Period.parse(month)
    return Period(parsed.year, "quarter", (parsed.index - 1) // 3 + 1)


def guarantee_compliance(
    tallies: Iterable[DeadlineTally],
    rules: Sequence[RuleTerms],
    *,
    now: datetime,
    threshold: int,
    data_as_of: datetime | None = None,
) -> GuaranteeCompliance:
    """The public table from the deadline tallies per month (`ReadModel.deadline_months`) and the rules seen."""
    law = [t for t in tallies if t.basis == "guarantee" and t.month is not None]
    running = Period.containing(now, "quarter")
    by_cell: dict[tuple[Period, str], list[DeadlineTally]] = {}
    for tally in law:
        assert tally.month is not None
        by_cell.setdefault((quarter_of(tally.month), tally.kommune), []).append(tally)
    first = min((quarter for quarter, _ in by_cell), default=running)
    quarters = [first]
    while quarters[-1] < running:
        quarters.append(quarters[-1].shifted(1))
    terms = {r.rule_id: Guarantee(r.rule_id, r.title, r.window_seconds, r.window_set_by)
             for r in rules if r.basis == "guarantee"}  # fmt: skip
    for t in law:  # a rule whose terms the read model has not kept (its deadline.started not yet arrived)
        terms.setdefault(t.rule_id, Guarantee(t.rule_id, t.title, t.window_seconds, t.window_set_by))
    guarantees = tuple(sorted(terms.values(), key=lambda g: (g.title, g.rule_id)))
    codes = tuple(kommuner())
    cells: dict[tuple[Period, str, str], Cell] = {}
    for quarter in quarters:
        for code in codes:
            rates = {r.rule_id: r.rate for r in rule_compliance(by_cell.get((quarter, code), []), threshold)}
            for g in guarantees:
                cells[(quarter, code, g.rule_id)] = Cell(rates.get(g.rule_id, Rate(0, 0, threshold)))
    return GuaranteeCompliance(
        quarters=tuple(quarters),
        guarantees=guarantees,
        kommuner=codes,
        cells=cells,
        threshold=threshold,
        generated_at=now,
        data_as_of=data_as_of,
    )
