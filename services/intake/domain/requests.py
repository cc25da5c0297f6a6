"""What the citizen portal and police systems post to intake, and the rules a submission must meet.

Validation runs in two steps, and both report one FieldError per bad field:

1. The pydantic models check each field on its own: type, length, plain text, phone and e-mail
   shape, a known category, a kommunekode of the district, a position inside the district.
   FastAPI runs this step when a model is a route's body; `field_errors_from_validation_error`
   turns its errors into FieldErrors for callers that validate by hand.
2. `check_report`, `check_tip`, `check_officer_request` and `check_action` apply the rules that
   need several fields, the reference data or the clock: what a category requires, the
   kommune from kommunekode or postcode, contact details, times not in the future. They take
   `now` from the caller's clock, so they are testable without real time.

`validate_submission` runs both steps, which is all a route needs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from services.intake.domain.district import in_district
from services.intake.domain.kommune import POLITIKREDS, KommuneUnresolved, resolve_kommune
from shared.events.cases import Action, RequestType
from shared.reference import categories
from shared.validation import dotted, readable

DESCRIPTION_MAX_CHARS: Final = 4000
# Portal and police clocks run a little apart; a report stamped "now" by a fast clock is not a lie.
CLOCK_SKEW: Final = timedelta(minutes=2)
# A citizen may ask the police to come weeks later, not years: this catches a mistyped year.
REQUESTED_TIME_HORIZON: Final = timedelta(days=60)

# Bestil en betjent has no category of its own; councils count it under these.
REQUEST_CATEGORY: Final[Mapping[str, str]] = {"traffic_control": "traffic", "talk": "other"}

# The yes/no facts a category may require (categories.yaml, `flags`), as the portal asks them.
FLAG_QUESTIONS: Final[Mapping[str, str]] = {
    "in_progress": "Is the burglar still there? Answer true or false.",
    "acute": "Is it acute: is the perpetrator still there, or is someone in danger? Answer true or false.",
}
ADDRESS_OR_POSITION_REQUIRED: Final = frozenset({"burglary_home"})
INSTITUTION_REQUIRED: Final = frozenset({"drug_dealing_school"})


@dataclass(frozen=True, slots=True)
class FieldError:
    """One bad field: `field` is a dotted path ("contact.phone", "kommune"), `code` a stable token.

    Messages are short English sentences a portal can show beside the field. They never repeat
    what the citizen typed, so an error can be logged without leaking a phone number.
    """

    field: str
    message: str
    code: str

    def as_problem_entry(self) -> dict[str, str]:
        """An entry of a 422 problem+json `errors` list, shaped like shared.http's entries."""
        return {"field": self.field, "in": "body", "message": self.message, "code": self.code}


class InvalidSubmission(ValueError):
    """A submission failed validation; `errors` holds one FieldError per bad field."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__(f"{len(errors)} field(s) need attention")
        self.errors = errors


def _error(code: str, message: str) -> PydanticCustomError:
    # The message travels as context, so a brace in it is never read as a template placeholder.
    return PydanticCustomError(code, "{message}", {"message": message})


# --- Field types -----------------------------------------------------------------------------

# A markup tag (<b>, </a>, <br/>, <a href="...">), a comment, a doctype or a processing
# instruction. "3 < 5", "<3" and "x > y" are plain text and pass.
_MARKUP = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>|<!--|<![A-Za-z\[]|<\?[A-Za-z]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _plain_text(value: str) -> str:
    # Rejected rather than escaped: officers read the text in other systems that may render it,
    # and the citizen learns at once that formatting is not kept. Escaping on output stays the
    # output's job all the same.
    if _MARKUP.search(value):
        raise _error("html_not_allowed", "Write plain text, without HTML tags such as <b> or <a>.")
    if _CONTROL.search(value):
        raise _error("control_characters", "Remove the invisible control characters from the text.")
    return value


def _single_line(value: str) -> str:
    if "\n" in value or "\r" in value:
        raise _error("single_line", "Write this on one line.")
    return value


Description = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=DESCRIPTION_MAX_CHARS),
    AfterValidator(_plain_text),
]
Line200 = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_plain_text),
    AfterValidator(_single_line),
]
PersonName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(_plain_text),
    AfterValidator(_single_line),
]

_PHONE_NOISE = re.compile(r"[\s\-().]")


def _phone(value: str) -> str:
    """A Danish number (8 digits, +45 optional) or an international one, as E.164: "+4512345678"."""
    compact = _PHONE_NOISE.sub("", value)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    if re.fullmatch(r"[0-9]{8}", compact):
        return "+45" + compact
    if re.fullmatch(r"\+45[0-9]{8}", compact) or re.fullmatch(r"\+(?!45)[1-9][0-9]{6,14}", compact):
        return compact
    raise _error(
        "phone_invalid", "Enter a Danish phone number of 8 digits, or an international number starting with +."
    )


Phone = Annotated[str, StringConstraints(strip_whitespace=True, max_length=32), AfterValidator(_phone)]

# Deliberately loose (no e-mail-validator dependency): one @, a dotted domain, no spaces or markup.
_EMAIL = re.compile(r"[^@\s<>\"(),;:]+@[^@\s<>\"(),;:.]+(?:\.[^@\s<>\"(),;:.]+)+")


def _email(value: str) -> str:
    # Control characters are refused too: the pattern's classes would let them through, and a NUL
    # cannot even be stored (Postgres text refuses it).
    if _CONTROL.search(value) or not _EMAIL.fullmatch(value):
        raise _error("email_invalid", "Enter an e-mail address such as navn@example.dk.")
    local, domain = value.rsplit("@", 1)
    return f"{local}@{domain.lower()}"


Email = Annotated[str, StringConstraints(strip_whitespace=True, max_length=254), AfterValidator(_email)]


def _kommunekode(value: Any) -> Any:
    """'265', '0265' or 265 -> '0265'; a code outside the district names the district's kommuner."""
    if isinstance(value, str) and not value.strip():
        return None  # an unselected picker: the postcode may still settle the kommune
    if isinstance(value, bool) or not isinstance(value, str | int):
        return value  # left for the type check to reject
    resolution = resolve_kommune(value, None)
    if isinstance(resolution, KommuneUnresolved):
        raise _error(resolution.code, resolution.message)
    return resolution.kommune.code


