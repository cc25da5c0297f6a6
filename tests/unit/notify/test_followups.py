"""The follow-up list's pure parts: the rows (nearest due first, Danish local time, overdue marked), the
idempotency key of an "udført", what "Vis telefon" shows, and intake's refusals as the adapter reads them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx

from services.notify.adapters.police_api import _refusal
from services.notify.entrypoints.followups import contact_shown, followup_key, followup_rows

NOW = datetime(2026, 3, 29, 12, 0, tzinfo=UTC)  # 14:00 in Copenhagen (summer time from 02:00 that night)


def _item(reference: str, due_in: timedelta, *, state: str = "pending", kommune: str = "0265") -> dict[str, object]:
    due = NOW + due_in
    return {"id": str(uuid.uuid4()), "case_id": str(uuid.uuid4()), "reference": reference, "kommune": kommune,
            "state": state, "started_at": (due - timedelta(days=14)).isoformat(), "due_at": due.isoformat()}  # fmt: skip


def test_rows_come_nearest_due_first_in_danish_local_time_with_the_overdue_marked() -> None:
    items = [_item("MV-LATER", timedelta(days=3)), _item("MV-GONE", timedelta(hours=-2), state="breached"),
             _item("MV-SOON", timedelta(hours=1))]  # fmt: skip
    rows = followup_rows(items, NOW)
    assert [r.reference for r in rows] == ["MV-GONE", "MV-SOON", "MV-LATER"]
    assert [r.overdue for r in rows] == [True, False, False]
    assert rows[1].due == "29.03.2026 kl. 15:00" and rows[1].kommune_name == "Roskilde"
    assert rows[1].reported == "15.03.2026 kl. 14:00"  # winter time, a fortnight before
    assert "uden reference" in [
        r.reference for r in followup_rows([_item("", timedelta(1)) | {"reference": None}], NOW)
    ]


def test_an_udfoert_has_one_key_per_case_and_person() -> None:
    case = uuid.uuid4()
    assert followup_key(case, "lb-roskilde-1") == followup_key(str(case), "lb-roskilde-1")
    assert followup_key(case, "lb-roskilde-1") != followup_key(case, "lb-roskilde-2")
    assert followup_key(case, "lb-roskilde-1") != followup_key(uuid.uuid4(), "lb-roskilde-1")


def test_vis_telefon_shows_name_and_phone_and_says_the_look_up_is_logged() -> None:
    logged = {"id": 7, "at": "2026-03-29T12:00:00+00:00", "purpose": "followup"}
    details = {"anonymous": False, "contact": {"name": "Test Borger", "phone": "+4522334455", "email": "t@b.dk"},
               "contact_erased_at": None, "description": "Terrassedøren brudt op", "logged": logged}  # fmt: skip
    shown = contact_shown(details)
    assert (shown["name"], shown["phone"], shown["status"]) == ("Test Borger", "+4522334455", "vist")
    assert shown["logged"] == "Opslaget er logget i dit navn 29.03.2026 kl. 14:00, formål: opfølgning."
    assert "t@b.dk" not in str(shown) and "Terrasse" not in str(shown)  # the phone call needs no more
    erased = contact_shown(details | {"contact": None, "contact_erased_at": "2026-04-20T08:00:00+00:00"})
    assert erased["status"] == "slettet" and erased["text"] == "Kontaktoplysningerne er slettet 20.04.2026."
    assert contact_shown(details | {"contact": None, "anonymous": True})["status"] == "anonym"


def test_intakes_refusals_keep_their_code_for_the_caller() -> None:
    def answer(status: int, body: dict[str, object]) -> httpx.Response:
        return httpx.Response(status, json=body)

    again = _refusal(answer(409, {"status": 409, "code": "already_recorded", "detail": "followup_done was already"}))
    assert (again.status, again.code) == (409, "already_recorded")
    reused = _refusal(answer(422, {"status": 422, "errors": [{"field": "Idempotency-Key",
                                                              "code": "idempotency_key_reused"}]}))  # fmt: skip
    assert reused.code == "idempotency_key_reused"
    assert _refusal(answer(403, {"status": 403})).message.startswith("Sagen ligger uden for din adgang")
