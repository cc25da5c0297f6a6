"""The council report in four shapes: JSON for machines, CSV for spreadsheets, HTML and PDF from one template."""

from __future__ import annotations

import base64
import csv
import functools
import hashlib
import io
import math
from datetime import datetime
from importlib import resources
from typing import Any

from babel.dates import format_datetime
from babel.numbers import format_decimal
from jinja2 import Environment, FunctionLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from services.reporting.adapters import charts
from services.reporting.domain.kpis import TOO_FEW_DA, Figures, Rate, Spread
from services.reporting.domain.periods import LOCAL
from services.reporting.domain.report import CouncilReport
from shared.reference import ACTIONS_DA, categories, focus_areas, kommuner

LOCALE = "da_DK"
TEMPLATE = "council_report.html"


def number(value: float | None, decimals: int = 0) -> str:
    if value is None:
        return "–"
    pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
    return format_decimal(value, format=pattern, locale=LOCALE)


def rate_text(rate: Rate) -> str:
    """'87,3 % (131 af 150)', or 'for få sager (3 af 4)': never a percentage over too few cases."""
    if rate.denominator == 0:
        return "ingen afsluttede"
    counted = f"{number(rate.numerator)} af {number(rate.denominator)}"
    if rate.percent is None:
        return f"{TOO_FEW_DA} ({counted})"
    return f"{number(rate.percent, 1)} % ({counted})"


def duration(seconds: float | None) -> str:
    """'14 min 05 s', '3 t 20 min', '2 d 4 t': whole seconds rounded down, as Rigspolitiet does."""
    if seconds is None:
        return "–"
    total = math.floor(seconds)
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} t"
    if hours:
        return f"{hours} t {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def when(value: datetime | None) -> str:
    if value is None:
        return "–"
    return format_datetime(value, "d. MMMM y 'kl.' HH:mm", tzinfo=LOCAL, locale=LOCALE)


