"""A report's personal content: who may read it and why, which fields a reader got, how long each part is kept.

Pure rules, no I/O; docs/privacy.md tells the whole story. Times are arguments.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, get_args

Purpose = Literal["acute_response", "followup", "investigation", "citizen_request"]
PURPOSES: tuple[Purpose, ...] = get_args(Purpose)
PURPOSE_MEANINGS: dict[Purpose, str] = {
    "acute_response": "sending a patrol to an acute report (the vagtchef)",
    "followup": "the follow-up with the citizen: tryghedsopfølgning, Bestil en betjent (the lokalbetjent)",
    "investigation": "investigating the reported offence",
    "citizen_request": "answering the citizen who made the report",
}
# How the reader reached intake: the console (notify's page, which says so in a header) or any other program.
Via = Literal["console", "api"]

# The personal fields of a case (case_details), as readers and the access log name them.
REPORT_FIELDS = ("description", "address", "postcode", "position", "institution")
CONTACT_FIELDS = ("contact.name", "contact.phone", "contact.email")
# Erased with the contact but never shown to a reader: where the report came from on the internet.
CLIENT_ADDRESS = "client_address"


@dataclass(frozen=True, slots=True)
class Reader:
    """Who reads: a person (their own token, or a police system's key acting for an officer of the roster).

    `kommuner` is the reach: None for every kommune (a vagtchef), else the kommuner whose cases
    the person may read (a lokalbetjent: his own).
    """

    id: str
    name: str
    kommuner: frozenset[str] | None
    via: Via = "api"
    via_key: str | None = None

    def reaches(self, kommune: str) -> bool:
        return self.kommuner is None or kommune in self.kommuner


@dataclass(frozen=True, slots=True)
class Contact:
    name: str | None = None
    phone: str | None = None
    email: str | None = None


@dataclass(frozen=True, slots=True)
class StoredDetails:
    """A case with its personal content as stored now (blank where erased), and when it was erased."""

    case_id: uuid.UUID
    reference: str
    kind: str
    category: str
    kommune: str
    received_at: datetime
    anonymous: bool
    description: str | None
    address: str | None
    postcode: str | None
    lat: float | None
    lon: float | None
    institution: str | None
    contact: Contact
    contact_erased_at: datetime | None
    details_erased_at: datetime | None
    client_address_stored: bool = False  # never shown to a reader; named when erased

    def fields_present(self) -> tuple[str, ...]:
        """The personal fields that hold something now: what a reader gets, what the log names."""
        values = {
            "description": self.description,
            "address": self.address,
            "postcode": self.postcode,
            "position": self.lat if self.lon is not None else None,
            "institution": self.institution,
            "contact.name": self.contact.name,
            "contact.phone": self.contact.phone,
            "contact.email": self.contact.email,
        }
        return tuple(f for f in (*REPORT_FIELDS, *CONTACT_FIELDS) if values[f] is not None)


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How long each kind of personal data is kept (docs/privacy.md gives the defaults and their grounds).

    - `contact`: the citizen's name, phone, e-mail and the client address, counted from when the
      case's last deadline concluded (met or cancelled), or from its reception when no deadline ran;
    - `report`: the text, address, postcode, position and institution, and whatever personal is
      left, counted from the case's reception, however its deadlines stand: nothing personal stays
      longer than this;
    - `access_log`: the log of reads and erasures, counted from each entry.
    """

    contact: timedelta
    report: timedelta
    access_log: timedelta

    def contact_due_if_settled_before(self, now: datetime) -> datetime:
        """Contact details are due for erasure once their case's deadlines settled before this."""
        return now - self.contact

    def report_due_if_received_before(self, now: datetime) -> datetime:
        return now - self.report

    def log_kept_after(self, now: datetime) -> datetime:
        """Access-log entries from before this are past their retention."""
        return now - self.access_log