Kommunekode = Annotated[str | None, BeforeValidator(_kommunekode)]


def _postcode(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        value = f"{value:04d}"
    if not isinstance(value, str):
        return value
    if not value.strip():
        return None
    if not re.fullmatch(r"[0-9]{4}", value.strip()):
        raise _error("postcode_invalid", "A Danish postcode has four digits, such as 4000.")
    return value.strip()


Postcode = Annotated[str | None, BeforeValidator(_postcode)]


def _category(value: str) -> str:
    if value not in categories():
        raise _error("unknown_category", f"Unknown category. Choose one of: {', '.join(categories())}.")
    return value


CategoryId = Annotated[
    str,
    StringConstraints(strip_whitespace=True),
    AfterValidator(_category),
    WithJsonSchema({"type": "string", "enum": list(categories())}),
]


def _token(value: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9_]*", value):
        raise _error(
            "outcome_invalid", "Give the outcome as a short code such as resolved or no_offence, not free text."
        )
    return value


Outcome = Annotated[
    str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=64), AfterValidator(_token)
]
OfficerId = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")]


# --- Models ----------------------------------------------------------------------------------


class _Body(BaseModel):
    # Unknown fields are refused, not dropped: a misspelt field would otherwise vanish silently,
    # and nothing the portal sends by mistake (a free-text note, a stray identifier) is stored.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Position(_Body):
    """Where it happened, as WGS84 degrees; it must lie in the district."""

    lat: float = Field(ge=-90, le=90, allow_inf_nan=False, description="Latitude", examples=[55.6415])
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False, description="Longitude", examples=[12.0803])

    @model_validator(mode="after")
    def _in_district(self) -> Position:
        if not in_district(self.lat, self.lon):
            raise _error(
                "position_outside_district",
                f"This position is outside {POLITIKREDS}'s area. Report it to the police where it "
                "happened: call 114, or 112 in an emergency.",
            )
        return self


class Contact(_Body):
    """How the police reach the citizen (borger). Stays in intake's database; never on the bus."""

    name: PersonName | None = None
    phone: Phone | None = Field(None, description="8 Danish digits, or international with +")
    email: Email | None = None

    @property
    def reachable(self) -> bool:
        return self.phone is not None or self.email is not None


class _Located(_Body):
    """Where it happened: a kommunekode, or a postcode that settles it, plus an optional place."""

    kommune: Kommunekode = Field(
        None,
        description="Kommunekode where it happened ('0265' or '265'); may be left out when postcode settles it",
        examples=["0265"],
    )
    postcode: Postcode = Field(None, description="Postcode (postnummer) where it happened", examples=["4040"])
    address: Line200 | None = Field(None, description="Street and number where it happened")
    position: Position | None = None

    def kommunekode(self) -> str:
        """The case's four-digit kommunekode. Call it once the check_* function found no errors."""
        resolution = resolve_kommune(self.kommune, self.postcode)
        if isinstance(resolution, KommuneUnresolved):
            raise ValueError(f"kommune not settled ({resolution.code}); run the check before using it")
        return resolution.kommune.code