def window(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds % 86_400 == 0:
        days = int(seconds // 86_400)
        return f"{days} døgn" if days != 1 else "1 døgn"
    if seconds % 3600 == 0:
        return f"{int(seconds // 3600)} timer"
    if seconds % 60 == 0:
        return f"{int(seconds // 60)} minutter"
    return f"{number(seconds, 1)} sekunder"


def spread_figure(spread: Spread, name: str) -> str:
    """One figure of a spread ('median'), or 'for få sager (3)' over too few measurements."""
    if spread.count == 0:
        return "–"
    if spread.suppressed:
        return f"{TOO_FEW_DA} ({number(spread.count)})"
    value: int | None = getattr(spread, name)
    return duration(value)


def spread_text(spread: Spread) -> str:
    if spread.count == 0:
        return "ingen målinger"
    if spread.suppressed:
        return f"{number(spread.count)} målinger: {TOO_FEW_DA}"
    return (
        f"{number(spread.count)} målinger: gennemsnit {duration(spread.mean)}, median {duration(spread.median)},"
        f" p80 {duration(spread.p80)}, p90 {duration(spread.p90)}"
    )


def _template_source(name: str) -> str:
    return resources.files("services.reporting.templates").joinpath(name).read_text(encoding="utf-8")


_ENV = Environment(
    loader=FunctionLoader(_template_source),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.filters.update(
    number=number,
    rate=rate_text,
    duration=duration,
    when=when,
    window=window,
    spread=spread_text,
    spread_figure=spread_figure,
)


def _svg_image(svg: str, alt: str) -> Markup:
    # An <img> with a data URI renders the same in browsers and WeasyPrint, and keeps the chart's
    # markup out of the page's own (nothing in it can reach the document).
    data = base64.b64encode(svg.encode()).decode()
    return Markup('<img class="chart" alt="{}" src="data:image/svg+xml;base64,{}">').format(alt, data)


@functools.cache
def static_text(name: str) -> str:
    """A file of the service's static folder (the report's stylesheet, the pages' own), read once."""
    return resources.files("services.reporting").joinpath("static", name).read_text(encoding="utf-8")


def document_policy() -> str:
    """The CSP of the report as a document of its own (to_html): its one <style>, admitted by its hash, and the
    charts' data: images; no script, no form, no framing."""
    digest = base64.b64encode(hashlib.sha256(static_text("report.css").encode()).digest()).decode()
    return (
        f"default-src 'none'; style-src 'sha256-{digest}'; img-src data:; form-action 'none';"
        " frame-ancestors 'none'; base-uri 'none'"
    )


def report_context(report: CouncilReport) -> dict[str, Any]:
    """What _report.html reads: the report, Danish names, the charts; the council pages add their own."""
    return {
        "r": report,
        "kommune_names": {code: k.name for code, k in kommuner().items()},
        "focus_names": {fa.id: fa.da for fa in focus_areas().values()},
        "category_names": {c.id: c.da for c in categories().values()},
        "charts": {
            "trend": _svg_image(charts.trend_chart(report), "Udvikling måned for måned"),
            "kommuner": _svg_image(charts.compliance_by_kommune_chart(report), "Garantier overholdt pr. kommune"),
            "response": _svg_image(charts.response_distribution_chart(report), "Fordeling af responstider"),
        },
        "too_few": TOO_FEW_DA,
        "action_names": ACTIONS_DA,
    }


def render(template: str, **context: Any) -> str:
    """A template of services/reporting/templates with the report's filters (Danish numbers, rates, times)."""
    return _ENV.get_template(template).render(**context)


def to_html(report: CouncilReport) -> str:
    """The report as a document of its own (the style inside it: a saved file keeps its look)."""
    # The service's own stylesheet, not text from outside: it must stay CSS, not be escaped as HTML.
    css = Markup(static_text("report.css"))  # noqa: S704
    return render(TEMPLATE, report_css=css, **report_context(report))


def to_pdf(report: CouncilReport) -> bytes:
    from weasyprint import HTML  # imported late: loads pango, only needed for PDF

    # Tagged PDF/UA-1 (structure, language, title shown, fonts embedded): veraPDF passes it (tests/support/verapdf.py).
    pdf: bytes = HTML(string=to_html(report)).write_pdf(pdf_variant="pdf/ua-1")
    return pdf


def to_json(report: CouncilReport) -> dict[str, Any]:
    return report.as_dict()


CSV_HEADER = ["afsnit", "udsnit", "periode", "nøgletal", "regel", "grundlag", "tæller", "nævner", "procent", "værdi"]


def _figures_rows(section: str, slice_: str, period: str, f: Figures) -> list[list[Any]]:
    rows: list[list[Any]] = [
        [section, slice_, period, "anmeldelser", "", "", "", "", "", f.reports],
        [section, slice_, period, "tip", "", "", "", "", "", f.tips],
        [section, slice_, period, "bestil_en_betjent", "", "", "", "", "", f.requests],
    ]

    def rate_row(name: str, rate: Rate, rule: str = "", basis: str = "") -> list[Any]:
        pct = "" if rate.percent is None else round(rate.percent, 1)
        return [section, slice_, period, name, rule, basis, rate.numerator, rate.denominator, pct, ""]

    rows.append(rate_row("garantier_overholdt", f.guarantees, basis="guarantee"))
    rows.append(rate_row("lokale_maal_overholdt", f.local_targets, basis="local_target"))
    for rule in f.rules:
        rows.append(rate_row("regel_overholdt", rule.rate, rule.rule_id, rule.basis))
        for name, value in (
            ("borger_bad_om_senere", rule.citizen_requested_later),
            ("lukket_foer_moedt", rule.closed_before_met),
            ("moedt_for_sent", rule.met_late),
        ):
            rows.append([section, slice_, period, name, rule.rule_id, rule.basis, "", "", "", value])
    for prefix, spread in (("responstid", f.response), ("alarm_kvittering", f.alert_ack)):
        rows.append([section, slice_, period, f"{prefix}_count", "", "", "", "", "", spread.count])
        for name in ("mean", "median", "p80", "p90"):
            seconds = getattr(spread, name)
            # Over too few measurements the row says so, as the HTML does, rather than staying blank.
            shown = TOO_FEW_DA if spread.suppressed and spread.count else "" if seconds is None else seconds
            rows.append([section, slice_, period, f"{prefix}_{name}", "", "", "", "", "", shown])
    for basis, value in f.open_deadlines.items():
        rows.append([section, slice_, period, "aabne_frister", "", basis, "", "", "", value])
    for basis, value in f.breached_deadlines.items():
        rows.append([section, slice_, period, "brudte_frister", "", basis, "", "", "", value])
    return rows


def to_csv(report: CouncilReport) -> str:
    """Long format, one figure a row, comma-separated UTF-8 with a BOM so spreadsheets read æøå."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    period = str(report.period)
    scope = str(report.scope)
    for label, figures, p in (
        ("i_alt", report.current, period),
        ("forrige_periode", report.previous, str(report.period.previous())),
        ("samme_periode_sidste_aar", report.year_earlier, str(report.period.year_earlier())),
    ):
        writer.writerows(_figures_rows(label, scope, p, figures))
    for code, figures in report.by_kommune.items():
        writer.writerows(_figures_rows("kommune", code, period, figures))
    for fa, (current, _) in report.by_focus_area.items():
        writer.writerows(_figures_rows("indsatsomraade", fa, period, current))
    for cat, figures in report.by_category.items():
        writer.writerows(_figures_rows("kategori", cat, period, figures))
    return out.getvalue()
