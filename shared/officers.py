"""The district's police officers as the roster file (ROSTER_FILE) names them: whom a police system may act for.

notify reads the whole roster (rota, overrides, channels) and validates it in
services/notify/adapters/roster_file.py. A service that only has to know whether an id is one of
the district's officers, with its name, role and kommune (intake, when a police system reads a
report for an officer), reads those and nothing else here, so it never depends on notify's code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import yaml

from shared.oidc import Person
from shared.settings import PROJECT_ROOT

DEFAULT_ROSTER_FILE: Final = PROJECT_ROOT / "services" / "notify" / "data" / "roster.yaml"

OfficerRole = Literal["vagtchef", "lokalbetjent"]


@dataclass(frozen=True, slots=True)
class Officer:
    """An officer of the roster: a vagtchef (every kommune) or a lokalbetjent of one kommune."""

    id: str
    name: str
    role: OfficerRole
    kommune: str | None = None

    def as_person(self) -> Person:
        """The officer as a Person, so the reach rules of shared/oidc.py apply alike to tokens and the roster."""
        return Person(
            subject=self.id,
            username=self.id,
            name=self.name,
            roles=frozenset({self.role}),
            kommune=self.kommune,
            roster_id=self.id,
        )


def _entries(value: Any, where: str, path: Path) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(e, dict) for e in value):
        raise ValueError(f"ROSTER_FILE {path}: {where} must be a list of officers ({{id, name, ...}})")
    return value


def load_officers(path: Path) -> dict[str, Officer]:
    """Officer id -> Officer; a file that cannot be read, or an officer without id or name, stops start-up."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ValueError(f"ROSTER_FILE {path}: cannot read it ({exc.strerror})") from exc
    if not isinstance(document, dict):
        raise ValueError(f"ROSTER_FILE {path}: not a roster (a mapping with vagtchefer and kommuner)")
    found: list[Officer] = []
    for entry in _entries(document.get("vagtchefer"), "vagtchefer", path):
        found.append(_officer(entry, "vagtchef", None, path))
    kommuner = document.get("kommuner") or {}
    if not isinstance(kommuner, dict):
        raise ValueError(f"ROSTER_FILE {path}: kommuner must map kommunekoder to their lokalbetjente")
    for code, block in kommuner.items():
        officers = block.get("lokalbetjente") if isinstance(block, dict) else None
        for entry in _entries(officers, f"kommuner.{code}.lokalbetjente", path):
            found.append(_officer(entry, "lokalbetjent", str(code), path))
    by_id: dict[str, Officer] = {}
    for officer in found:
        if officer.id in by_id:
            raise ValueError(f"ROSTER_FILE {path}: officer {officer.id} appears twice")
        by_id[officer.id] = officer
    return by_id


def _officer(entry: dict[str, Any], role: OfficerRole, kommune: str | None, path: Path) -> Officer:
    officer_id, name = entry.get("id"), entry.get("name")
    if not isinstance(officer_id, str) or not officer_id or not isinstance(name, str) or not name:
        raise ValueError(f"ROSTER_FILE {path}: every officer needs an id and a name ({role}, kommune {kommune})")
    return Officer(id=officer_id, name=name, role=role, kommune=kommune)
