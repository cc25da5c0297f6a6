"""The council report's text: Danish numbers, suppressed small rates, and free text that stays text."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from services.reporting.adapters import renderers
from services.reporting.domain.kpis import DeadlineTally, DurationSample, PeriodFacts, Rate
from services.reporting.domain.periods import Period
from services.reporting.domain.report import CouncilReport, RuleTerms, Scope, build_report

HOSTILE = '<script>alert("x")</script><b>fed</b> & "citat"'


# Ten response times (threshold 10): nearest-rank median 5,400 s.
TEN_TIMES = (3600.0,) * 4 + (5400.0,) * 3 + (7200.5,) * 3


def _report(
    title: str = "Indbrud i privat hjem: 24 timer",
    met: int = 131,
    concluded: int = 150,
    response: tuple[float, ...] = TEN_TIMES,
) -> CouncilReport:
    tally = DeadlineTally(
        rule_id="burglary_home_24h", title=title, basis="guarantee", window_set_by="law", window_seconds=86400.0,
        kommune="0265", category="burglary_home", focus_area="indbrud", started=concluded, met_on_time=met,
        missed=concluded - met,
    )  # fmt: skip
    facts = PeriodFacts(deadlines=(tally,), response=(DurationSample("0265", "burglary_home", "indbrud", response),))
    return build_report(
        scope=Scope.parse("kreds"),
        period=Period.parse("2026-Q1"),
        focus_area=None,
        threshold=10,
        generated_at=datetime(2026, 4, 2, 9, 0, tzinfo=UTC),
        current=facts,
        previous=PeriodFacts(),
        year_earlier=PeriodFacts(),
        freshness={"cases.v1": datetime(2026, 4, 1, 21, 59, tzinfo=UTC)},
        rules=[RuleTerms("violence_acute", title, "guarantee", "district", 900.0)],
    )


def test_danish_number_formats() -> None:
    assert renderers.number(12345.6, 1) == "12.345,6"
    assert renderers.rate_text(Rate(131, 150, 10)) == "87,3 % (131 af 150)"
    assert renderers.rate_text(Rate(3, 4, 10)) == "for få sager (3 af 4)"
    assert renderers.rate_text(Rate(0, 0, 10)) == "ingen afsluttede"
    assert renderers.duration(845.9) == "14 min 05 s"
    assert renderers.duration(3 * 3600 + 20 * 60) == "3 t 20 min"
    assert renderers.window(900) == "15 minutter" and renderers.window(86400) == "1 døgn"
    assert renderers.when(datetime(2026, 4, 1, 21, 59, tzinfo=UTC)) == "1. april 2026 kl. 23:59"


def test_html_holds_the_figures_in_danish() -> None:
    html = renderers.to_html(_report())
    assert "87,3 % (131 af 150)" in html
    assert "1. kvartal 2026" in html
    assert "Kredsrådet" in html
    assert "15 minutter" in html  # what "at once" means in this district, from the rules seen


def test_small_numbers_print_no_percentage() -> None:
    html = renderers.to_html(_report(met=7, concluded=9))
    assert "for få sager (7 af 9)" in html
    assert "77,8 %" not in html


def test_markup_in_free_text_renders_as_text() -> None:
    html = renderers.to_html(_report(title=HOSTILE))
    assert "<script>" not in html and "<b>fed</b>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;b&gt;fed&lt;/b&gt; &amp; &#34;citat&#34;" in html


def test_csv_has_one_figure_a_row_and_the_counts() -> None:
    text = renderers.to_csv(_report())
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    rule = next(r for r in rows if r["nøgletal"] == "regel_overholdt" and r["afsnit"] == "i_alt")
    assert (rule["regel"], rule["tæller"], rule["nævner"], rule["procent"]) == (
        "burglary_home_24h",
        "131",
        "150",
        "87.3",
    )
    median = next(r for r in rows if r["nøgletal"] == "responstid_median" and r["afsnit"] == "i_alt")
    assert median["værdi"] == "5400"


def test_json_keeps_counts_beside_rates() -> None:
    document = renderers.to_json(_report(met=7, concluded=9))
    compliance = document["current"]["compliance"]["guarantees"]
    assert compliance == {"numerator": 7, "denominator": 9, "percent": None, "suppressed": True}
    assert document["period"]["previous"] == "2025-Q4" and document["period"]["year_earlier"] == "2025-Q1"


def test_a_spread_over_too_few_cases_says_so_in_html_csv_and_json() -> None:
    report = _report(response=(3600.0, 7200.5, 5400.0))
    html = renderers.to_html(report)
    assert "for få sager (3)" in html
    assert "1 t 30 min" not in html and "2 t 00 min" not in html  # neither the median nor the p90
    rows = list(csv.DictReader(io.StringIO(renderers.to_csv(report).lstrip("\ufeff"))))
    figures = {r["nøgletal"]: r["værdi"] for r in rows if r["afsnit"] == "i_alt"}
    assert figures["responstid_count"] == "3"
    assert {figures[f"responstid_{name}"] for name in ("mean", "median", "p80", "p90")} == {"for få sager"}
    response = renderers.to_json(report)["current"]["response_time_seconds"]
    assert response["count"] == 3 and response["suppressed"] is True
    assert (response["mean"], response["median"], response["p80"], response["p90"]) == (None, None, None, None)
    assert response["by_category"]["burglary_home"]["suppressed"] is True
    shown = renderers.to_html(_report())
    assert "1 t 30 min" in shown and "for få sager (10)" not in shown
