"""The public figures of guarantee compliance as open data: one schema (`OpenData`) for JSON and CSV, the method in
plain Danish, and the licence they are published under.

The schema is versioned (`skema`): a field is never renamed, retyped or dropped within a version; a
new field may be added at the end. Field names are Danish (ASCII), the same in JSON and CSV.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from services.reporting.adapters.renderers import rate_text, window
from services.reporting.domain.kpis import TOO_FEW_DA
from services.reporting.domain.public import Cell, Guarantee, GuaranteeCompliance
from shared.reference import kommuner

SCHEMA = "politigarantier/1"
TITLE = "Politigarantier overholdt pr. kommune og kvartal"
PUBLISHER = "Midt- og Vestsjællands Politi"


def method_da(threshold: int) -> list[str]:
    """How the figures are made, in plain Danish: on the page and in the data."""
    return [
        "Tallene viser, hvor tit politiet holdt politigarantierne i hver af kredsens 10 kommuner, kvartal for kvartal.",
        "Andelen er antallet af sager, hvor politiet nåede det, garantien lover, inden for fristen, delt med antallet"
        " af afsluttede sager. En sag er afsluttet, når politiet har nået det (til tiden eller for sent), eller når"
        " fristen er overskredet. Sager, hvor fristen stadig løber, er ikke talt med endnu.",
        "En sag tælles i det kvartal, hvor fristen begyndte, det vil sige da anmeldelsen kom ind (dansk tid).",
        "Har borgeren selv bedt politiet komme senere, gælder borgerens tidspunkt. Lukkes en sag, før fristen er nået"
        " eller overskredet (fx fordi gerningsmanden blev anholdt), tæller den hverken som holdt eller brudt.",
        "Loven siger «med det samme» ved igangværende indbrud, akut vold, akut voldtægt og åbenlyst narkotikasalg ved"
        " skoler, men giver intet tal. Her bruges kredsens eget mål; det står ved hver garanti, om fristen er lovens"
        " eller kredsens.",
        f"Små tal: er der færre end {threshold} afsluttede sager for en garanti i en kommune i et kvartal, viser vi"
        f" hverken andel eller antal, kun «{TOO_FEW_DA}». Så få sager svinger tilfældigt, og de kan pege på de"
        " mennesker, sagerne handler om. Tallene er udeladt, ikke afrundet, og der vises ingen totaler, som de kunne"
        " regnes ud af.",
        "Tallene for det kvartal, der er i gang, er foreløbige. Et afsluttet kvartal kan stadig ændre sig lidt de"
        " første dage, mens de sidste frister løber ud.",
        "Der er kun optællinger her: intet om de enkelte sager eller de mennesker, de handler om.",
        "Kommunernes lokalråd og kredsrådet får de samme tal i deres rådsrapporter.",
    ]


class Licence(BaseModel):
    navn: str = Field(description="The licence's name")
    url: str = Field(description="Where its terms are")


class GuaranteeTerms(BaseModel):
    id: str = Field(description="The rule's stable id, e.g. burglary_home_24h")
    titel: str = Field(description="The guarantee in Danish")
    vindue: str = Field(description="The window in Danish words, e.g. '24 timer'")
    vindue_sekunder: float | None = Field(description="The window in seconds")
    vindue_fastsat_af: Literal["lov", "kreds"] = Field(
        description="lov: the law's window; kreds: the district's own target where the law says 'med det samme'"
    )


class Row(BaseModel):
    kvartal: str = Field(description="2026-Q3")
    foreloebig: bool = Field(description="true for the quarter under way: its figures are preliminary")
    kommunekode: str = Field(description="e.g. 0265")
    kommune: str = Field(description="e.g. Roskilde")
    garanti: str = Field(description="The guarantee's id (`garantier`)")
    overholdt: int | None = Field(description="Met within the window; null where there were too few cases")
    afsluttede: int | None = Field(description="Concluded (met, met late or breached); null where too few")
    procent: float | None = Field(description="overholdt ÷ afsluttede in per cent, one decimal; null: too few or none")
    for_faa_sager: bool = Field(description="true: fewer than the threshold concluded, so no figure is published")


class OpenData(BaseModel):
    skema: str = Field(description="The schema's name and version, politigarantier/1")
    titel: str
    udgiver: str
    licens: Licence
    metode: list[str] = Field(description="How the figures are made, in plain Danish")
    graense_for_faa_sager: int = Field(description="No figure is published over fewer concluded cases than this")
    dannet: datetime = Field(description="When this document was computed")
    data_senest_modtaget: datetime | None = Field(description="The newest event the figures include")
    garantier: list[GuaranteeTerms]
    raekker: list[Row] = Field(description="Every quarter × kommune × guarantee, oldest quarter first")


def _terms(g: Guarantee) -> GuaranteeTerms:
    return GuaranteeTerms(
        id=g.rule_id,
        titel=g.title,
        vindue=window(g.window_seconds),
        vindue_sekunder=g.window_seconds,
        vindue_fastsat_af="lov" if g.window_set_by == "law" else "kreds",
    )


def open_data(compliance: GuaranteeCompliance, licence: Licence) -> OpenData:
    names = kommuner()
    rows = [
        Row(
            kvartal=str(quarter),
            foreloebig=quarter == compliance.running,
            kommunekode=code,
            kommune=names[code].name,
            garanti=g.rule_id,
            overholdt=cell.met,
            afsluttede=cell.concluded,
            procent=cell.percent,
            for_faa_sager=cell.too_few,
        )
        for quarter in compliance.quarters
        for code in compliance.kommuner
        for g in compliance.guarantees
        for cell in [compliance.cell(quarter, code, g.rule_id)]
    ]
    return OpenData(
        skema=SCHEMA,
        titel=TITLE,
        udgiver=PUBLISHER,
        licens=licence,
        metode=method_da(compliance.threshold),
        graense_for_faa_sager=compliance.threshold,
        dannet=compliance.generated_at,
        data_senest_modtaget=compliance.data_as_of,
        garantier=[_terms(g) for g in compliance.guarantees],
        raekker=rows,
    )


CSV_FIELDS = [*Row.model_fields, "licens"]


def to_csv(data: OpenData) -> str:
    """One row per quarter, kommune and guarantee, the JSON rows' fields in their order and the licence in a column
    of its own (a file passed on keeps it); comma-separated UTF-8 with a BOM, as the council report's CSV."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_FIELDS)
    licence = f"{data.licens.navn} ({data.licens.url}); kilde: {data.udgiver}"
    for row in data.raekker:
        values = row.model_dump()
        writer.writerow([_csv_value(values[name]) for name in Row.model_fields] + [licence])
    return out.getvalue()


def _csv_value(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def cell_da(cell: Cell) -> str:
    """A cell as the page shows it: '83,3 % (10 af 12)' as in the council report, 'for få sager' with no counts
    under the threshold, or 'ingen afsluttede'."""
    return TOO_FEW_DA if cell.too_few else rate_text(cell.rate)
