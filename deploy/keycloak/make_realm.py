"""Writes deploy/keycloak/realm-mvsj.json, the district's development realm: `python deploy/keycloak/make_realm.py`.

The realm is generated, not written by hand, so that its users follow the roster and the kommuner:
every officer of services/notify/data/roster.yaml becomes a user whose username (and `roster_id`
claim) is the roster id, and every kommune of shared/data/kommuner.yaml gets a group and a council
secretary. Run it again after changing either file and commit the JSON; `--check` fails when the
committed JSON is not what the script writes (tests/unit/deploy/test_keycloak_realm.py runs it).

Everything in the realm is for development and tests only: the passwords (`dev-<username>`) and the
web client's secret are public. A real deployment imports its own realm (or federates the police's
directory) and sets OIDC_ISSUER_URL to it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
ROSTER = ROOT / "services" / "notify" / "data" / "roster.yaml"
KOMMUNER = ROOT / "shared" / "data" / "kommuner.yaml"
OUT = ROOT / "deploy" / "keycloak" / "realm-mvsj.json"

REALM = "mvsj"
API_AUDIENCE = "mvsj-api"
WEB_CLIENT = "mvsj-web"
WEB_CLIENT_SECRET = "dev-mvsj-web-secret"  # noqa: S105 (development only, public on purpose)
OFFICER_CLIENT = "mvsj-officer"
# notify (console) and reporting (council pages), as `make run` and `make demo` serve them.
WEB_PORTS = (8003, 8004)

# Role id (the `roles` claim) -> group name and description (Danish, as the admin console shows them).
ROLES: dict[str, tuple[str, str]] = {
    "vagtchef": ("Vagtchefer", "Vagtchefer i vagtcentralen: alle alarmer, kvitterer for dem"),
    "lokalbetjent": ("Lokalbetjente", "Lokalbetjente: alarmer og opfølgninger i egen kommune"),
    "raadssekretaer": ("Rådssekretærer", "Sekretærer for lokalrådene og kredsrådet: rådsrapporter, ingen sagsdata"),
    "ops": ("Drift", "Drift: målinger, spor og logs, aldrig persondata; genafsender døde breve"),
    "databeskyttelse": ("Databeskyttelse", "Databeskyttelse: sagens adgangslog; sletter persondata på anmodning"),
}
KREDS = "kreds"  # the `kommune` claim of the kredsråd's secretary: the whole district, as `scope=kreds`


def password(username: str) -> str:
    return f"dev-{username}"


def user(
    username: str,
    first: str,
    last: str,
    email: str,
    groups: list[str],
    roster_id: str | None = None,
) -> dict[str, Any]:
    attributes = {"roster_id": [roster_id]} if roster_id else {}
    return {
        "username": username,
        "enabled": True,
        "firstName": first,
        "lastName": last,
        "email": email,
        "emailVerified": True,
        "attributes": attributes,
        "credentials": [{"type": "password", "value": password(username), "temporary": False}],
        "requiredActions": [],
        "groups": groups,
    }


def split_name(name: str, title: str) -> tuple[str, str]:
    """'Vagtchef Anne Holm' -> ('Anne', 'Holm'); 'Lokalbetjent Greve 1' -> ('Lokalbetjent', 'Greve 1')."""
    rest = name.removeprefix(title + " ").strip()
    if title == "Lokalbetjent":
        return title, rest
    first, _, last = rest.partition(" ")
    return first, last or title


def mapper(name: str, mapper_type: str, config: dict[str, str]) -> dict[str, Any]:
    return {"name": name, "protocol": "openid-connect", "protocolMapper": mapper_type, "config": config}


def claim_mappers() -> list[dict[str, Any]]:
    """The claims both clients' ID, access and userinfo tokens carry (their meaning: README "Identity provider")."""
    everywhere = {
        "id.token.claim": "true",
        "access.token.claim": "true",
        "userinfo.token.claim": "true",
        "introspection.token.claim": "true",
    }
    return [
        # A group's attribute counts for its members (Keycloak resolves user attributes through the
        # user's groups and their parents); aggregate: a person in two groups gets both values.
        mapper(
            "roller",
            "oidc-usermodel-attribute-mapper",
            {
                "user.attribute": "role",
                "claim.name": "roles",
                "jsonType.label": "String",
                "multivalued": "true",
                "aggregate.attrs": "true",
                **everywhere,
            },
        ),
        mapper(
            "kommune",
            "oidc-usermodel-attribute-mapper",
            {
                "user.attribute": "kommune",
                "claim.name": "kommune",
                "jsonType.label": "String",
                "multivalued": "true",
                "aggregate.attrs": "true",
                **everywhere,
            },
        ),
        mapper(
            "vagtplan-id",
            "oidc-usermodel-attribute-mapper",
            {"user.attribute": "roster_id", "claim.name": "roster_id", "jsonType.label": "String", **everywhere},
        ),
        mapper("grupper", "oidc-group-membership-mapper", {"claim.name": "groups", "full.path": "false", **everywhere}),
        mapper(
            "api-audience",
            "oidc-audience-mapper",
            {
                "included.custom.audience": API_AUDIENCE,
                "access.token.claim": "true",
                "id.token.claim": "false",
                "introspection.token.claim": "true",
            },
        ),
    ]


