"""Reference data every service reads: the district's kommuner, report categories and focus areas."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

# The police actions of cases.v1 (`case.action_recorded`) as a Danish reader knows them: council
# reports count them, alerts name the one that met a deadline.
ACTIONS_DA: dict[str, str] = {
    "dispatched": "Patrulje sendt",
    "on_scene": "Patrulje fremme",
    "citizen_requested_later": "Borger bad om senere besøg",
    "school_and_ssp_contacted": "Skolens ledelse og SSP kontaktet",
    "followup_done": "Tryghedsopfølgning udført",
    "replied": "Bestil en betjent: svar givet",
    "carried_out": "Bestil en betjent: gennemført",
    "closed": "Sag afsluttet",
}


@dataclass(frozen=True, slots=True)
class Kommune:
    """A municipality (kommune) of the police district, e.g. 0265 Roskilde."""

    code: str
    name: str


@dataclass(frozen=True, slots=True)
class FocusArea:
    """An indsatsområde (focus area) of the cooperation plan that councils report on."""

    id: str
    da: str
    en: str


@dataclass(frozen=True, slots=True)
class Category:
    """A report category, with the yes/no flags a report of it must state."""

    id: str
    da: str
    en: str
    focus_area: str
    flags: tuple[str, ...]


def load_data(name: str) -> dict[str, Any]:
    """A YAML file of shared/data, parsed."""
    text = resources.files("shared.data").joinpath(name).read_text(encoding="utf-8")
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


@cache
def kommuner() -> dict[str, Kommune]:
    """Kommuner by four-digit kommunekode, in code order."""
    rows = load_data("kommuner.yaml")["kommuner"]
    return {row["code"]: Kommune(code=row["code"], name=row["name"]) for row in rows}


def normalize_kommunekode(value: str | int) -> str | None:
    """The canonical four-digit code for '265', '0265' or 265, or None when it is not one of ours."""
    text = str(value).strip()
    if not text.isdigit() or len(text) > 4:
        return None
    code = text.zfill(4)
    return code if code in kommuner() else None


@cache
def focus_areas() -> dict[str, FocusArea]:
    rows = load_data("categories.yaml")["focus_areas"]
    return {row["id"]: FocusArea(**row) for row in rows}


@cache
def categories() -> dict[str, Category]:
    rows = load_data("categories.yaml")["categories"]
    found = {
        row["id"]: Category(
            id=row["id"], da=row["da"], en=row["en"], focus_area=row["focus_area"], flags=tuple(row["flags"])
        )
        for row in rows
    }
    unknown = {c.focus_area for c in found.values()} - set(focus_areas())
    if unknown:
        raise ValueError(f"categories.yaml names unknown focus areas: {sorted(unknown)}")
    return found
