"""Kommune resolution from kommunekode or postcode, and the postcode table it reads."""

from __future__ import annotations

from typing import Any

import pytest

from services.intake.domain.kommune import (
    KommuneFound,
    KommuneUnresolved,
    parse_postnumre,
    postnumre,
    resolve_kommune,
)
from shared.reference import kommuner


def found_code(kommune: str | int | None, postcode: str | None) -> str:
    resolution = resolve_kommune(kommune, postcode)
    assert isinstance(resolution, KommuneFound), resolution
    return resolution.kommune.code


def unresolved(kommune: str | int | None, postcode: str | None) -> KommuneUnresolved:
    resolution = resolve_kommune(kommune, postcode)
    assert isinstance(resolution, KommuneUnresolved), resolution
    return resolution


@pytest.mark.parametrize(("given", "code"), [("0265", "0265"), ("265", "0265"), (253, "0253"), ("0336", "0336")])
def test_a_kommunekode_long_or_short(given: str | int, code: str) -> None:
    assert found_code(given, None) == code


@pytest.mark.parametrize(
    ("postcode", "name"),
    [("4040", "Roskilde"), ("2670", "Greve"), ("2680", "Solrød"), ("4300", "Holbæk"), ("4400", "Kalundborg"),
     ("4660", "Stevns"), ("4500", "Odsherred"), ("4060", "Lejre"), ("4632", "Køge")],
)  # fmt: skip
def test_a_postcode_wholly_inside_one_kommune_settles_it(postcode: str, name: str) -> None:
    assert kommuner()[found_code(None, postcode)].name == name


def test_a_postcode_shared_by_two_district_kommuner_asks_which() -> None:
    answer = unresolved(None, "2690")  # Karlslunde: Greve and Solrød
    assert answer.code == "kommune_ambiguous"
    assert [k.name for k in answer.candidates] == ["Greve", "Solrød"]
    assert "Greve (0253)" in answer.message and "Solrød (0269)" in answer.message


def test_a_postcode_shared_with_a_neighbour_outside_the_district_asks_too() -> None:
    roskilde = unresolved(None, "4000")
    assert [k.code for k in roskilde.candidates] == ["0265", "0350"]
    assert "Høje-Taastrup" in roskilde.message
    sorø = unresolved(None, "4180")  # one of ours (Ringsted), two outside
    assert [k.name for k in sorø.candidates] == ["Ringsted"]
    assert "Slagelse" in sorø.message and "outside this police district" in sorø.message


def test_a_postcode_outside_the_district_asks_for_the_kommune() -> None:
    aarhus = unresolved(None, "8000")
    assert aarhus.code == "postcode_outside_district"
    assert len(aarhus.candidates) == 10


def test_a_kommunekode_outside_the_district_is_refused_with_the_list() -> None:
    copenhagen = unresolved("0101", None)
    assert copenhagen.code == "kommune_outside_district"
    assert "Roskilde (0265)" in copenhagen.message and "Lejre (0350)" in copenhagen.message


def test_nothing_given_asks_for_kommune_or_postcode() -> None:
    assert unresolved(None, None).code == "kommune_required"
    assert unresolved("  ", "").code == "kommune_required"


def test_a_given_kommunekode_wins_over_the_postcode_table() -> None:
    # The table is an approximation: a citizen's explicit choice is never overruled by it.
    assert found_code("0253", "4400") == "0253"


def test_every_district_kommune_is_reached_by_some_postcode() -> None:
    reached = {k.code for entry in postnumre().values() for k in entry.district_kommuner}
    assert reached == set(kommuner())


def test_the_table_refuses_a_misspelt_kommune_name() -> None:
    data: dict[str, Any] = {"neighbours": ["Sorø"], "postnumre": [{"code": "4100", "town": "Ringsted",
                                                                  "kommuner": ["Ringstead"]}]}  # fmt: skip
    with pytest.raises(ValueError, match="unknown kommuner"):
        parse_postnumre(data)


def test_the_table_refuses_a_postcode_listed_twice_or_malformed() -> None:
    row = {"code": "4300", "town": "Holbæk", "kommuner": ["Holbæk"]}
    with pytest.raises(ValueError, match="listed twice"):
        parse_postnumre({"neighbours": [], "postnumre": [row, row]})
    with pytest.raises(ValueError, match="malformed"):
        parse_postnumre({"neighbours": [], "postnumre": [row | {"code": "430"}]})
