"""The committed development realm (deploy/keycloak/realm-mvsj.json): generated, complete, and strict about flows."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from shared.reference import kommuner

ROOT = Path(__file__).resolve().parents[3]
REALM_FILE = ROOT / "deploy" / "keycloak" / "realm-mvsj.json"
ROSTER = ROOT / "services" / "notify" / "data" / "roster.yaml"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_realm", ROOT / "deploy" / "keycloak" / "make_realm.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def realm() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(REALM_FILE.read_text(encoding="utf-8"))
    return loaded


def test_the_committed_realm_is_what_the_generator_writes() -> None:
    assert REALM_FILE.read_text(encoding="utf-8") == _generator().render(), (
        "deploy/keycloak/realm-mvsj.json is out of date: run python deploy/keycloak/make_realm.py and commit it"
    )


def _users(realm: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {u["username"]: u for u in realm["users"]}


def _group_attributes(realm: dict[str, Any]) -> dict[str, dict[str, list[str]]]:
    found: dict[str, dict[str, list[str]]] = {}

    def walk(groups: list[dict[str, Any]], parent: str) -> None:
        for group in groups:
            path = f"{parent}/{group['name']}"
            found[path] = group.get("attributes", {})
            walk(group.get("subGroups", []), path)

    walk(realm["groups"], "")
    return found


def _claims_of(realm: dict[str, Any], username: str) -> dict[str, list[str]]:
    """The attributes a user's groups give (what the `roles` and `kommune` claims carry)."""
    attributes = _group_attributes(realm)
    merged: dict[str, list[str]] = {}
    for path in _users(realm)[username]["groups"]:
        parts = path.split("/")
        for depth in range(2, len(parts) + 1):  # the group and its parents
            for name, values in attributes["/".join(parts[:depth])].items():
                merged.setdefault(name, []).extend(values)
    return merged


def test_every_officer_of_the_roster_signs_in_as_their_roster_id(realm: dict[str, Any]) -> None:
    roster = yaml.safe_load(ROSTER.read_text(encoding="utf-8"))
    users = _users(realm)
    for officer in roster["vagtchefer"]:
        assert users[officer["id"]]["attributes"]["roster_id"] == [officer["id"]]
        assert _claims_of(realm, officer["id"]) == {"role": ["vagtchef"]}
    for code, entry in roster["kommuner"].items():
        for officer in entry["lokalbetjente"]:
            assert users[officer["id"]]["attributes"]["roster_id"] == [officer["id"]]
            assert _claims_of(realm, officer["id"]) == {"role": ["lokalbetjent"], "kommune": [code]}


def test_every_kommune_has_a_group_and_a_council_secretary_and_the_kredsraad_has_one(realm: dict[str, Any]) -> None:
    for code in kommuner():
        assert _claims_of(realm, f"raad-{code}") == {"role": ["raadssekretaer"], "kommune": [code]}
    assert _claims_of(realm, "kredsraad") == {"role": ["raadssekretaer"], "kommune": ["kreds"]}
    assert _claims_of(realm, "ops") == {"role": ["ops"]}
    assert _claims_of(realm, "dpo") == {"role": ["databeskyttelse"]}


def test_users_need_nothing_more_at_sign_in(realm: dict[str, Any]) -> None:
    """Keycloak's user profile requires names and e-mail: without them the first sign-in asks for them."""
    for user in realm["users"]:
        assert user["enabled"] and user["emailVerified"] and not user["requiredActions"], user["username"]
        assert user["firstName"] and user["lastName"] and "@" in user["email"], user["username"]
        assert [c["value"] for c in user["credentials"]] == [f"dev-{user['username']}"]
    profile = realm["components"]["org.keycloak.userprofile.UserProfileProvider"][0]["config"]
    declared = {a["name"] for a in json.loads(profile["kc.user.profile.config"][0])["attributes"]}
    assert "roster_id" in declared  # undeclared attributes are dropped by Keycloak's user profile


def test_clients_use_the_code_flow_with_pkce_s256_only(realm: dict[str, Any]) -> None:
    clients = {c["clientId"]: c for c in realm["clients"]}
    assert set(clients) == {"mvsj-web", "mvsj-officer"}
    for client in clients.values():
        assert client["standardFlowEnabled"]
        assert not client["implicitFlowEnabled"] and not client["directAccessGrantsEnabled"]
        assert client["attributes"]["pkce.code.challenge.method"] == "S256"
        mapped = {m["config"].get("claim.name") for m in client["protocolMappers"]}
        assert {"roles", "kommune", "roster_id", "groups"} <= mapped
        audience = [m for m in client["protocolMappers"] if m["protocolMapper"] == "oidc-audience-mapper"]
        assert [m["config"]["included.custom.audience"] for m in audience] == ["mvsj-api"]
    assert not clients["mvsj-web"]["publicClient"] and clients["mvsj-officer"]["publicClient"]
    for client in clients.values():
        for uri in client["redirectUris"]:
            # A wildcard only at the end of the path, never in host or port; plain http only on this machine.
            assert uri.count("*") == 1 and uri.endswith("/*"), uri
            assert uri.startswith(("http://127.0.0.1:", "http://localhost:", "http://127.0.0.1/")), uri
