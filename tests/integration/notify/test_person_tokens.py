"""An officer's own program on notify's API with an access token from the identity provider, not a key.

The token is the real provider's (the officer signs in through Keycloak's login form; the public
client `mvsj-officer` with PKCE): the ack names that person, a lokalbetjent reaches his kommune's
alerts only, a council secretary none, and a token that is forged, expired in transit or for
another audience proves nothing.
"""

from __future__ import annotations

import base64
import json
from functools import cache

import httpx
from fastapi import FastAPI

from demo.identity import officer_token
from tests.integration.notify.conftest import POLICE, Deadline, Upstream
from tests.support.identity import issuer
from tests.support.waiting import eventually


@cache
def token(username: str) -> str:
    """The officer's access token (valid 5 minutes: enough for one test module)."""
    return str(officer_token(issuer(), username)["access_token"])


def bearer(username: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(username)}"}


async def _two_alerts(client: httpx.AsyncClient, upstream: Upstream) -> dict[str, str]:
    """A breach in Greve and one in Roskilde: {kommune: alert id}."""
    greve, roskilde = Deadline(kommune="0253"), Deadline(kommune="0265")
    await upstream.publish(greve.reported(), roskilde.reported(), greve.breached(), roskilde.breached())

    async def both() -> bool:
        return len((await client.get("/v1/alerts", headers=POLICE)).json()["items"]) == 2

    await eventually(both, timeout=20, what="both alerts raised")
    return {a["kommune"]: a["id"] for a in (await client.get("/v1/alerts", headers=POLICE)).json()["items"]}


async def test_a_vagtchef_acknowledges_with_his_own_token_and_the_records_name_him(
    notify_service: tuple[FastAPI, httpx.AsyncClient], upstream: Upstream
) -> None:
    _, client = notify_service
    alerts = await _two_alerts(client, upstream)
    # With a person's token there is no acting for someone else.
    other = await client.post(f"/v1/alerts/{alerts['0265']}/ack", headers=bearer("vc-anne"), json={"by": "vc-bo"})
    assert other.status_code == 422 and "as yourself" in other.text
    acked = await client.post(f"/v1/alerts/{alerts['0265']}/ack", headers=bearer("vc-anne"))
    assert acked.status_code == 200, acked.text
    assert (acked.json()["acknowledged_by"], acked.json()["acknowledged_by_name"]) == ("vc-anne", "Anne Holm")
    detail = (await client.get(f"/v1/alerts/{alerts['0265']}", headers=bearer("vc-anne"))).json()
    assert [(a["actor"], a["detail"]) for a in detail["audit"] if a["kind"] == "acknowledged"] == [
        ("vc-anne", {"by": "vc-anne", "name": "Anne Holm", "via": "api"})]  # fmt: skip


async def test_a_lokalbetjent_reaches_his_own_kommune_and_a_council_secretary_nothing(
    notify_service: tuple[FastAPI, httpx.AsyncClient], upstream: Upstream
) -> None:
    _, client = notify_service
    alerts = await _two_alerts(client, upstream)
    mine = (await client.get("/v1/alerts", headers=bearer("lb-greve-1"))).json()
    assert [a["kommune"] for a in mine["items"]] == ["0253"] and mine["total"] == 1
    asked = (await client.get("/v1/alerts", params={"kommune": "0265"}, headers=bearer("lb-greve-1"))).json()
    assert asked["items"] == []
    assert (await client.get(f"/v1/alerts/{alerts['0265']}", headers=bearer("lb-greve-1"))).status_code == 403
    refused = await client.post(f"/v1/alerts/{alerts['0265']}/ack", headers=bearer("lb-greve-1"))
    assert refused.status_code == 403 and refused.headers["content-type"].startswith("application/problem+json")
    assert (await client.post(f"/v1/alerts/{alerts['0253']}/ack", headers=bearer("lb-greve-1"))).status_code == 200

    council = await client.get("/v1/alerts", headers=bearer("raad-0265"))
    assert council.status_code == 403 and "raad-0265" in council.json()["detail"]


async def test_a_token_that_proves_nothing_is_refused(notify_service: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _, client = notify_service
    real = token("vc-anne")
    header, payload, signature = real.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["roles"] = ["vagtchef"]
    claims["roster_id"] = "vc-bo"  # someone else
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    none_alg = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    for bad in (f"{header}.{forged}.{signature}", f"{none_alg}.{payload}.", f"{header}.{payload}.{signature[:-4]}AAAA"):
        answer = await client.get("/v1/alerts", headers={"Authorization": f"Bearer {bad}"})
        assert answer.status_code == 401, bad
        assert answer.headers["www-authenticate"] == "Bearer" and "access token is not valid" in answer.text
