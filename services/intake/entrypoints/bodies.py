"""The bodies the citizen portal and police systems post to intake, with their OpenAPI descriptions and examples.

Each field is checked on its own by its type (domain/fields.py); the rules across fields are in
checks.py. A body that passed both becomes a command (`NewCase`, `NewAction` in services/intake/handlers.py).
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.intake.domain.district import in_district
from services.intake.domain.fields import (
    REQUEST_CATEGORY,
    CategoryId,
    Description,
    Email,
    Instant,
    Kommunekode,
    Line200,
    OfficerId,
    Outcome,
    PersonName,
    Phone,
    Postcode,
    custom_error,
)
from services.intake.domain.kommune import POLITIKREDS, KommuneUnresolved, resolve_kommune
from shared.events.cases import Action, RequestType

# --- Models ----------------------------------------------------------------------------------


class _Body(BaseModel):
    # Unknown fields are refused, not dropped: a misspelt field would otherwise vanish silently,
    # and nothing the portal sends by mistake (a free-text note, a stray identifier) is stored.
    # Requests are parsed in strict mode (checks.validate_submission): see STRICT there.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Position(_Body):
    """Where it happened, as WGS84 degrees; it must lie in the district."""

    lat: float = Field(ge=-90, le=90, allow_inf_nan=False, description="Latitude", examples=[55.6415])
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False, description="Longitude", examples=[12.0803])

    @model_validator(mode="after")
    def _in_district(self) -> Position:
        if not in_district(self.lat, self.lon):
            raise custom_error(
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


# The rules across fields (entrypoints/checks.py), said where a client reads the schema.
WHERE_RULE = (
    " Required: kommune, or a postcode that settles it (a postcode shared by several kommuner is a 422"
    " that asks for the kommune)."
)
TIME_RULE = " From 2000-01-01 up to now (2 minutes of clock skew allowed); ISO 8601 text with a time zone."
CONTACT_RULE = "Required, with a phone number or an e-mail address (or both)."
FREE_TEXT_RULE = (
    " Free text is text: kept as typed (markup included, never interpreted; HTML outputs escape it);"
    " control, bidirectional and invisible characters are refused, tabs and line breaks kept (CR LF as LF)."
)


class Located(_Body):
    """Where it happened: a kommunekode, or a postcode that settles it, plus an optional place."""

    kommune: Kommunekode = Field(
        None,
        description="Kommunekode where it happened ('0265' or '265'), as text." + WHERE_RULE,
        examples=["0265"],
    )
    postcode: Postcode = Field(
        None, description="Postcode (postnummer) where it happened, four digits as text", examples=["4040"]
    )
    address: Line200 | None = Field(
        None, description="Street and number where it happened. burglary_home: address or position required."
    )
    position: Position | None = None

    def kommunekode(self) -> str:
        """The case's four-digit kommunekode. Call it once the check_* function found no errors."""
        resolution = resolve_kommune(self.kommune, self.postcode)
        if isinstance(resolution, KommuneUnresolved):
            raise ValueError(f"kommune not settled ({resolution.code}); run the check before using it")
        return resolution.kommune.code


class ReportIn(Located):
    """A citizen's report (anmeldelse): POST /v1/reports.

    Rules across fields: kommune or a postcode that settles it; contact with a phone number or an
    e-mail address; burglary_home needs in_progress and an address or position; violence and rape
    need acute; drug_dealing_school needs institution; each of these flags is refused on other
    categories; occurred_at from 2000-01-01 up to now.
    """

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
    description: Description = Field(description="What happened." + FREE_TEXT_RULE)
    occurred_at: Instant | None = Field(None, description="When it happened." + TIME_RULE)
    in_progress: bool | None = Field(
        None, description="Is the burglar still there? Required for burglary_home; refused for other categories."
    )
    acute: bool | None = Field(
        None, description="Is it acute? Required for violence and rape; refused for other categories."
    )
    institution: Line200 | None = Field(
        None,
        description="The school or institution. Required for drug_dealing_school; refused for other categories."
        " Kept in intake only: never published.",
    )
    contact: Contact | None = Field(None, description=CONTACT_RULE)


class TipIn(Located):
    """A tip (tip til politiet): POST /v1/tips. An anonymous tip carries no contact details at all.

    Rules across fields: kommune or a postcode that settles it; anonymous true: no contact;
    anonymous false (the default): contact with a phone number or an e-mail address.
    """

    category: CategoryId
    description: Description = Field(description="What was seen." + FREE_TEXT_RULE)
    occurred_at: Instant | None = Field(None, description="When it happened or was seen." + TIME_RULE)
    anonymous: bool = Field(False, description="True: contact must be left out. False: contact is required.")
    contact: Contact | None = Field(
        None, description="Refused on an anonymous tip; otherwise required, with a phone number or an e-mail address."
    )


class OfficerRequestIn(Located):
    """Bestil en betjent (order an officer): a traffic control or a talk. POST /v1/officer-requests."""

    request_type: RequestType
    description: Description = Field(
        description="The topic of the talk, or where and why to control traffic." + FREE_TEXT_RULE
    )
    contact: Contact | None = Field(None, description=CONTACT_RULE)

    @property
    def category(self) -> str:
        """The report category councils count this request under (REQUEST_CATEGORY)."""
        return REQUEST_CATEGORY[self.request_type]


class ActionIn(_Body):
    """A police action on a case: POST /v1/cases/{case_id}/actions. No free-text note, by design.

    Rules across fields: requested_time is required for citizen_requested_later and refused for
    other actions; outcome is required for closed and refused for other actions. Whether the
    action fits the case (its kind, category, what came before) is a 409 with a `code`.
    """

    action: Action
    occurred_at: Instant = Field(description="When it happened, e.g. when the patrol arrived." + TIME_RULE)
    requested_time: Instant | None = Field(
        None,
        description="When the citizen wants the police to come: required for citizen_requested_later, refused"
        " for other actions; later than occurred_at and at most 60 days ahead.",
    )
    outcome: Outcome | None = Field(
        None, description="How the case ended, a short code (resolved, no_offence): required for closed only."
    )
    officer_id: OfficerId | None = Field(None, description="Police staff id of who recorded it")


Submission = ReportIn | TipIn | OfficerRequestIn | ActionIn
SubmissionT = TypeVar("SubmissionT", ReportIn, TipIn, OfficerRequestIn, ActionIn)
