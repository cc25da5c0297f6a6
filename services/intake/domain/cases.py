"""The case (sag) lifecycle: whether a police action fits a case now, and the status a citizen sees.

Rules, checked in this order; the first that fails is the conflict (HTTP 409):

- `closed` ends the case: nothing is recorded after it, except `followup_done` on a burglary. The
  tryghedsopfølgning (safety follow-up) is owed to the citizen, not to the investigation, so
  closing the case does not end it (the deadlines service keeps that target running too).
- Which kind of case takes which action: reports take dispatched, on_scene,
  citizen_requested_later, school_and_ssp_contacted, followup_done, closed; tips take
  dispatched, school_and_ssp_contacted, followup_done, closed; Bestil en betjent (officer
  requests) take replied, carried_out, closed.
- Which category: citizen_requested_later only on a burglary in a private home that is over
  (not in progress); school_and_ssp_contacted only on drug dealing at a school (reports and
  tips alike); followup_done on reports only for burglaries (on tips, for any category).
- Once only: every action but citizen_requested_later, which a citizen may move again.
- Order, by when things happened (occurred_at), not by when they were keyed in: a dispatch may
  be recorded after the arrival it led to, as long as it happened first. on_scene not before
  the dispatch; citizen_requested_later not once the patrol has been there; followup_done
  after on_scene; carried_out not before a recorded reply (carrying out is also the reply);
  closed not before anything recorded.
- citizen_requested_later asks for a time later than the report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal

from shared.events.cases import ACTIONS, Action

CaseKind = Literal["report", "tip", "officer_request"]
CaseStatus = Literal[
    "received", "officer_dispatched", "officer_on_scene", "scheduled", "replied", "carried_out", "closed"
]

ACTIONS_BY_KIND: Final[Mapping[CaseKind, frozenset[str]]] = {
    "report": frozenset(
        {"dispatched", "on_scene", "citizen_requested_later", "school_and_ssp_contacted", "followup_done", "closed"}
    ),
    "tip": frozenset({"dispatched", "school_and_ssp_contacted", "followup_done", "closed"}),
    "officer_request": frozenset({"replied", "carried_out", "closed"}),
}
ONCE_ONLY: Final = frozenset(ACTIONS) - {"citizen_requested_later"}

# Actions that move the citizen-facing status; school_and_ssp_contacted and followup_done are
# police work the citizen's status does not show.
STATUS_AFTER: Final[Mapping[str, CaseStatus]] = {
    "dispatched": "officer_dispatched",
    "on_scene": "officer_on_scene",
    "citizen_requested_later": "scheduled",
    "replied": "replied",
    "carried_out": "carried_out",
    "closed": "closed",
}
STATUS_LABELS: Final[Mapping[CaseStatus, tuple[str, str]]] = {
    "received": ("Modtaget", "Received"),
    "officer_dispatched": ("Politiet er sendt af sted", "Police have been dispatched"),
    "officer_on_scene": ("Politiet er kommet frem", "Police have arrived"),
    "scheduled": ("Politiet kommer på det aftalte tidspunkt", "Police will come at the agreed time"),
    "replied": ("Politiet har svaret", "Police have replied"),
    "carried_out": ("Gennemført", "Carried out"),
    "closed": ("Afsluttet", "Closed"),
}
_KIND_PLURAL: Final[Mapping[CaseKind, str]] = {
    "report": "reports",
    "tip": "tips",
    "officer_request": "officer requests (Bestil en betjent)",
}


@dataclass(frozen=True, slots=True)
class CaseFacts:
    """What the lifecycle needs to know of a case; nothing personal."""

    kind: CaseKind
    category: str
    received_at: datetime
    in_progress: bool | None = None


@dataclass(frozen=True, slots=True)
class RecordedAction:
    """A police action on the case, recorded earlier or about to be."""

    action: Action
    occurred_at: datetime
    requested_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class Allowed:
    """The action may be recorded; `status` is the case's status with it."""

    status: CaseStatus


@dataclass(frozen=True, slots=True)
class Conflict:
    """The action does not fit the case now; `reason` is for the officer, `code` for machines."""

    code: str
    reason: str


def decide_action(case: CaseFacts, recorded: Sequence[RecordedAction], new: RecordedAction) -> Allowed | Conflict:
    """Allowed (with the new status) or the first rule the action breaks (module docstring)."""
    for rule in (_after_close, _kind, _category, _once, _order, _requested_time):
        conflict = rule(case, recorded, new)
        if conflict is not None:
            return conflict
    status, _ = case_status(case, [*recorded, new])
    return Allowed(status)


def case_status(case: CaseFacts, recorded: Sequence[RecordedAction]) -> tuple[CaseStatus, datetime]:
    """The citizen-facing status and since when: the latest status-moving action, by when it happened.

    Closed stays closed, whatever follows it (a follow-up after closing).
    """
    closed = _first(recorded, "closed")
    if closed is not None:
        return "closed", closed.occurred_at
    status: CaseStatus = "received"
    since = case.received_at
    # Stable sort: actions at the same instant keep the order they were recorded in.
    for action in sorted(recorded, key=lambda a: a.occurred_at):
        moved = STATUS_AFTER.get(action.action)
        if moved is not None:
            status, since = moved, action.occurred_at
    return status, since


