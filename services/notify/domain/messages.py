"""What an alert says, in Danish: e-mail subject and text, webhook JSON; reference, category, kommune, due time only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from services.notify.domain.alert import ack_scope
from shared.events.envelope import utc_rfc3339
from shared.reference import ACTIONS_DA, categories, kommuner

COPENHAGEN = ZoneInfo("Europe/Copenhagen")

_REASON_DA = {
    "deadline_warning": "Frist nærmer sig",
    "deadline_breached": "Frist overskredet",
    "acute_report": "Akut anmeldelse",
}
_STATE_DA = {"open": "åben", "acknowledged": "kvitteret", "escalated": "eskaleret", "resolved": "afsluttet"}


def reason_da(reason: str) -> str:
    """Why the alert was raised, in Danish ("Frist overskredet"); the reason itself when it has no label."""
    return _REASON_DA.get(reason, reason)


def state_da(state: str, *, capital: bool = False) -> str:
    """The alert's state in Danish, in a sentence ("kvitteret") or as a label (`capital`: "Kvitteret")."""
    label = _STATE_DA.get(state)
    if label is None:
        return state
    return label[:1].upper() + label[1:] if capital else label


RESOLVED_DA = {
    "met": "frist overholdt",
    "cancelled": "sagen er lukket",
    "breach_withdrawn": "overskridelsen er trukket tilbage",
}


@dataclass(frozen=True, slots=True)
class AlertView:
    """The facts a message may carry (no citizen data); the repository builds it (`alert_views`)."""

    alert_id: str
    case_id: str
    reference: str | None
    category: str
    category_da: str
    kommune: str
    kommune_name: str
    title: str
    reason: str
    severity: str
    state: str
    due_at: datetime
    acknowledged_by: str | None = None
    acknowledged_by_name: str | None = None
    resolved_reason: str | None = None
    generation: int = 0  # the deadline window the alert's reason is about
    resolved_action: str | None = None  # a breach withdrawn: the action that met the deadline in time
    resolved_action_at: datetime | None = None

    @property
    def withdrawn(self) -> bool:
        """Resolved because the breach it told of was none (the action came in time, its record late)."""
        return self.resolved_reason == "breach_withdrawn"

    @property
    def ack_scope(self) -> str:
        """What an ack link sent with this message acknowledges (see alert.ack_scope)."""
        return ack_scope(self.reason, self.generation)


def category_da(code: str) -> str:
    """The category's Danish label; the code itself when the reference data no longer has it."""
    category = categories().get(code)
    return category.da if category else code


def kommune_name(code: str) -> str:
    """The kommune's name; the code itself when the reference data no longer has it."""
    kommune = kommuner().get(code)
    return kommune.name if kommune else code


def withdrawal_da(view: AlertView) -> str | None:
    """Why a breach alert was taken back, in Danish; None unless it was."""
    if not view.withdrawn:
        return None
    action = ACTIONS_DA.get(view.resolved_action or "", view.resolved_action or "handlingen")
    at = f" kl. {local_clock(view.resolved_action_at)}" if view.resolved_action_at else ""
    return (
        f"Fristoverskridelsen er trukket tilbage, fordi handlingen ({action}) er registreret{at}, før fristen"
        f" ({local_time(view.due_at)}). Fristen blev overholdt; oplysningen om handlingen nåede først frem"
        " efter fristen."
    )


def stage_da(stage: str) -> str:
    if stage.startswith("acknowledged"):
        return "Kvitteret"
    if stage == "resolved":
        return "Afsluttet"
    if "-escalated-" in stage:
        return f"Eskaleret (trin {stage.rsplit('-', 1)[1]})"
    if "-reminder-" in stage:
        return f"Påmindelse {stage.rsplit('-', 1)[1]}"
    return "Ny alarm" if stage == "raised" else "Opdateret"


def local_time(at: datetime) -> str:
    return at.astimezone(COPENHAGEN).strftime("%d.%m.%Y kl. %H:%M")


def local_clock(at: datetime) -> str:
    """HH:MM in Danish local time, with the date when it is not the due day's (`local_time` gives both)."""
    return at.astimezone(COPENHAGEN).strftime("%H:%M (%d.%m.%Y)")


def subject(view: AlertView, stage: str) -> str:
    reason = reason_da(view.reason)
    told = "Trukket tilbage" if stage == "resolved" and view.withdrawn else stage_da(stage)
    return f"[{told}] {reason}: {view.reference or 'sag'} ({view.kommune_name})"


def email_text(view: AlertView, stage: str, ack_url: str | None) -> str:
    lines = [
        f"{stage_da(stage)}: {reason_da(view.reason)}",
        "",
        f"Sag: {view.reference or '(reference ukendt endnu; sags-id ' + view.case_id + ')'}",
        f"Kategori: {view.category_da}",
        f"Kommune: {view.kommune_name} ({view.kommune})",
        f"Frist: {view.title}",
        f"Forfalder: {local_time(view.due_at)}",
        f"Alvor: {view.severity}",
        f"Status: {state_da(view.state)}",
    ]
    if view.acknowledged_by:
        lines.append(f"Kvitteret af: {acknowledger(view)}")
    if view.resolved_reason:
        lines.append(f"Afsluttet: {RESOLVED_DA.get(view.resolved_reason, view.resolved_reason)}")
    withdrawal = withdrawal_da(view)
    if withdrawal:
        lines += ["", withdrawal]
    if view.state in ("open", "escalated"):
        if ack_url:
            lines += ["", "Kvittér for alarmen (tager ansvar for sagen):", ack_url]
        else:
            lines += ["", "Kvittér for alarmen i konsollen, logget ind som dig selv (tager ansvar for sagen)."]
    lines += ["", "Åbn sagen i politiets systemer ud fra referencen. Denne besked indeholder ingen borgeroplysninger."]
    return "\n".join(lines) + "\n"


def acknowledger(view: AlertView) -> str:
    """'Anne Holm (vc-anne)': the name people know and the id the roster and the records use."""
    if view.acknowledged_by_name and view.acknowledged_by_name != view.acknowledged_by:
        return f"{view.acknowledged_by_name} ({view.acknowledged_by})"
    return view.acknowledged_by or ""


def webhook_payload(view: AlertView, stage: str, delivery_id: str, ack_url: str | None) -> dict[str, Any]:
    return {
        "type": "alert." + stage_kind(stage),
        "delivery_id": delivery_id,
        "stage": stage,
        "alert": {
            "id": view.alert_id,
            "case_id": view.case_id,
            "reference": view.reference,
            "category": view.category,
            "kommune": view.kommune,
            "title": view.title,
            "reason": view.reason,
            "severity": view.severity,
            "state": view.state,
            "due_at": utc_rfc3339(view.due_at),
            "acknowledged_by": view.acknowledged_by,
            "acknowledged_by_name": view.acknowledged_by_name,
        },
        "text": " ".join(t for t in (subject(view, stage), withdrawal_da(view)) if t),
        "ack_url": ack_url if view.state in ("open", "escalated") else None,
        "resolved_reason": view.resolved_reason,
    }


def stage_kind(stage: str) -> str:
    if stage.startswith("acknowledged"):
        return "acknowledged"
    if stage == "resolved":
        return "resolved"
    if "-escalated-" in stage:
        return "escalated"
    if "-reminder-" in stage:
        return "reminder"
    return "raised" if stage == "raised" else "updated"
