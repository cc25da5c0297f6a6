"""The bodies the citizen portal and police systems post to intake, with their OpenAPI descriptions and examples.

Each field is checked on its own by its type (domain/fields.py); the rules across fields are in
checks.py. A body that passed both becomes a command (services/intake/commands.py).
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


class Located(_Body):
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


class ReportIn(Located):
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
    occurred_at: Instant | None = Field(None, description="When it happened, with time zone")
    in_progress: bool | None = Field(None, description="burglary_home: is the burglar still there?")
    acute: bool | None = Field(None, description="violence, rape: is it acute?")
    institution: Line200 | None = Field(None, description="drug_dealing_school: the school or institution")
    contact: Contact | None = None


class TipIn(Located):
    """A tip (tip til politiet): POST /v1/tips. An anonymous tip carries no contact details at all."""

    category: CategoryId
    description: Description
    occurred_at: Instant | None = Field(None, description="When it happened or was seen, with time zone")
    anonymous: bool = Field(False, description="True: no contact details may be sent")
    contact: Contact | None = None


class OfficerRequestIn(Located):
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
    occurred_at: Instant = Field(description="When it happened, e.g. when the patrol arrived")
    requested_time: Instant | None = Field(
        None, description="citizen_requested_later only: when the citizen wants the police to come"
    )
    outcome: Outcome | None = Field(None, description="closed only: a short code, e.g. resolved, no_offence")
    officer_id: OfficerId | None = Field(None, description="Police staff id of who recorded it")


Submission = ReportIn | TipIn | OfficerRequestIn | ActionIn
SubmissionT = TypeVar("SubmissionT", ReportIn, TipIn, OfficerRequestIn, ActionIn)