class ReportIn(_Located):
    """A citizen's report (anmeldelse): POST /v1/reports."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "category": "burglary_home",
                    "description": "Kom hjem og fandt terrassedøren brudt op. Smykker og en computer mangler.",
                    "occurred_at": "2026-03-01T07:40:00+01:00",
                    "in_progress": False,
                    "postcode": "4040",
                    "address": "Strandvejen 12",
                    "contact": {"name": "Mette Hansen", "phone": "+4520304050"},
                }
            ]
        }
    )

    category: CategoryId
    description: Description
    occurred_at: AwareDatetime | None = Field(None, description="When it happened, with time zone")
    in_progress: bool | None = Field(None, description="burglary_home: is the burglar still there?")
    acute: bool | None = Field(None, description="violence, rape: is it acute?")
    institution: Line200 | None = Field(None, description="drug_dealing_school: the school or institution")
    contact: Contact | None = None


class TipIn(_Located):
    """A tip (tip til politiet): POST /v1/tips. An anonymous tip carries no contact details at all."""

    category: CategoryId
    description: Description
    occurred_at: AwareDatetime | None = Field(None, description="When it happened or was seen, with time zone")
    anonymous: bool = Field(False, description="True: no contact details may be sent")
    contact: Contact | None = None


class OfficerRequestIn(_Located):
    """Bestil en betjent (order an officer): a traffic control or a talk. POST /v1/officer-requests."""

    request_type: RequestType
    description: Description = Field(description="The topic of the talk, or where and why to control traffic")
    contact: Contact | None = None

    @property
    def category(self) -> str:
        """The report category councils count this request under (REQUEST_CATEGORY)."""
        return REQUEST_CATEGORY[self.request_type]


class ActionIn(_Body):
    """A police action on a case: POST /v1/cases/{case_id}/actions. No free-text note, by design."""

    action: Action
    occurred_at: AwareDatetime = Field(description="When it happened, e.g. when the patrol arrived")
    requested_time: AwareDatetime | None = Field(
        None, description="citizen_requested_later only: when the citizen wants the police to come"
    )
    outcome: Outcome | None = Field(None, description="closed only: a short code, e.g. resolved, no_offence")
    officer_id: OfficerId | None = Field(None, description="Police staff id of who recorded it")


Submission = ReportIn | TipIn | OfficerRequestIn | ActionIn
SubmissionT = TypeVar("SubmissionT", ReportIn, TipIn, OfficerRequestIn, ActionIn)


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
    errors += _future_errors("occurred_at", report.occurred_at, now)
    errors += _contact_errors(report.contact)
    return errors


def check_tip(tip: TipIn, now: datetime) -> list[FieldError]:
    """Everything a valid tip must also satisfy; [] when it may be accepted."""
    errors = _kommune_errors(tip) + _future_errors("occurred_at", tip.occurred_at, now)
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
    errors = _future_errors("occurred_at", action.occurred_at, now)
    if action.action == "citizen_requested_later":
        if action.requested_time is None:
            errors.append(
                FieldError("requested_time", "Give the time the citizen wants the police to come.", "required")
            )
        elif action.requested_time <= action.occurred_at:
            errors.append(
                FieldError(
                    "requested_time",
                    "The requested time must be later than when the citizen asked (occurred_at).",
                    "requested_time_not_later",
                )
            )
        elif action.requested_time > now + REQUESTED_TIME_HORIZON:
            errors.append(
                FieldError(
                    "requested_time",
                    f"The requested time is more than {REQUESTED_TIME_HORIZON.days} days ahead; check the date.",
                    "requested_time_too_far",
                )
            )
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
    try:
        if isinstance(payload, bytes | str):
            submission = model.model_validate_json(payload)
        else:
            submission = model.model_validate(payload)
    except ValidationError as exc:
        raise InvalidSubmission(field_errors_from_validation_error(exc)) from None
    errors = check_submission(submission, now)
    if errors:
        raise InvalidSubmission(_one_per_field(errors))
    return submission


def _not_for_category(field: str, category_ids: list[str]) -> FieldError:
    labels = " and ".join(categories()[c].en.lower() for c in category_ids)
    return FieldError(field, f"This only applies to reports of {labels}; leave it out.", "not_for_category")


def _kommune_errors(submission: _Located) -> list[FieldError]:
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


def _future_errors(field: str, value: datetime | None, now: datetime) -> list[FieldError]:
    _aware(now)
    if value is None:
        return []
    try:
        value.astimezone(UTC)
    except OverflowError:
        # 0001-01-01T00:00+01:00 parses, but is no instant in UTC: nothing could store or publish it.
        return [FieldError(field, "This date cannot be right. Give the time it happened.", "out_of_range")]
    if value > now + CLOCK_SKEW:
        return [FieldError(field, "This time is in the future. Give the time it happened.", "in_the_future")]
    return []


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
