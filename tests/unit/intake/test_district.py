"""The district's outline: towns of the 10 kommuner are inside, towns around them outside."""

from __future__ import annotations

import pytest

from services.intake.domain.district import DistrictOutline, district_outline, in_district, parse_outline

INSIDE = {
    "Roskilde": (55.64, 12.08),
    "Holbæk": (55.72, 11.71),
    "Kalundborg": (55.68, 11.09),
    "Køge": (55.46, 12.18),
    "Store Heddinge": (55.31, 12.39),
    "Nykøbing Sj": (55.92, 11.67),
    "Ringsted": (55.44, 11.79),
    "Greve Strand": (55.59, 12.30),
    "Solrød Strand": (55.53, 12.22),
    "Hvalsø": (55.59, 11.86),
    "Jyllinge": (55.75, 12.10),
    "Høng": (55.51, 11.29),
    "Rødvig": (55.254, 12.373),
    "Sejerø": (55.88, 11.15),
}
OUTSIDE = {
    "Copenhagen": (55.68, 12.57),
    "Slagelse": (55.40, 11.35),
    "Odense": (55.40, 10.39),
    "Næstved": (55.23, 11.76),
    "Sorø": (55.43, 11.56),
    "Haslev": (55.32, 11.96),
    "Frederikssund": (55.84, 12.07),
    "Taastrup": (55.65, 12.30),
}


@pytest.mark.parametrize("town", sorted(INSIDE))
def test_towns_of_the_district_are_inside(town: str) -> None:
    assert in_district(*INSIDE[town])


@pytest.mark.parametrize("town", sorted(OUTSIDE))
def test_towns_around_the_district_are_outside(town: str) -> None:
    assert not in_district(*OUTSIDE[town])


def test_the_outline_belongs_to_the_district() -> None:
    assert district_outline().name == "Midt- og Vestsjællands Politi"


def test_point_in_polygon_on_a_square() -> None:
    square = DistrictOutline("square", ((55.0, 11.0), (55.0, 12.0), (56.0, 12.0), (56.0, 11.0)))
    assert square.contains(55.5, 11.5)
    assert not square.contains(55.5, 12.5)
    assert not square.contains(54.5, 11.5)
    assert not square.contains(55.5, 10.5)


def test_an_outline_with_swapped_coordinates_is_refused() -> None:
    with pytest.raises(ValueError, match="not in Denmark"):
        parse_outline({"politikreds": "x", "outline": [[12.08, 55.64], [11.7, 55.7], [11.1, 55.6]]})
