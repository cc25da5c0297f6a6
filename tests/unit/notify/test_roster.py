"""Roster decisions: who is on duty (both DST weeks, overrides), gaps, fallback to the vagtcentral, bad files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.notify.adapters.roster_file import DEFAULT_ROSTER_FILE, load_roster, parse_roster
from services.notify.domain.roster import Roster
from shared.datafile import DataFileError
from shared.reference import kommuner
from tests.support.notify import new_secret, roster_document


def roster(**kw: Any) -> Roster:
    return parse_roster(roster_document(**kw), "test-roster.yaml", kommuner=kommuner(), secrets={})


def on_duty(r: Roster, at: datetime) -> list[str]:
    return [o.id for o in r.on_duty(at)]


def sweep(r: Roster, start: datetime, days: int, step: timedelta = timedelta(minutes=5)) -> list[list[str]]:
    found, t = [], start
    while t < start + timedelta(days=days):
        found.append(on_duty(r, t))
        t += step
    return found


@pytest.mark.parametrize(
    ("week_start", "night_hours"),
    [
        (datetime(2026, 3, 23, tzinfo=UTC), 11),  # summer time starts Sun 29 March 02:00 -> 03:00
        (datetime(2026, 10, 19, tzinfo=UTC), 13),  # summer time ends Sun 25 October 03:00 -> 02:00
    ],
)
def test_a_dst_week_has_exactly_one_vagtchef_at_every_moment(week_start: datetime, night_hours: int) -> None:
    r = roster()
    # Every five minutes of the week: never nobody (a gap), never two (a doubled shift).
    assert all(len(ids) == 1 for ids in sweep(r, week_start, 7))
    assert r.gaps(week_start, week_start + timedelta(days=7)) == []
    # The night shift of the change keeps its wall-clock ends, 19:00 to 07:00 local: 11 or 13 real hours.
    night = next(
        (s, e)
        for s, e in r.rota[1].occurrences(r.tz, week_start, week_start + timedelta(days=7))
        if s.astimezone(r.tz).day == week_start.day + 5
    )
    assert night[1] - night[0] == timedelta(hours=night_hours)
    assert night[0].astimezone(r.tz).hour == 19 and night[1].astimezone(r.tz).hour == 7


def test_spring_handover_is_at_seven_local_on_the_change_day() -> None:
    r = roster()
    # 29 March 2026: 07:00 summer time is 05:00 UTC.
    assert on_duty(r, datetime(2026, 3, 29, 4, 59, tzinfo=UTC)) == ["vc-b"]
    assert on_duty(r, datetime(2026, 3, 29, 5, 0, tzinfo=UTC)) == ["vc-a"]
    # 25 October 2026: 07:00 winter time is 06:00 UTC.
    assert on_duty(r, datetime(2026, 10, 25, 5, 59, tzinfo=UTC)) == ["vc-b"]
    assert on_duty(r, datetime(2026, 10, 25, 6, 0, tzinfo=UTC)) == ["vc-a"]


def test_an_override_puts_a_stand_in_on_duty_and_the_sick_officer_off() -> None:
    r = roster(overrides=[{"from": "2026-05-04T07:00", "to": "2026-05-04T19:00", "absent": "vc-a", "officer": "vc-b",
                           "reason": "sygdom"}])  # fmt: skip
    assert on_duty(r, datetime(2026, 5, 4, 10, tzinfo=UTC)) == ["vc-b"]
    assert on_duty(r, datetime(2026, 5, 5, 10, tzinfo=UTC)) == ["vc-a"]  # only the dated day


def test_gaps_are_found_and_the_vagtcentral_takes_the_alert_then() -> None:
    # Nobody covers 19:00-07:00, and an illness on one day leaves that day empty too.
    r = roster(
        rota=[{"officer": "vc-a", "rrule": "FREQ=DAILY", "from": "2026-01-01", "start": "07:00", "end": "19:00"}],
        overrides=[{"from": "2026-05-05T07:00", "to": "2026-05-05T19:00", "absent": "vc-a"}],
    )
    start = datetime(2026, 5, 4, 0, tzinfo=UTC)
    gaps = r.gaps(start, start + timedelta(days=2))
    local = [(a.astimezone(r.tz).strftime("%d %H:%M"), b.astimezone(r.tz).strftime("%d %H:%M")) for a, b in gaps]
    assert local == [("04 02:00", "04 07:00"), ("04 19:00", "06 02:00")]  # the window ends 6 May 00:00 UTC
    night = datetime(2026, 5, 4, 22, tzinfo=UTC)
    assert [x.id for x in r.recipients("vagtchef", "0265", night)] == ["vagtcentral"]
    assert [x.id for x in r.recipients("vagtchef", "0265", datetime(2026, 5, 4, 10, tzinfo=UTC))] == ["vc-a"]


def test_a_kommune_without_lokalbetjente_falls_back_to_the_vagtcentral() -> None:
    r = roster(roskilde_officers=())
    assert [x.id for x in r.recipients("lokalbetjente", "0265", datetime(2026, 5, 4, tzinfo=UTC))] == ["vagtcentral"]
    assert [x.id for x in r.recipients("lokalbetjente", "0253", datetime(2026, 5, 4, tzinfo=UTC))] == ["lb-0253"]


def test_the_default_roster_covers_every_kommune_and_has_no_gap_for_a_year() -> None:
    r = load_roster(DEFAULT_ROSTER_FILE)
    assert set(r.lokalbetjente) == set(kommuner())
    assert all(r.lokalbetjente[k] for k in kommuner())
    start = datetime(2026, 1, 6, 6, tzinfo=UTC)  # the rota's first morning (its first night is the 5th)
    assert r.gaps(start, start + timedelta(days=365)) == []


def test_a_bad_roster_names_each_bad_entry() -> None:
    doc = roster_document(officer_channels={"lb-roskilde-2": [{"type": "webhook", "url": "ftp://x", "secret": "s"}]})
    doc["rota"][0]["officer"] = "vc-nobody"
    doc["rota"][1]["rrule"] = "EVERY DAY"
    doc["vagtchefer"][1]["channels"] = [{"type": "email", "to": "not-an-address"}]
    del doc["kommuner"]["0350"]
    with pytest.raises(DataFileError) as caught:
        parse_roster(doc, "r.yaml", kommuner=kommuner(), secrets={})
    problems = caught.value.problems
    assert "r.yaml: rota #1.officer: 'vc-nobody' is not one of the vagtchefer" in problems
    assert any(p.startswith("r.yaml: rota #2.rrule: 'EVERY DAY'") for p in problems)
    assert any(p.startswith("r.yaml: vagtchefer #2 (vc-b).channels #1.to:") for p in problems)
    assert any("lokalbetjente #2 (lb-roskilde-2).channels #1.url: 'ftp://x'" in p for p in problems)
    assert any("kommune 0350 has no entry" in p for p in problems)


def test_a_webhook_secret_comes_from_the_environment() -> None:
    doc = roster_document(officer_channels={"vc-a": [{"type": "webhook", "url": "http://h/x", "secret_env": "VC_A"}]})
    with pytest.raises(DataFileError, match="the environment has no VC_A"):
        parse_roster(doc, "r.yaml", kommuner=kommuner(), secrets={})
    secret = new_secret()
    r = parse_roster(doc, "r.yaml", kommuner=kommuner(), secrets={"VC_A": secret})
    assert r.duty_officers["vc-a"].channels[0].secret == secret
