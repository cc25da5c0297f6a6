"""Roster documents for notify tests: every kommune staffed, a vagtchef rota, channels pointing where a test says."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path
from typing import Any

import yaml

from shared.reference import kommuner


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def roster_document(
    *,
    officer_channels: dict[str, list[dict[str, Any]]] | None = None,
    default_channels: list[dict[str, Any]] | None = None,
    rota: list[dict[str, Any]] | None = None,
    overrides: list[dict[str, Any]] | None = None,
    roskilde_officers: tuple[str, ...] = ("lb-roskilde-1", "lb-roskilde-2"),
) -> dict[str, Any]:
    """A roster where Roskilde (0265) has `roskilde_officers`, other kommuner one officer each, and two
    vagtchefer share the week (vc-a 07-19, vc-b 19-07) unless `rota` says otherwise.

    `officer_channels` gives channels per recipient id; the rest get `default_channels` (console).
    """
    chosen = officer_channels or {}
    default = default_channels or [{"type": "console"}]

    def person(pid: str, name: str) -> dict[str, Any]:
        return {"id": pid, "name": name, "channels": chosen.get(pid, default)}

    document: dict[str, Any] = {
        "version": 1,
        "timezone": "Europe/Copenhagen",
        "vagtcentral": person("vagtcentral", "Vagtcentralen"),
        "vagtchefer": [person("vc-a", "Vagtchef A"), person("vc-b", "Vagtchef B")],
        "rota": rota
        if rota is not None
        else [
            {"officer": "vc-a", "rrule": "FREQ=DAILY", "from": "2026-01-01", "start": "07:00", "end": "19:00"},
            {"officer": "vc-b", "rrule": "FREQ=DAILY", "from": "2026-01-01", "start": "19:00", "end": "07:00"},
        ],
        "overrides": overrides or [],
        "kommuner": {},
    }
    for code in kommuner():
        officers = roskilde_officers if code == "0265" else (f"lb-{code}",)
        document["kommuner"][code] = {"lokalbetjente": [person(o, f"Lokalbetjent {o}") for o in officers]}
    return document


def write_roster(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return path
