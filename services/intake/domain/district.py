"""Whether a position lies in the police district (politikreds): point-in-polygon on a coarse outline."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from shared.reference import load_data


@dataclass(frozen=True, slots=True)
class DistrictOutline:
    """The district's area as one polygon of (lat, lon) vertices, from shared/data/district.yaml."""

    name: str
    vertices: tuple[tuple[float, float], ...]

    def contains(self, lat: float, lon: float) -> bool:
        """Ray casting: a ray from the point eastwards crosses the outline an odd number of times.

        Plain degrees serve as planar coordinates: over a district 100 km across, the distortion
        is far below the outline's own accuracy.
        """
        inside = False
        count = len(self.vertices)
        for i in range(count):
            lat_a, lon_a = self.vertices[i]
            lat_b, lon_b = self.vertices[(i + 1) % count]
            # Half-open on latitude, so a ray through a vertex counts it once, not twice.
            if (lat_a > lat) != (lat_b > lat):
                crossing_lon = lon_a + (lat - lat_a) * (lon_b - lon_a) / (lat_b - lat_a)
                if lon < crossing_lon:
                    inside = not inside
        return inside


@cache
def district_outline() -> DistrictOutline:
    """The outline in shared/data/district.yaml."""
    return parse_outline(load_data("district.yaml"))


def parse_outline(data: Mapping[str, Any]) -> DistrictOutline:
    """The outline, checked: raises ValueError on one that cannot be the district's."""
    vertices = tuple((float(lat), float(lon)) for lat, lon in data["outline"])
    if len(vertices) < 3:
        raise ValueError("district.yaml: an outline needs at least three vertices")
    for lat, lon in vertices:
        # Denmark lies within 54-58 N, 8-16 E: a swapped pair or a typo lands outside and is caught.
        if not (54.0 <= lat <= 58.0 and 8.0 <= lon <= 16.0):
            raise ValueError(f"district.yaml: vertex ({lat}, {lon}) is not in Denmark")
    return DistrictOutline(name=data["politikreds"], vertices=vertices)


def in_district(lat: float, lon: float) -> bool:
    """True when (lat, lon), WGS84 degrees, lies inside the district's outline."""
    return district_outline().contains(lat, lon)
