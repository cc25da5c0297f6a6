"""Intake request validation: what a citizen filling in the portal's forms, or an officer, is told."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from services.intake.domain.fields import FieldError, InvalidSubmission
from services.intake.entrypoints.bodies import ActionIn, OfficerRequestIn, ReportIn, SubmissionT, TipIn
from services.intake.entrypoints.checks import FLAG_QUESTIONS, field_errors_from_validation_error, validate_submission
from shared.reference import categories

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

DROP: Any = object()  # report(field=DROP) leaves the field out

# What each category needs on top of the common fields, for a report that passes.
CATEGORY_EXTRAS: dict[str, dict[str, Any]] = {
    "burglary_home": {"in_progress": False, "address": "Strandvejen 12"},
    "violence": {"acute": True},
    "rape": {"acute": False},
    "drug_dealing_school": {"institution": "Roskilde Katedralskole"},
}


def report(category: str = "burglary_home", **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "category": category,
        "description": "Terrassedøren er brudt op, og smykker mangler.",
        "occurred_at": "2026-03-01T08:40:00+01:00",
        "kommune": "0265",
        "contact": {"name": "Mette Hansen", "phone": "20304050"},
        **CATEGORY_EXTRAS.get(category, {}),
    }
    body.update(over)
    return {k: v for k, v in body.items() if v is not DROP}


def errors(model: type[SubmissionT], payload: Any, now: datetime = NOW) -> dict[str, FieldError]:
    try:
        validate_submission(model, payload, now)
    except InvalidSubmission as exc:
        return {e.field: e for e in exc.errors}
    return {}


def accepted(model: type[SubmissionT], payload: Any, now: datetime = NOW) -> SubmissionT:
    return validate_submission(model, payload, now)


# --- Categories ------------------------------------------------------------------------------


@pytest.mark.parametrize("category", sorted(categories()))
def test_a_complete_report_of_every_category_is_accepted(category: str) -> None:
    accepted_report = accepted(ReportIn, report(category))
    assert accepted_report.category == category
    assert accepted_report.kommunekode() == "0265"


def test_every_flag_a_category_requires_is_a_question_the_report_can_answer() -> None:
    for category in categories().values():
        for flag in category.flags:
            assert flag in FLAG_QUESTIONS
            assert flag in ReportIn.model_fields


def test_burglary_must_say_whether_the_burglar_is_still_there() -> None:
    found = errors(ReportIn, report("burglary_home", in_progress=DROP))
    assert found["in_progress"].code == "required_for_category"
    assert "burglar" in found["in_progress"].message
    assert accepted(ReportIn, report("burglary_home", in_progress=True)).in_progress is True


def test_burglary_needs_the_address_or_the_position_of_the_home() -> None:
    found = errors(ReportIn, report("burglary_home", address=DROP))
    assert found["address"].code == "address_or_position_required"
    by_position = accepted(ReportIn, report("burglary_home", address=DROP, position={"lat": 55.64, "lon": 12.08}))
    assert by_position.position is not None and by_position.address is None


@pytest.mark.parametrize("category", ["violence", "rape"])
def test_violence_and_rape_must_say_whether_it_is_acute(category: str) -> None:
    found = errors(ReportIn, report(category, acute=DROP))
    assert found["acute"].code == "required_for_category"
    assert accepted(ReportIn, report(category, acute=True)).acute is True


def test_a_flag_of_another_category_is_refused_rather_than_stored() -> None:
    found = errors(ReportIn, report("violence", in_progress=True))
    assert found["in_progress"].code == "not_for_category"
    assert "burglary" in found["in_progress"].message


def test_drug_dealing_at_a_school_names_the_school() -> None:
    found = errors(ReportIn, report("drug_dealing_school", institution=DROP))
    assert found["institution"].code == "required_for_category"
    assert "school" in found["institution"].message
    named = accepted(ReportIn, report("drug_dealing_school", institution="  Himmelev Skole "))
    assert named.institution == "Himmelev Skole"


def test_an_institution_on_another_category_is_refused() -> None:
    assert errors(ReportIn, report("traffic", institution="Køge Gymnasium"))["institution"].code == "not_for_category"


def test_an_unknown_category_lists_the_known_ones() -> None:
    found = errors(ReportIn, report("littering"))
    assert found["category"].code == "unknown_category"
    assert "burglary_home" in found["category"].message


def test_all_missing_answers_are_reported_at_once() -> None:
    found = errors(ReportIn, report("burglary_home", in_progress=DROP, address=DROP, contact=DROP))
    assert set(found) == {"in_progress", "address", "contact"}


# --- Kommune ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("given", "code"), [("0265", "0265"), ("265", "0265"), (" 350 ", "0350")])
def test_kommune_is_taken_as_a_kommunekode_long_or_short(given: Any, code: str) -> None:
    assert accepted(ReportIn, report(kommune=given)).kommunekode() == code


def test_a_postcode_wholly_in_one_kommune_settles_it() -> None:
    jyllinge = accepted(ReportIn, report(kommune=DROP, postcode="4040"))
    assert jyllinge.kommunekode() == "0265"
    assert accepted(ReportIn, report(kommune="", postcode="4660")).kommunekode() == "0336"  # Store Heddinge


def test_a_shared_postcode_asks_for_the_kommune_and_names_the_candidates() -> None:
    found = errors(ReportIn, report(kommune=DROP, postcode="4000"))
    assert found["kommune"].code == "kommune_ambiguous"
    assert "Roskilde (0265)" in found["kommune"].message
    assert "Lejre (0350)" in found["kommune"].message


def test_a_postcode_outside_the_district_asks_for_the_kommune() -> None:
    found = errors(ReportIn, report(kommune=DROP, postcode="8000"))
    assert found["kommune"].code == "postcode_outside_district"
    assert "Holbæk (0316)" in found["kommune"].message


def test_a_kommunekode_outside_the_district_names_the_districts_kommuner() -> None:
    found = errors(ReportIn, report(kommune="0101"))
    assert found["kommune"].code == "kommune_outside_district"
    for name in ("Greve", "Holbæk", "Kalundborg", "Køge", "Lejre", "Odsherred", "Ringsted", "Roskilde",
                 "Solrød", "Stevns"):  # fmt: skip
        assert name in found["kommune"].message


def test_without_kommune_or_postcode_the_kommune_is_asked_for() -> None:
    assert errors(ReportIn, report(kommune=DROP))["kommune"].code == "kommune_required"


def test_a_malformed_postcode_says_what_a_postcode_looks_like() -> None:
    found = errors(ReportIn, report(postcode="40OO"))
    assert found["postcode"].code == "postcode_invalid"


def test_a_given_kommunekode_settles_a_shared_postcode() -> None:
    assert accepted(ReportIn, report(kommune="350", postcode="4000")).kommunekode() == "0350"


# --- Position --------------------------------------------------------------------------------


def test_a_position_outside_the_district_is_refused_on_the_position_field() -> None:
    found = errors(ReportIn, report(position={"lat": 55.68, "lon": 12.57}))  # Copenhagen
    assert found["position"].code == "position_outside_district"
    assert "114" in found["position"].message


def test_a_position_must_be_real_coordinates() -> None:
    found = errors(ReportIn, report(position={"lat": 155.6, "lon": 12.08}))
    assert found["position.lat"].code == "less_than_equal"


# --- Description -----------------------------------------------------------------------------


MARKUP = [
    "<script>alert(1)</script>",
    "De råbte <b>meget</b> højt",
    'Se <a href="https://example.dk">her</a>',
    "<img src=x onerror=alert(1)>",
    "<svg/onload=alert(1)>",
    "<iframe src=javascript:alert(1)>",
    "Linje<br/>to",
    "<!-- skjult -->",
]


@pytest.mark.parametrize("markup", MARKUP)
def test_markup_in_free_text_is_text_kept_exactly_as_typed(markup: str) -> None:
    # Free text is text: no blacklist to slip past, nothing rewritten; HTML outputs escape it.
    found = accepted(
        ReportIn, report(description=markup, address=markup, contact={"name": markup, "phone": "20304050"})
    )
    assert (found.description, found.address) == (markup, markup)
    assert found.contact is not None and found.contact.name == markup


@pytest.mark.parametrize("control", ["\x00", "\x07", "\x1b[31m", "\x7f"])
def test_control_characters_are_the_one_thing_free_text_may_not_hold(control: str) -> None:
    assert errors(ReportIn, report(description=f"Hjælp{control}"))["description"].code == "control_characters"


@pytest.mark.parametrize("text", ["Han var < 18 år og hun > 60", "Jeg <3 Roskilde", "Pil -> derhen", "a<b", "x > y"])
def test_a_lone_angle_bracket_is_plain_text(text: str) -> None:
    assert accepted(ReportIn, report(description=text)).description == text


def test_the_description_is_trimmed_and_may_be_4000_characters() -> None:
    assert accepted(ReportIn, report(description="  Glasskår overalt.  \n")).description == "Glasskår overalt."
    assert len(accepted(ReportIn, report(description="x" * 4000)).description) == 4000
    too_long = errors(ReportIn, report(description="x" * 4001))["description"]
    assert too_long.code == "string_too_long"
    assert "4,000" in too_long.message


def test_a_report_needs_a_description() -> None:
    assert errors(ReportIn, report(description=DROP))["description"].message == "This field is required."
    assert errors(ReportIn, report(description="   "))["description"].code == "string_too_short"


def test_control_characters_are_refused() -> None:
    assert errors(ReportIn, report(description="bell\x07"))["description"].code == "control_characters"


def test_a_description_keeps_its_line_breaks_and_tabs_with_every_line_break_as_lf() -> None:
    typed = "Første linje\r\nAnden linje\rTredje\n\t- punkt"
    assert accepted(ReportIn, report(description=typed)).description == "Første linje\nAnden linje\nTredje\n\t- punkt"


# Each single-line field of a report, with the value that puts `text` in it.
LINES: dict[str, Any] = {
    "address": lambda text: {"address": text},
    "institution": lambda text: {"institution": text},
    "contact.name": lambda text: {"contact": {"name": text, "phone": "20304050"}},
    "contact.email": lambda text: {"contact": {"email": text.replace(" ", "") + "@example.dk"}},
}
# What a hostile sender put into names: a forged line, a NUL, reversed text, a look-alike id.
HOSTILE = {
    "crlf": ("Jens Hansen\r\nBcc: alle@politi.example", "single_line", "U+000D"),
    "nul": ("Jens\x00Hansen", "control_characters", "U+0000"),
    "bidi": ("Jens \u202enesnaH", "bidi_control", "U+202E"),
    "zero-width": ("vc\u200b-a", "invisible_character", "U+200B"),
    "c1": ("Jens\x85Hansen", "control_characters", "U+0085"),
}


@pytest.mark.parametrize("field", sorted(LINES))
@pytest.mark.parametrize("hostile", sorted(HOSTILE))
def test_a_single_line_field_refuses_line_breaks_control_bidi_and_zero_width_characters(
    field: str, hostile: str
) -> None:
    text, code, point = HOSTILE[hostile]
    category = "drug_dealing_school" if field == "institution" else "burglary_home"
    found = errors(ReportIn, report(category, **LINES[field](text)))
    assert list(found) == [field]
    assert found[field].code == code and point in found[field].message
    assert text not in found[field].message


# --- Times -----------------------------------------------------------------------------------


def test_a_time_without_time_zone_is_refused() -> None:
    found = errors(ReportIn, report(occurred_at="2026-03-01T08:40:00"))
    assert found["occurred_at"].code == "timezone_aware"
    assert "time zone" in found["occurred_at"].message


def test_a_time_in_the_future_is_refused_beyond_two_minutes_of_clock_skew() -> None:
    ahead = (NOW + timedelta(minutes=10)).isoformat()
    assert errors(ReportIn, report(occurred_at=ahead))["occurred_at"].code == "in_the_future"
    slightly_ahead = (NOW + timedelta(seconds=90)).isoformat()
    assert accepted(ReportIn, report(occurred_at=slightly_ahead)).occurred_at is not None


def test_the_future_is_judged_against_the_injected_clock() -> None:
    tomorrow = (NOW + timedelta(days=1)).isoformat()
    assert errors(ReportIn, report(occurred_at=tomorrow))
    assert not errors(ReportIn, report(occurred_at=tomorrow), now=NOW + timedelta(days=2))


def test_a_naive_clock_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        validate_submission(ReportIn, report(), datetime(2026, 3, 1, 9, 0))


# --- Contact ---------------------------------------------------------------------------------


def test_a_report_needs_a_way_to_reach_the_citizen() -> None:
    assert errors(ReportIn, report(contact=DROP))["contact"].code == "contact_required"
    name_only = errors(ReportIn, report(contact={"name": "Mette Hansen"}))["contact"]
    assert name_only.code == "contact_unreachable"
    by_email = accepted(ReportIn, report(contact={"email": "mette@Example.DK"}))
    assert by_email.contact is not None and by_email.contact.email == "mette@example.dk"


@pytest.mark.parametrize(
    ("typed", "stored"),
    [("20 30 40 50", "+4520304050"), ("+45 20-30-40-50", "+4520304050"), ("0046 70 123 45 67", "+46701234567")],
)
def test_phone_numbers_are_stored_in_one_form(typed: str, stored: str) -> None:
    contact = accepted(ReportIn, report(contact={"phone": typed})).contact
    assert contact is not None and contact.phone == stored


def test_a_bad_phone_number_is_reported_on_its_field_without_echoing_it() -> None:
    found = errors(ReportIn, report(contact={"phone": "2030"}))
    assert found["contact.phone"].code == "phone_invalid"
    assert "2030" not in found["contact.phone"].message


@pytest.mark.parametrize("typed", ["٢٠٣٠٤٠٥٠", "２０３０４０５０"])  # Arabic-Indic, full-width digits
def test_phone_numbers_take_ascii_digits_only(typed: str) -> None:
    # Police call these numbers; a stored number must be one a phone can dial.
    assert errors(ReportIn, report(contact={"phone": typed}))["contact.phone"].code == "phone_invalid"


def test_a_postcode_takes_ascii_digits_only() -> None:
    assert "postcode" in errors(ReportIn, report(postcode="٤٠٠٠"))


def test_a_bad_email_is_reported_on_its_field() -> None:
    assert errors(ReportIn, report(contact={"email": "mette.example.dk"}))["contact.email"].code == "email_invalid"


# --- Tips ------------------------------------------------------------------------------------


def tip(**over: Any) -> dict[str, Any]:
    body = {"category": "drug_dealing_street", "description": "Salg fra en hvid varevogn hver aften.",
            "postcode": "4300", "anonymous": True}  # fmt: skip
    body.update(over)
    return {k: v for k, v in body.items() if v is not DROP}


def test_an_anonymous_tip_is_accepted_without_contact_details() -> None:
    anonymous = accepted(TipIn, tip())
    assert anonymous.contact is None
    assert anonymous.kommunekode() == "0316"


def test_an_anonymous_tip_refuses_contact_details_so_nothing_personal_is_stored() -> None:
    found = errors(TipIn, tip(contact={"phone": "20304050"}))
    assert found["contact"].code == "contact_on_anonymous_tip"
    assert errors(TipIn, tip(contact={}))["contact"].code == "contact_on_anonymous_tip"


def test_a_named_tip_needs_a_way_to_reach_the_tipster() -> None:
    assert errors(TipIn, tip(anonymous=False))["contact"].code == "contact_required"
    assert accepted(TipIn, tip(anonymous=False, contact={"email": "a@b.dk"})).anonymous is False


def test_a_tip_takes_no_report_flags() -> None:
    assert errors(TipIn, tip(in_progress=True))["in_progress"].code == "extra_forbidden"


# --- Bestil en betjent -----------------------------------------------------------------------


def officer_request(**over: Any) -> dict[str, Any]:
    body = {"request_type": "traffic_control", "description": "Biler kører for stærkt forbi skolen om morgenen.",
            "kommune": "0259", "address": "Ølbyvej 2", "contact": {"email": "skole@koege.dk"}}  # fmt: skip
    body.update(over)
    return {k: v for k, v in body.items() if v is not DROP}


@pytest.mark.parametrize(("request_type", "category"), [("traffic_control", "traffic"), ("talk", "other")])
def test_an_officer_request_is_counted_under_a_report_category(request_type: str, category: str) -> None:
    assert accepted(OfficerRequestIn, officer_request(request_type=request_type)).category == category


def test_an_officer_request_needs_a_known_type_a_topic_and_contact() -> None:
    assert errors(OfficerRequestIn, officer_request(request_type="drug_dog"))["request_type"].code == "literal_error"
    assert "description" in errors(OfficerRequestIn, officer_request(description=DROP))
    assert errors(OfficerRequestIn, officer_request(contact=DROP))["contact"].code == "contact_required"


# --- Police actions --------------------------------------------------------------------------


def action(**over: Any) -> dict[str, Any]:
    body = {"action": "on_scene", "occurred_at": "2026-03-01T08:50:00Z", "officer_id": "MVSJ-1234"}
    body.update(over)
    return {k: v for k, v in body.items() if v is not DROP}


def test_a_plain_action_is_accepted() -> None:
    assert accepted(ActionIn, action()).action == "on_scene"


def test_closing_needs_an_outcome_code_and_only_closing_takes_one() -> None:
    assert errors(ActionIn, action(action="closed"))["outcome"].code == "required"
    assert accepted(ActionIn, action(action="closed", outcome="No_Offence")).outcome == "no_offence"
    assert errors(ActionIn, action(outcome="resolved"))["outcome"].code == "not_for_action"


def test_an_outcome_is_a_code_not_free_text() -> None:
    found = errors(ActionIn, action(action="closed", outcome="Anders Jensen was arrested"))
    assert found["outcome"].code == "outcome_invalid"


def test_an_action_takes_no_free_text_note() -> None:
    assert errors(ActionIn, action(note="Borgeren var sur"))["note"].code == "extra_forbidden"


def test_citizen_requested_later_needs_a_later_time_within_reason() -> None:
    later = action(action="citizen_requested_later")
    assert errors(ActionIn, later)["requested_time"].code == "required"
    before = errors(ActionIn, later | {"requested_time": "2026-03-01T08:00:00Z"})
    assert before["requested_time"].code == "requested_time_not_later"
    next_year = errors(ActionIn, later | {"requested_time": "2027-03-02T10:00:00Z"})
    assert next_year["requested_time"].code == "requested_time_too_far"
    tomorrow = accepted(ActionIn, later | {"requested_time": "2026-03-02T16:00:00+01:00"})
    assert tomorrow.requested_time is not None


def test_only_citizen_requested_later_takes_a_requested_time() -> None:
    found = errors(ActionIn, action(requested_time="2026-03-02T10:00:00Z"))
    assert found["requested_time"].code == "not_for_action"


def test_an_action_cannot_have_happened_in_the_future() -> None:
    assert errors(ActionIn, action(occurred_at="2026-03-01T10:00:00Z"))["occurred_at"].code == "in_the_future"


def test_an_unknown_action_is_refused_with_the_known_ones() -> None:
    found = errors(ActionIn, action(action="arrested"))
    assert found["action"].code == "literal_error"
    assert "on_scene" in found["action"].message


# --- pydantic's errors, cleaned --------------------------------------------------------------


def test_validation_errors_become_one_clean_entry_per_field() -> None:
    with pytest.raises(ValidationError) as caught:
        ReportIn.model_validate(report(contact={"phone": "123", "email": "x"}, acute="maybe", occurred_at="igår"))
    found = {e.field: e for e in field_errors_from_validation_error(caught.value)}
    assert set(found) == {"contact.phone", "contact.email", "acute", "occurred_at"}
    assert found["acute"].message == "Must be true or false."
    assert found["occurred_at"].code == "datetime_type"
    for entry in found.values():
        assert "123" not in entry.message and "igår" not in entry.message
    assert found["acute"].as_problem_entry() == {
        "field": "acute", "in": "body", "message": "Must be true or false.", "code": "bool_parsing"
    }  # fmt: skip


def test_a_json_body_is_validated_too() -> None:
    assert accepted(ReportIn, json.dumps(report()).encode()).category == "burglary_home"
    assert errors(ReportIn, b"{not json")["body"].code == "json_invalid"


# --- Strict types: the portal sends JSON, a wrong type is an error ---------------------------


@pytest.mark.parametrize(
    ("field", "loose"),
    [
        ("in_progress", "no"),
        ("in_progress", 0),
        ("in_progress", "off"),
        ("in_progress", "false"),
        ("description", 12345),
        ("kommune", 265),
        ("postcode", 4000),
        ("occurred_at", 1772348100),
        ("occurred_at", "1772348100"),
        ("address", True),
    ],
)
def test_a_value_of_the_wrong_json_type_is_refused_not_converted(field: str, loose: Any) -> None:
    found = errors(ReportIn, report(**{field: loose}))
    assert field in found, found


def test_strict_types_hold_in_nested_objects_and_actions_too() -> None:
    assert "contact.phone" in errors(ReportIn, report(contact={"phone": 20304050}))
    assert "anonymous" in errors(TipIn, {"category": "other", "description": "x", "kommune": "0265", "anonymous": 1})
    action = {"action": "on_scene", "occurred_at": 1772348100, "officer_id": 1234}
    assert {"occurred_at", "officer_id"} <= set(errors(ActionIn, action))
