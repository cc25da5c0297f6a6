"""The field types of intake's submissions: each field checked on its own, with a sentence a citizen can read.

Type, length, no control, bidi or invisible characters (shared/validation.py; free text is
otherwise taken as typed), phone and e-mail shape, a known category, a kommunekode of the district.
Rules that need several fields, the reference data or the clock are in entrypoints/checks.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Final

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, GetJsonSchemaHandler, StringConstraints
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError

from services.intake.domain.kommune import KommuneUnresolved, resolve_kommune
from shared.reference import categories
from shared.validation import FreeText, SingleLine, text_problem

DESCRIPTION_MAX_CHARS: Final = 4000

# Bestil en betjent has no category of its own; councils count it under these.
REQUEST_CATEGORY: Final[Mapping[str, str]] = {"traffic_control": "traffic", "talk": "other"}


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


def custom_error(code: str, message: str) -> PydanticCustomError:
    # The message travels as context, so a brace in it is never read as a template placeholder.
    return PydanticCustomError(code, "{message}", {"message": message})


# --- Field types -----------------------------------------------------------------------------

# The rule for free text (docs/contract.md, "Free text is text"): what a citizen types is accepted
# as typed, stored as typed and never interpreted. "<b>", "<svg/onload=...>" and "3 < 5" are all
# just characters; every HTML output escapes them (a template with autoescape, or html.escape),
# and every JSON output carries them as JSON strings. A list of forbidden tags cannot be complete
# (the last one let <svg>, <img onerror> and <iframe> through) and would refuse honest text, so
# there is none. Refused are only characters no text needs (shared/validation.py: control, bidi and
# invisible characters; a NUL cannot even be stored, Postgres text refuses it); free text keeps
# tabs and line breaks, names and lines do not.
Description = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=DESCRIPTION_MAX_CHARS),
    FreeText,
]
Line200 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), SingleLine]
PersonName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), SingleLine]

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
    raise custom_error(
        "phone_invalid", "Enter a Danish phone number of 8 digits, or an international number starting with +."
    )


Phone = Annotated[str, StringConstraints(strip_whitespace=True, max_length=32), AfterValidator(_phone)]

# Deliberately loose (no e-mail-validator dependency): one @, a dotted domain, no spaces or markup.
_EMAIL = re.compile(r"[^@\s<>\"(),;:]+@[^@\s<>\"(),;:.]+(?:\.[^@\s<>\"(),;:.]+)+")


def _email(value: str) -> str:
    # The text check first: the pattern's classes would let control, bidi and invisible characters
    # through, and a NUL cannot even be stored (Postgres text refuses it).
    if (problem := text_problem(value)) is not None:
        raise problem
    if not _EMAIL.fullmatch(value):
        raise custom_error("email_invalid", "Enter an e-mail address such as navn@example.dk.")
    local, domain = value.rsplit("@", 1)
    return f"{local}@{domain.lower()}"


Email = Annotated[str, StringConstraints(strip_whitespace=True, max_length=254), AfterValidator(_email)]


# A time is ISO 8601 text with a zone. pydantic takes "1772348100" (and in lax mode 1772348100) as
# a Unix time, so the text is parsed here, by its form; a datetime object passes as is (commands
# built in Python, not from JSON). AwareDatetime then insists on the zone.
_ISO_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}")
_NOT_A_TIME = "Must be a date and time with its time zone, such as 2026-03-01T08:15:00+01:00."


def _iso_time(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _ISO_TIME.fullmatch(value.strip()[:16]):
        raise custom_error("datetime_type", _NOT_A_TIME)
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        raise custom_error("datetime_parsing", _NOT_A_TIME) from None


Instant = Annotated[AwareDatetime, BeforeValidator(_iso_time)]


def _kommunekode(value: Any) -> Any:
    """'265' or '0265' -> '0265'; a code outside the district names the district's kommuner."""
    if isinstance(value, str) and not value.strip():
        return None  # an unselected picker: the postcode may still settle the kommune
    if not isinstance(value, str):
        return value  # left for the (strict) type check to reject: a kommunekode is text
    resolution = resolve_kommune(value, None)
    if isinstance(resolution, KommuneUnresolved):
        raise custom_error(resolution.code, resolution.message)
    return resolution.kommune.code


Kommunekode = Annotated[str | None, BeforeValidator(_kommunekode)]


def _postcode(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if not value.strip():
        return None
    if not re.fullmatch(r"[0-9]{4}", value.strip()):
        raise custom_error("postcode_invalid", "A Danish postcode has four digits, such as 4000.")
    return value.strip()


Postcode = Annotated[str | None, BeforeValidator(_postcode)]


def _category(value: str) -> str:
    if value not in categories():
        raise custom_error("unknown_category", f"Unknown category. Choose one of: {', '.join(categories())}.")
    return value


class _CategoryEnum:
    """The JSON schema of a category id: an enum of the ids in categories.yaml, read when the schema is built."""

    def __get_pydantic_json_schema__(self, _schema: CoreSchema, _handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return {"type": "string", "enum": list(categories())}


CategoryId = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_category), _CategoryEnum()]


def _token(value: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9_]*", value):
        raise custom_error(
            "outcome_invalid", "Give the outcome as a short code such as resolved or no_offence, not free text."
        )
    return value


Outcome = Annotated[
    str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=64), AfterValidator(_token)
]
OfficerId = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")]