@dataclass(frozen=True, slots=True)
class CaseStatusView:
    """What the citizen sees of a case (GET /v1/cases/{case_id}). No names, contact details, text or places."""

    reference: str
    kind: CaseKind
    category: str
    status: CaseStatus
    label_da: str
    label_en: str
    since: datetime


def status_view(case: CaseFacts, reference: str, recorded: Sequence[RecordedAction]) -> CaseStatusView:
    status, since = case_status(case, recorded)
    label_da, label_en = STATUS_LABELS[status]
    return CaseStatusView(
        reference=reference,
        kind=case.kind,
        category=case.category,
        status=status,
        label_da=label_da,
        label_en=label_en,
        since=since.astimezone(UTC),
    )


# --- The rules -------------------------------------------------------------------------------


def _after_close(case: CaseFacts, recorded: Sequence[RecordedAction], new: RecordedAction) -> Conflict | None:
    closed = _first(recorded, "closed")
    if closed is None:
        return None
    if new.action == "followup_done" and case.kind == "report" and case.category == "burglary_home":
        return None
    return Conflict(
        "case_closed", f"The case was closed at {_at(closed.occurred_at)}; nothing can be added after that."
    )


def _kind(case: CaseFacts, recorded: Sequence[RecordedAction], new: RecordedAction) -> Conflict | None:
    if new.action in ACTIONS_BY_KIND[case.kind]:
        return None
    takers = [_KIND_PLURAL[kind] for kind, actions in ACTIONS_BY_KIND.items() if new.action in actions]
    return Conflict(
        "not_for_kind", f"{new.action} applies to {' and '.join(takers)} only, not to {_KIND_PLURAL[case.kind]}."
    )


def _category(case: CaseFacts, recorded: Sequence[RecordedAction], new: RecordedAction) -> Conflict | None:
    if new.action == "citizen_requested_later" and not (case.category == "burglary_home" and case.in_progress is False):
        return Conflict(
            "not_for_category",
            "citizen_requested_later applies only to a burglary in a private home that is over, not in progress.",
        )
    if new.action == "school_and_ssp_contacted" and case.category != "drug_dealing_school":
        return Conflict("not_for_category", "school_and_ssp_contacted applies only to drug dealing at a school.")
    if new.action == "followup_done" and case.kind == "report" and case.category != "burglary_home":
        return Conflict(
            "not_for_category", "followup_done (tryghedsopfølgning) applies to burglaries in a private home."
        )
    return None


def _once(case: CaseFacts, recorded: Sequence[RecordedAction], new: RecordedAction) -> Conflict | None:
    earlier = _first(recorded, new.action)
    if new.action in ONCE_ONLY and earlier is not None:
        return Conflict("already_recorded", f"{new.action} was already recorded, at {_at(earlier.occurred_at)}.")
    return None


def _order(case: CaseFacts, recorded: Sequence[RecordedAction], new: RecordedAction) -> Conflict | None:
    on_scene = _first(recorded, "on_scene")
    if new.action == "dispatched" and on_scene is not None and new.occurred_at > on_scene.occurred_at:
        return Conflict(
            "out_of_order",
            f"The patrol was on scene at {_at(on_scene.occurred_at)}; the dispatch must have come before that.",
        )
    dispatched = _first(recorded, "dispatched")
    if new.action == "on_scene" and dispatched is not None and new.occurred_at < dispatched.occurred_at:
        return Conflict(
            "out_of_order",
            f"The patrol was dispatched at {_at(dispatched.occurred_at)}; it cannot have arrived before that.",
        )
    if new.action == "citizen_requested_later" and on_scene is not None:
        return Conflict(
            "out_of_order",
            f"The patrol was on scene at {_at(on_scene.occurred_at)}; a later visit can no longer be requested.",
        )
    if new.action == "followup_done" and case.kind == "report":
        if on_scene is None:
            return Conflict("out_of_order", "Record on_scene first: the follow-up comes after the patrol's visit.")
        if new.occurred_at < on_scene.occurred_at:
            return Conflict(
                "out_of_order",
                f"The patrol was on scene at {_at(on_scene.occurred_at)}; the follow-up cannot come before that.",
            )
    replied = _first(recorded, "replied")
    # Carrying the request out also answers the citizen (the deadlines rules count it as the reply),
    # so replied is not required first; but a recorded reply cannot come after the visit.
    if new.action == "carried_out" and replied is not None and new.occurred_at < replied.occurred_at:
        return Conflict(
            "out_of_order", f"The reply went out at {_at(replied.occurred_at)}; carried_out cannot come before it."
        )
    if new.action == "closed" and recorded:
        latest = max(recorded, key=lambda a: a.occurred_at)
        if new.occurred_at < latest.occurred_at:
            return Conflict(
                "out_of_order",
                f"{latest.action} happened at {_at(latest.occurred_at)}; the case cannot have closed before that.",
            )
    return None


def _requested_time(case: CaseFacts, recorded: Sequence[RecordedAction], new: RecordedAction) -> Conflict | None:
    if new.action != "citizen_requested_later":
        return None
    if new.requested_time is None:
        return Conflict("requested_time_missing", "citizen_requested_later needs the time the citizen asked for.")
    if new.requested_time <= case.received_at:
        return Conflict(
            "requested_time_not_later",
            f"The requested time must be later than the report, received at {_at(case.received_at)}.",
        )
    return None


def _first(recorded: Sequence[RecordedAction], action: str) -> RecordedAction | None:
    return next((a for a in recorded if a.action == action), None)


def _at(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