def web_redirect_uris() -> list[str]:
    # notify's and reporting's own ports, and (development only) any port on the loopback address:
    # Keycloak matches a loopback redirect URI registered without a port against any port (RFC 8252
    # 7.3), so tests can run the services on ports of their own. `http://127.0.0.1:*/*` is no pattern
    # Keycloak knows; a wildcard is only allowed at the end of the path.
    fixed = [f"http://{host}:{port}/*" for port in WEB_PORTS for host in ("127.0.0.1", "localhost")]
    return [*fixed, "http://127.0.0.1/*"]


def clients() -> list[dict[str, Any]]:
    common = {
        "protocol": "openid-connect",
        "enabled": True,
        "standardFlowEnabled": True,
        "implicitFlowEnabled": False,
        "directAccessGrantsEnabled": False,
        "serviceAccountsEnabled": False,
        "frontchannelLogout": True,
        "fullScopeAllowed": False,
        "protocolMappers": claim_mappers(),
    }
    web = {
        "clientId": WEB_CLIENT,
        "name": "Vagtchefkonsol og rådssider",
        "description": "notify's konsol (8003) og reportings rådssider (8004); fortrolig klient, kode + PKCE",
        "publicClient": False,
        "clientAuthenticatorType": "client-secret",
        "secret": WEB_CLIENT_SECRET,
        "rootUrl": "",
        "redirectUris": web_redirect_uris(),
        "webOrigins": ["+"],
        "attributes": {"pkce.code.challenge.method": "S256", "post.logout.redirect.uris": "+"},
        **common,
    }
    officer = {
        "clientId": OFFICER_CLIENT,
        "name": "Betjentens eget program",
        "description": "Program på betjentens egen maskine (offentlig klient, RFC 8252: loopback, kode + PKCE)",
        "publicClient": True,
        # RFC 8252: a native app listens on a loopback port of its own choosing.
        "redirectUris": ["http://127.0.0.1/*"],
        "webOrigins": [],
        "attributes": {"pkce.code.challenge.method": "S256", "post.logout.redirect.uris": "+"},
        **common,
    }
    return [web, officer]


