"""The report's charts as SVG from matplotlib: trend over months, compliance per kommune, response times."""

from __future__ import annotations

import io
import threading

import matplotlib
import numpy as np

matplotlib.use("Agg")  # no display on servers; must precede pyplot
import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from services.reporting.domain.report import CouncilReport
from shared.reference import kommuner

# pyplot keeps global state; one chart at a time even when reports render in worker threads.
_LOCK = threading.Lock()
BLUE, GREY, DARK = "#1f4e79", "#b0b7bf", "#222222"

plt.rcParams.update(
    {
        "font.family": "DejaVu Sans",
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "svg.hashsalt": "mvsj-reporting",  # stable ids: the same report renders to the same SVG
        "svg.fonttype": "none",  # text stays text: WeasyPrint draws it 5x faster than glyph paths
    }
)


def _da(value: float, decimals: int = 0) -> str:
    text = f"{value:,.{decimals}f}"
    return text.replace(",", "X").replace(".", ",").replace("X", ".")


def _svg(fig: Figure) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    return buffer.getvalue()


def trend_chart(report: CouncilReport) -> str:
    with _LOCK:
        fig, ax = plt.subplots(figsize=(7.0, 2.6))
        labels = [p.month.short_label_da() for p in report.trend]
        counts = [p.reports + p.tips + p.requests for p in report.trend]
        ax.bar(range(len(labels)), counts, color=GREY, label="Anmeldelser, tip og bestillinger")
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
        ax.set_ylabel("Sager")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax2 = ax.twinx()
        shown = [(i, p.guarantees.percent) for i, p in enumerate(report.trend) if p.guarantees.percent is not None]
        if shown:
            ax2.plot([i for i, _ in shown], [v for _, v in shown], "o-", color=BLUE, label="Garantier overholdt (%)")
        ax2.set_ylim(0, 105)
        ax2.set_ylabel("Garantier overholdt, %")
        ax2.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0f} %"))
        handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
        ax.legend(handles=handles, loc="upper left", fontsize=7, frameon=False)
        ax.set_title("Udvikling måned for måned (garantier: kun måneder med nok sager)", fontsize=9)
        return _svg(fig)


def compliance_by_kommune_chart(report: CouncilReport) -> str:
    with _LOCK:
        names = kommuner()
        rows = list(report.by_kommune.items())
        fig, ax = plt.subplots(figsize=(7.0, 0.35 * len(rows) + 0.9))
        for i, (_, figures) in enumerate(rows):
            rate = figures.guarantees
            if rate.denominator == 0:
                ax.text(1, i, "ingen afsluttede", va="center", fontsize=8, color=DARK)
            elif rate.percent is None:
                ax.text(1, i, f"for få sager ({rate.numerator} af {rate.denominator})", va="center", fontsize=8)
            else:
                ax.barh(i, rate.percent, color=BLUE)
                ax.text(rate.percent + 1, i, f"{_da(rate.percent, 1)} % ({rate.denominator})", va="center", fontsize=8)
        ax.set_yticks(range(len(rows)), [names[code].name for code, _ in rows])
        ax.invert_yaxis()
        ax.set_xlim(0, 125)
        ax.set_xticks([0, 25, 50, 75, 100], ["0 %", "25 %", "50 %", "75 %", "100 %"])
        ax.set_title("Politigarantier overholdt pr. kommune (antal afsluttede i parentes)", fontsize=9)
        return _svg(fig)


def response_distribution_chart(report: CouncilReport) -> str:
    with _LOCK:
        fig, ax = plt.subplots(figsize=(7.0, 2.4))
        minutes = report.response_seconds / 60
        if len(minutes):
            # A few very long waits would squeeze everything else into one bar: times beyond the
            # 95th percentile are gathered in the last bar, and the title says from where.
            cap = float(np.percentile(minutes, 95, method="inverted_cdf"))
            ax.hist(np.minimum(minutes, cap), bins=30, color=BLUE)
            ax.set_title(f"Fordeling af responstider (over {_da(cap, 0)} min samlet i sidste søjle)", fontsize=9)
            spread = report.current.response  # no median or p90 lines over too few measurements
            for value, label in ((spread.median, "median"), (spread.p90, "p90")):
                if value is not None:
                    ax.axvline(value / 60, color=DARK, linestyle="--", linewidth=1)
                    ax.text(value / 60, ax.get_ylim()[1] * 0.95, f" {label}", fontsize=8, va="top")
        else:
            ax.text(0.5, 0.5, "Ingen responstider i perioden", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlabel("Minutter fra anmeldelse modtaget til første patrulje fremme")
        ax.set_ylabel("Sager")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        if not len(minutes):
            ax.set_title("Fordeling af responstider", fontsize=9)
        return _svg(fig)
