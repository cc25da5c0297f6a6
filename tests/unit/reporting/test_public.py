"""The public figures of guarantee compliance (domain/public.py, adapters/open_data.py) on the in-memory read model:
the council report's figures per kommune and quarter, small cells without any count, one schema for JSON and CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from services.reporting import handlers
from services.reporting.adapters import open_data
from services.reporting.domain.kpis import Basis, DeadlineTally, Rate
from services.reporting.domain.periods import Period
from services.reporting.domain.public import Cell, guarantee_compliance
from services.reporting.domain.report import RuleTerms, Scope
from shared.reference import kommuner
from tests.support.quarter import GREVE, ROSKILDE, council_quarter
from tests.unit.reporting.fakes import FakeReadModel

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
Q3, Q4 = Period.parse("2026-Q3"), Period.parse("2026-Q4")
LICENCE = open_data.Licence(navn="CC BY 4.0", url="https://creativecommons.org/licenses/by/4.0/deed.da")


async def test_each_kommunes_quarter_is_its_council_reports_and_a_cell_of_three_shows_no_count() -> None:
    model = FakeReadModel()
    for event in council_quarter().events:
        await handlers.handle(model, event.meta, event.payload())
    public = await handlers.guarantee_compliance(model, threshold=10, now=NOW)

    assert public.quarters == (Q3, Q4) and public.running == Q4 and public.latest_complete == Q3
    assert [g.rule_id for g in public.guarantees] == ["burglary_home_24h", "violence_acute"]
    assert public.kommuner == tuple(kommuner())
    for code in (ROSKILDE, GREVE):
        report = await handlers.council_report(model, scope=Scope(code), period=Q3, focus_area=None, threshold=10,
                                               now=NOW)  # fmt: skip
        for g in public.guarantees:
            rule = report.current.rule(g.rule_id)
            assert public.cell(Q3, code, g.rule_id).rate == (rule.rate if rule else Rate(0, 0, 10)), (code, g)
    roskilde, greve = public.cell(Q3, ROSKILDE, "burglary_home_24h"), public.cell(Q3, GREVE, "burglary_home_24h")
    assert (roskilde.met, roskilde.concluded, roskilde.percent, roskilde.too_few) == (10, 12, 83.3, False)
    assert (greve.met, greve.concluded, greve.percent, greve.too_few) == (None, None, None, True)
    assert open_data.cell_da(roskilde) == "83,3 % (10 af 12)" and open_data.cell_da(greve) == "for få sager"
    assert open_data.cell_da(public.cell(Q4, ROSKILDE, "burglary_home_24h")) == "ingen afsluttede"

    data = open_data.open_data(public, LICENCE)
    assert len(data.raekker) == 2 * 10 * 2 and data.skema == "politigarantier/1"
    assert data.data_senest_modtaget is not None and data.graense_for_faa_sager == 10
    rows = {(r.kvartal, r.kommunekode, r.garanti): r for r in data.raekker}
    assert rows[("2026-Q3", GREVE, "burglary_home_24h")].model_dump() == {
        "kvartal": "2026-Q3", "foreloebig": False, "kommunekode": GREVE, "kommune": "Greve",
        "garanti": "burglary_home_24h", "overholdt": None, "afsluttede": None, "procent": None, "for_faa_sager": True,
    }  # fmt: skip
    assert rows[("2026-Q4", ROSKILDE, "burglary_home_24h")].foreloebig is True
    assert [g.vindue_fastsat_af for g in data.garantier] == ["lov", "kreds"]  # "at once" is the district's target
    # The CSV is the JSON's rows, field for field, and the licence beside each.
    sheet = list(csv.DictReader(io.StringIO(open_data.to_csv(data).lstrip("\ufeff"))))
    assert [r["kvartal"] + r["kommunekode"] + r["garanti"] for r in sheet] == [
        r.kvartal + r.kommunekode + r.garanti for r in data.raekker
    ]
    greve_row = next(r for r in sheet if (r["kvartal"], r["kommunekode"], r["garanti"]) == ("2026-Q3", GREVE,
                                                                                            "burglary_home_24h"))  # fmt: skip
    assert (greve_row["overholdt"], greve_row["afsluttede"], greve_row["procent"], greve_row["for_faa_sager"]) == (
        "", "", "", "true")  # fmt: skip
    assert all(r["licens"].startswith("CC BY 4.0 (https://creativecommons.org/") for r in sheet)


def tally(kommune: str, month: str, met: int, missed: int, basis: Basis = "guarantee") -> DeadlineTally:
    return DeadlineTally("burglary_home_24h", "Indbrud", basis, "law", 86400.0, kommune, "burglary_home",
                         "indbrud", started=met + missed, met_on_time=met, missed=missed, month=month)  # fmt: skip


def test_quarters_run_from_the_first_with_a_guarantee_to_the_one_under_way_and_local_targets_stay_out() -> None:
    rules = [RuleTerms("burglary_home_24h", "Indbrud", "guarantee", "law", 86400.0),
             RuleTerms("tryghed", "Tryghedsopfølgning", "local_target", "district", 1209600.0)]  # fmt: skip
    tallies = [tally(ROSKILDE, "2026-02", 9, 1), tally(ROSKILDE, "2026-03", 1, 0), tally(GREVE, "2026-05", 1, 0),
               tally(ROSKILDE, "2025-12", 5, 5, basis="local_target")]  # fmt: skip
    public = guarantee_compliance(tallies, rules, now=NOW, threshold=10)
    assert [str(q) for q in public.quarters] == ["2026-Q1", "2026-Q2", "2026-Q3", "2026-Q4"]
    assert [g.rule_id for g in public.guarantees] == ["burglary_home_24h"]
    # February and March make one quarter of 11 concluded: enough for a figure.
    assert public.cell(Period.parse("2026-Q1"), ROSKILDE, "burglary_home_24h") == Cell(Rate(10, 11, 10))
    assert public.cell(Period.parse("2026-Q2"), GREVE, "burglary_home_24h").too_few
    assert public.cell(Period.parse("2026-Q3"), GREVE, "burglary_home_24h").rate.denominator == 0
    nothing = guarantee_compliance([], [], now=NOW, threshold=10)
    assert nothing.quarters == (Q4,) and nothing.guarantees == () and nothing.latest_complete == Q4
