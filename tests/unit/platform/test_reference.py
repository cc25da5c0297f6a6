"""Reference data: the district's kommuner and the report categories, from their data files."""

from __future__ import annotations

import pytest

from shared.reference import categories, focus_areas, kommuner, normalize_kommunekode


def test_the_ten_kommuner_of_the_district() -> None:
    names = {k.name for k in kommuner().values()}
    assert names == {"Greve", "Holbæk", "Kalundborg", "Køge", "Lejre", "Odsherred", "Ringsted", "Roskilde",
                     "Solrød", "Stevns"}  # fmt: skip
    assert kommuner()["0265"].name == "Roskilde"


@pytest.mark.parametrize(("given", "code"), [("265", "0265"), ("0265", "0265"), (253, "0253"), (" 350 ", "0350")])
def test_kommunekode_forms_are_normalised(given: str | int, code: str) -> None:
    assert normalize_kommunekode(given) == code


@pytest.mark.parametrize("given", ["0101", "101", "abc", "", "12345", "-265"])
def test_codes_outside_the_district_are_not_ours(given: str) -> None:
    assert normalize_kommunekode(given) is None


def test_every_category_of_spec_has_labels_and_one_focus_area() -> None:
    spec = {"burglary_home", "violence", "rape", "drug_dealing_school", "drug_dealing_street", "traffic",
            "youth_party_nuisance", "vulnerable_person", "fraud_elderly", "it_crime", "domestic_violence",
            "gang_related", "other"}  # fmt: skip
    assert set(categories()) == spec
    for category in categories().values():
        assert category.da and category.en
        assert category.focus_area in focus_areas()
    assert categories()["burglary_home"].flags == ("in_progress",)
    assert categories()["violence"].flags == ("acute",)
