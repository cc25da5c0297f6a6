"""The simulator's traffic: the district's share of national report rates, shaped by the hour of day."""

from __future__ import annotations

import pytest

from demo.simulate import (
    DENMARK_POPULATION,
    DISTRICT_POPULATION,
    NATIONAL_REPORTS_PER_YEAR,
    SPEED,
    VOLUME,
    daily_volumes,
    rates_per_demo_second,
)


def test_burglaries_per_day_follow_the_national_rate_per_inhabitant() -> None:
    national, source = NATIONAL_REPORTS_PER_YEAR["burglary_home"]
    assert "DST" in source  # a documented number, not an assumption
    per_day = daily_volumes()["burglary_home"]
    assert per_day == pytest.approx(national / DENMARK_POPULATION * DISTRICT_POPULATION / 365)
    assert 3 < per_day < 4  # ~1,230 a year in a district of 490,000


def test_every_number_names_its_source_or_says_it_is_an_assumption() -> None:
    for category, (count, source) in NATIONAL_REPORTS_PER_YEAR.items():
        assert count > 0, category
        assert source.startswith(("DST", "ASSUMPTION")), category


def test_a_simulated_day_sends_the_real_volume_times_the_demo_amplification() -> None:
    per_hour = [rates_per_demo_second(hour) for hour in range(24)]
    # A simulated hour lasts 3600 / SPEED real seconds.
    sent_in_a_day = sum(sum(rates.values()) * 3600 / SPEED for rates in per_hour)
    assert sent_in_a_day == pytest.approx(sum(daily_volumes().values()) * VOLUME)


def test_violence_peaks_at_night_and_traffic_complaints_at_rush_hour() -> None:
    night, morning, evening = rates_per_demo_second(1), rates_per_demo_second(8), rates_per_demo_second(16)
    assert night["violence"] > 3 * morning["violence"]
    assert morning["traffic"] > 5 * night["traffic"]
    assert evening["burglary_home"] > 3 * night["burglary_home"]
