"""Which kommune (municipality) a case belongs to: from a kommunekode, or from a postnummer (postcode)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from shared.reference import Kommune, kommuner, load_data, normalize_kommunekode

POLITIKREDS = "Midt- og Vestsjællands Politi"


@dataclass(frozen=True, slots=True)
class Postnummer:
    """A Danish postcode and the kommuner it has addresses in (ours and neighbours, by name)."""

    code: str
    town: str
    kommuner: tuple[str, ...]

    @property
    def district_kommuner(self) -> tuple[Kommune, ...]:
        """The district's kommuner this postcode reaches into, in code order."""
        by_name = {k.name: k for k in kommuner().values()}
        return tuple(sorted((by_name[n] for n in self.kommuner if n in by_name), key=lambda k: k.code))

    @property
    def outside_kommuner(self) -> tuple[str, ...]:
        """Neighbouring kommuner outside the district that share this postcode."""
        ours = {k.name for k in kommuner().values()}
        return tuple(sorted(n for n in self.kommuner if n not in ours))


@cache
def postnumre() -> dict[str, Postnummer]:
    """Postcodes reaching into the district, from shared/data/postnumre.yaml."""
    return parse_postnumre(load_data("postnumre.yaml"))


def parse_postnumre(data: Mapping[str, Any]) -> dict[str, Postnummer]:
    """The postcode table, checked: raises ValueError on a name or code the table should not hold."""
    ours = {k.name for k in kommuner().values()}
    known = ours | set(data["neighbours"])
    found: dict[str, Postnummer] = {}
    for row in data["postnumre"]:
        entry = Postnummer(code=str(row["code"]), town=row["town"], kommuner=tuple(row["kommuner"]))
        if len(entry.code) != 4 or not entry.code.isdigit() or entry.code in found:
            raise ValueError(f"postnumre.yaml: {entry.code!r} is malformed or listed twice")
        # A misspelt name would silently turn one of ours into "outside": refuse to load instead.
        unknown = set(entry.kommuner) - known
        if unknown:
            raise ValueError(f"postnumre.yaml: {entry.code} names unknown kommuner {sorted(unknown)}")
        if not ours & set(entry.kommuner):
            raise ValueError(f"postnumre.yaml: {entry.code} reaches no kommune of the district")
        found[entry.code] = entry
    return found


@dataclass(frozen=True, slots=True)
class KommuneFound:
    """The kommune the case belongs to."""

    kommune: Kommune


@dataclass(frozen=True, slots=True)
class KommuneUnresolved:
    """Why no kommune could be settled on; `message` is for the citizen, `candidates` for a picker."""

    code: str
    message: str
    candidates: tuple[Kommune, ...] = ()


KommuneResolution = KommuneFound | KommuneUnresolved


def resolve_kommune(kommune: str | int | None, postcode: str | None) -> KommuneResolution:
    """The case's kommune: the kommunekode when given ("0265" or "265"), else the postcode's.

    A given kommunekode wins over the postcode, even when the postcode table does not place it
    there: the table is an approximation, and a report must never be refused because of it. A
    postcode settles the kommune only when all of its addresses lie in one district kommune; a
    postcode shared with another kommune, ours or a neighbour's, makes us ask.
    """
    if kommune is not None and str(kommune).strip():
        code = normalize_kommunekode(kommune)
        if code is None:
            return KommuneUnresolved(
                "kommune_outside_district",
                f"This is not a kommune of {POLITIKREDS}. Choose one of: {district_list()}.",
                tuple(kommuner().values()),
            )
        return KommuneFound(kommuner()[code])

    if postcode is None or not postcode.strip():
        return KommuneUnresolved(
            "kommune_required",
            "Choose the kommune where it happened, or give its postcode.",
            tuple(kommuner().values()),
        )

    entry = postnumre().get(postcode.strip())
    if entry is None:
        return KommuneUnresolved(
            "postcode_outside_district",
            f"This postcode is not in {POLITIKREDS}'s area. Choose the kommune where it happened: {district_list()}.",
            tuple(kommuner().values()),
        )
    ours = entry.district_kommuner
    if len(ours) == 1 and not entry.outside_kommuner:
        return KommuneFound(ours[0])

    named = _and(tuple(f"{k.name} ({k.code})" for k in ours))
    outside = ""
    if entry.outside_kommuner:
        outside = f", and by {_and(entry.outside_kommuner)} outside this police district"
    return KommuneUnresolved(
        "kommune_ambiguous",
        f"The postcode of {entry.town} is shared by {named}{outside}. Choose the kommune.",
        ours,
    )


def district_list() -> str:
    """The district's kommuner as a citizen reads them: "Greve (0253), Køge (0259), ..."."""
    return ", ".join(f"{k.name} ({k.code})" for k in kommuner().values())


def _and(names: tuple[str, ...]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