def groups(kommuner: list[dict[str, str]]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = [
        {"name": name, "description": description, "attributes": {"role": [role]}, "subGroups": []}
        for role, (name, description) in ROLES.items()
    ]
    result.append(
        {
            "name": "Kommuner",
            "description": "Én gruppe pr. kommune; attributten kommune er kommunekoden",
            "attributes": {},
            "subGroups": [
                {"name": k["name"], "description": f"Kommune {k['code']}", "attributes": {"kommune": [k["code"]]}}
                for k in kommuner
            ],
        }
    )
    result.append(
        {
            "name": "Kredsrådet",
            "description": "Kredsrådet: politidirektøren og de 10 borgmestre; hele kredsen",
            "attributes": {"kommune": [KREDS]},
            "subGroups": [],
        }
    )
    return result


def users(roster: dict[str, Any], kommuner: list[dict[str, str]]) -> list[dict[str, Any]]:
    names = {k["code"]: k["name"] for k in kommuner}
    result = []
    for officer in roster["vagtchefer"]:
        first, last = split_name(officer["name"], "Vagtchef")
        email = next((c["to"] for c in officer["channels"] if c["type"] == "email"), f"{officer['id']}@politi.example")
        result.append(user(officer["id"], first, last, email, ["/Vagtchefer"], roster_id=officer["id"]))
    for code, entry in sorted(roster["kommuner"].items()):
        for officer in entry["lokalbetjente"]:
            first, last = split_name(officer["name"], "Lokalbetjent")
            email = next(
                (c["to"] for c in officer["channels"] if c["type"] == "email"), f"{officer['id']}@politi.example"
            )
            groups_ = ["/Lokalbetjente", f"/Kommuner/{names[code]}"]
            result.append(user(officer["id"], first, last, email, groups_, roster_id=officer["id"]))
    for k in kommuner:
        username = f"raad-{k['code']}"
        groups_ = ["/Rådssekretærer", f"/Kommuner/{k['name']}"]
        result.append(user(username, "Rådssekretær", k["name"], f"{username}@kommune.example", groups_))
    kreds_groups = ["/Rådssekretærer", "/Kredsrådet"]
    result.append(user("kredsraad", "Rådssekretær", "Kredsrådet", "kredsraad@politi.example", kreds_groups))
    result.append(user("ops", "Drift", "Vagthavende", "ops@politi.example", ["/Drift"]))
    result.append(user("dpo", "Databeskyttelses", "rådgiver", "dpo@politi.example", ["/Databeskyttelse"]))
    return result


def user_profile() -> dict[str, Any]:
    """Keycloak's default user profile plus `roster_id` (declared: unmanaged attributes are off by default)."""
    everyone = {"view": ["admin", "user"], "edit": ["admin", "user"]}
    name_validations = {"length": {"max": 255}, "person-name-prohibited-characters": {}}
    profile = {
        "attributes": [
            {
                "name": "username",
                "displayName": "${username}",
                "validations": {
                    "length": {"min": 3, "max": 255},
                    "username-prohibited-characters": {},
                    "up-username-not-idn-homograph": {},
                },
                "permissions": everyone,
                "multivalued": False,
            },
            {
                "name": "email",
                "displayName": "${email}",
                "validations": {"email": {}, "length": {"max": 255}},
                "required": {"roles": ["user"]},
                "permissions": everyone,
                "multivalued": False,
            },
            {
                "name": "firstName",
                "displayName": "${firstName}",
                "validations": name_validations,
                "required": {"roles": ["user"]},
                "permissions": everyone,
                "multivalued": False,
            },
            {
                "name": "lastName",
                "displayName": "${lastName}",
                "validations": name_validations,
                "required": {"roles": ["user"]},
                "permissions": everyone,
                "multivalued": False,
            },
            {
                "name": "roster_id",
                "displayName": "Vagtplan-id",
                "validations": {"length": {"max": 64}},
                "annotations": {},
                "permissions": {"view": ["admin", "user"], "edit": ["admin"]},
                "multivalued": False,
            },
        ],
        "groups": [
            {
                "name": "user-metadata",
                "displayHeader": "User metadata",
                "displayDescription": "Attributes, which refer to user metadata",
            }
        ],
    }
    return {
        "org.keycloak.userprofile.UserProfileProvider": [
            {
                "providerId": "declarative-user-profile",
                "subComponents": {},
                "config": {"kc.user.profile.config": [json.dumps(profile, ensure_ascii=False)]},
            }
        ]
    }


def realm() -> dict[str, Any]:
    roster = yaml.safe_load(ROSTER.read_text(encoding="utf-8"))
    kommuner = yaml.safe_load(KOMMUNER.read_text(encoding="utf-8"))["kommuner"]
    return {
        "realm": REALM,
        "displayName": "Midt- og Vestsjællands Politi",
        "displayNameHtml": "<strong>Midt- og Vestsjællands Politi</strong> (udvikling)",
        "enabled": True,
        "sslRequired": "external",
        "registrationAllowed": False,
        "resetPasswordAllowed": False,
        "rememberMe": False,
        "loginWithEmailAllowed": False,
        "duplicateEmailsAllowed": False,
        "editUsernameAllowed": False,
        "internationalizationEnabled": True,
        "supportedLocales": ["da", "en"],
        "defaultLocale": "da",
        # Short access tokens; a session lasts a 12-hour shift at most and ends after 30 idle minutes.
        "accessTokenLifespan": 300,
        "ssoSessionIdleTimeout": 1800,
        "ssoSessionMaxLifespan": 43200,
        "bruteForceProtected": True,
        "permanentLockout": False,
        "failureFactor": 10,
        "groups": groups(kommuner),
        "users": users(roster, kommuner),
        "clients": clients(),
        "components": user_profile(),
    }


def render() -> str:
    return json.dumps(realm(), ensure_ascii=False, indent=2) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if the committed realm differs from this script's")
    args = parser.parse_args()
    text = render()
    if args.check:
        if not OUT.exists() or OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT.relative_to(ROOT)} is out of date: run python deploy/keycloak/make_realm.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
