"""What a council report e-mail says, in Danish: subject and text. The figures themselves are in the attached PDF."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from services.reporting.domain.delivery_plan import PlanEntry
from services.reporting.domain.kpis import TOO_FEW_DA
from services.reporting.domain.periods import LOCAL, MONTHS_DA, Period
from shared.reference import focus_areas

SIGNATURE = "Midt- og Vestsjællands Politi"


@dataclass(frozen=True, slots=True)
class CouncilMail:
    subject: str
    text: str


def day_da(instant: datetime) -> str:
    """'7. oktober 2026 kl. 08.00' in Danish local time."""
    local = instant.astimezone(LOCAL)
    return f"{local.day}. {MONTHS_DA[local.month - 1]} {local.year} kl. {local:%H.%M}"


def span_da(period: Period) -> str:
    """'1. juli – 30. september 2026' (the year once when both ends share it)."""
    first = period.first_day
    last = period.shifted(1).first_day - timedelta(days=1)
    start = f"{first.day}. {MONTHS_DA[first.month - 1]}" + (f" {first.year}" if first.year != last.year else "")
    return f"{start} – {last.day}. {MONTHS_DA[last.month - 1]} {last.year}"


def council_mail(entry: PlanEntry, period: Period, *, threshold: int, figures_as_of: datetime) -> CouncilMail:
    """The e-mail that carries the report of `period` to the council of `entry`.

    Says which report and period it is, that law and local targets are apart, and what "for få
    sager" means, so a reader who only sees the e-mail knows what she is reading.
    """
    report = entry.report
    focus = focus_areas().get(report.focus_area) if report.focus_area else None
    focus_da = f", indsatsområdet {focus.da.lower()}" if focus else ""
    subject = f"Rådsrapport {period.label_da()}: {report.scope.label_da()}" + (f" – {focus.da}" if focus else "")
    text = "\n".join(
        [
            f"Til {entry.council.council_da}",
            "",
            f"Vedhæftet er politiets rådsrapport om {report.scope.label_da()}{focus_da} i {period.label_da()}"
            f" ({span_da(period)}): {entry.filename(period)}.",
            "",
            "Rapporten viser, om politigarantierne og kredsens lokale mål er overholdt (loven og kredsens egne"
            " mål hver for sig, med antallet af sager ved hver andel), responstider, opfølgninger og Bestil en"
            " betjent, sammenlignet med perioden før og samme periode året før.",
            "",
            f'Hvor færre end {threshold} sager ligger bag et tal, står der "{TOO_FEW_DA}" i stedet for en'
            " procentsats eller en tid: så få sager giver ikke et retvisende billede. Antallet af sager står der"
            " altid.",
            "",
            f"Tallene er opgjort {day_da(figures_as_of)} ud fra de hændelser, politiets systemer havde registreret"
            " til da.",
            "",
            "Med venlig hilsen",
            SIGNATURE,
            "",
            "--",
            f"Sendt automatisk efter kredsens udsendelsesplan (punkt {entry.id}). Rapporten indeholder ingen"
            " personoplysninger.",
        ]
    )
    return CouncilMail(subject=subject, text=text)
