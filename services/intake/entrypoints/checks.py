"""The rules a submission must meet across its fields, against the reference data and the clock.

Validation runs in two steps, and both report one FieldError per bad field:

1. The body's pydantic model checks each field on its own (entrypoints/bodies.py, with the field
   types of domain/fields.py); `field_errors_from_validation_error` turns its errors into
   FieldErrors, worded by shared/validation.py.
2. `check_report`, `check_tip`, `check_officer_request` and `check_action` apply the rules that
   need several fields, the reference data or the clock: what a category requires, the
   kommune from kommunekode or postcode, contact details, times not in the future. They take
   `now` from the caller's clock, so they are testable without real time.

`validate_submission` runs both steps, which is all a route needs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from pydantic import ValidationError

from services.intake.domain.fields import FieldError, InvalidSubmission
from services.intake.domain.kommune import KommuneUnresolved, resolve_kommune
from services.intake.domain.times import past_time_problem, requested_time_problem
from services.intake.entrypoints.bodies import (
    ActionIn,
    Contact,
    Located,
    OfficerRequestIn,
    ReportIn,
    Submission,
    SubmissionT,
    TipIn,
)
from shared.reference import categories
from shared.validation import dotted, readable

# The portal sends JSON, and a client that sends the wrong type wants to hear it: "no", 0 or "off"
# is no boolean, 5 is no text, 1772348100 is no time (times are ISO 8601 strings with a zone).
STRICT: Final = True


# The yes/no facts a category may require (categories.yaml, `flags`), as the portal asks them.
FLAG_QUESTIONS: Final[Mapping[str, str]] = {
    "in_progress": "Is the burglar still there? Answer true or false.",
    "acute": "Is it acute: is the perpetrator still there, or is someone in danger? Answer true or false.",
}
ADDRESS_OR_POSITION_REQUIRED: Final = frozenset({"burglary_home"})
INSTITUTION_REQUIRED: Final = frozenset({"drug_dealing_school"})

# --- Rules across fields, and against the clock ------------------------------------------------


def check_report(report: ReportIn, now: datetime) -> list[FieldError]:
    """Everything a valid report must also satisfy; [] when it may be accepted."""
    category = categories()[report.category]
    errors: list[FieldError] = []
    for flag, question in FLAG_QUESTIONS.items():
        value = getattr(report, flag)
        if flag in category.flags and value is None:
            errors.append(FieldError(flag, question, "required_for_category"))
        elif flag not in category.flags and value is not None:
            errors.append(_not_for_category(flag, [c.id for c in categories().values() if flag in c.flags]))
    if report.category in ADDRESS_OR_POSITION_REQUIRED and report.address is None and report.position is None:
        errors.append(
            FieldError("address", "Give the address of the home, or its position.", "address_or_position_required")
        )
    if report.category in INSTITUTION_REQUIRED and report.institution is None:
        errors.append(FieldError("institution", "Name the school or education institution.", "required_for_category"))
    elif report.category not in INSTITUTION_REQUIRED and report.institution is not None:
        errors.append(_not_for_category("institution", sorted(INSTITUTION_REQUIRED)))
    errors += _kommune_errors(report)
    errors += _time_errors("occurred_at", report.occurred_at, now)
    errors += _contact_errors(report.contact)
    return errors


def check_tip(tip: TipIn, now: datetime) -> list[FieldError]:
    """Everything a valid tip must also satisfy; [] when it may be accepted."""
    errors = _kommune_errors(tip) + _time_errors("occurred_at", tip.occurred_at, now)
    if tip.anonymous and tip.contact is not None:
        # Refused rather than dropped: the tipster should know that what they typed was not sent.
        errors.append(
            FieldError(
                "contact",
                "An anonymous tip cannot include contact details. Remove them, or untick anonymous.",
                "contact_on_anonymous_tip",
            )
        )
    elif not tip.anonymous and tip.contact is None:
        errors.append(
            FieldError(
                "contact",
                "Give a phone number or an e-mail address, or send the tip anonymously.",
                "contact_required",
            )
        )
    elif not tip.anonymous:
        errors += _contact_errors(tip.contact)
    return errors


def check_officer_request(request: OfficerRequestIn, now: datetime) -> list[FieldError]:
    """Everything a valid Bestil en betjent request must also satisfy; [] when it may be accepted."""
    _aware(now)
    return _kommune_errors(request) + _contact_errors(request.contact)


def check_action(action: ActionIn, now: datetime) -> list[FieldError]:
    """The action's own fields, taken together; whether the case allows it is cases.decide_action's call."""
    errors = _time_errors("occurred_at", action.occurred_at, now)
    if action.action == "citizen_requested_later":
        if action.requested_time is None:
            errors.append(
                FieldError("requested_time", "Give the time the citizen wants the police to come.", "required")
            )
        elif problem := requested_time_problem(action.requested_time, action.occurred_at, now):
            errors.append(FieldError("requested_time", problem.message, problem.code))
    elif action.requested_time is not None:
        errors.append(
            FieldError("requested_time", "Only citizen_requested_later takes a requested time.", "not_for_action")
        )
    if action.action == "closed" and action.outcome is None:
        errors.append(FieldError("outcome", "Give the outcome when closing the case.", "required"))
    elif action.action != "closed" and action.outcome is not None:
        errors.append(FieldError("outcome", "Only closed takes an outcome.", "not_for_action"))
    return errors


def check_submission(submission: Submission, now: datetime) -> list[FieldError]:
    """The check_* function that fits the submission's type."""
    match submission:
        case ReportIn():
            return check_report(submission, now)
        case TipIn():
            return check_tip(submission, now)
        case OfficerRequestIn():
            return check_officer_request(submission, now)
        case ActionIn():
            return check_action(submission, now)


def validate_submission(
    model: type[SubmissionT], payload: bytes | str | Mapping[str, Any], now: datetime
) -> SubmissionT:
    """Parses and checks a request body; raises InvalidSubmission with one FieldError per bad field.

    The cross-field rules run only on a body whose fields are each valid, so a citizen who fixes
    a malformed phone number may be told about a missing answer on the next try.
    """
    # Always through JSON, so a dict (from a test or another caller) meets the same strict JSON rules.
    raw = payload if isinstance(payload, bytes | str) else json.dumps(payload)
    try:
        submission = model.model_validate_json(raw, strict=STRICT)
    except ValidationError as exc:
        raise InvalidSubmission(field_errors_from_validation_error(exc)) from None
    errors = check_submission(submission, now)
    if errors:
        raise InvalidSubmission(_one_per_field(errors))
    return submission


def _not_for_category(field: str, category_ids: list[str]) -> FieldError:
    labels = " and ".join(categories()[c].en.lower() for c in category_ids)
    return FieldError(field, f"This only applies to reports of {labels}; leave it out.", "not_for_category")


def _kommune_errors(submission: Located) -> list[FieldError]:
    resolution = resolve_kommune(submission.kommune, submission.postcode)
    if isinstance(resolution, KommuneUnresolved):
        return [FieldError("kommune", resolution.message, resolution.code)]
    return []


def _contact_errors(contact: Contact | None) -> list[FieldError]:
    if contact is None:
        return [
            FieldError(
                "contact",
                "Give a phone number or an e-mail address so the police can reach you.",
                "contact_required",
            )
        ]
    if not contact.reachable:
        return [
            FieldError(
                "contact",
                "Give a phone number or an e-mail address so the police can reach you.",
                "contact_unreachable",
            )
        ]
    return []


def _time_errors(field: str, value: datetime | None, now: datetime) -> list[FieldError]:
    _aware(now)
    if value is None:
        return []
    problem = past_time_problem(value, now)
    return [] if problem is None else [FieldError(field, problem.message, problem.code)]


def _aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("`now` must be timezone-aware; take it from shared.clock")


# --- pydantic's errors, as a citizen reads them ----------------------------------------------


def field_errors_from_validation_error(exc: ValidationError) -> list[FieldError]:
    """pydantic's errors as FieldErrors: dotted paths, readable messages, and never the input."""
    found: list[FieldError] = []
    for err in exc.errors(include_url=False, include_input=False):
        found.append(FieldError(dotted(err["loc"], "body"), readable(err), err["type"]))
    return _one_per_field(found)


def _one_per_field(errors: list[FieldError]) -> list[FieldError]:
    # The portal shows one message beside a field; the first one found is the most basic.
    seen: dict[str, FieldError] = {}
    for error in errors:
        seen.setdefault(error.field, error)
    return list(seen.values())
