"""What only a person may do (shared/auth.py require_person), and the roster's officers (shared/officers.py)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import Depends, FastAPI

from shared.auth import ApiClient, ApiKeys, require_person
from shared.http import install_problem_handlers
from shared.officers import DEFAULT_ROSTER_FILE, load_officers
from shared.oidc import InvalidToken, Person
from shared.ratelimit import rate_limits
from shared.settings import DEV_API_KEYS_FILE

DPO = Person(subject="s-1", username="dpo", name="Data Beskytter", roles=frozenset({"databeskyttelse"}))
OFFICER = Person(
    subject="s-2", username="vc-anne", name="Anne Holm", roles=frozenset({"vagtchef"}), roster_id="vc-anne"
)
TOKENS = {"eyJdpo.payload.sig": DPO, "eyJanne.payload.sig": OFFICER}


class FakeProvider:
    """The provider as shared/auth.py asks it: the person a token names, or InvalidToken."""

    async def person(self, token: str) -> Person:
        if token not in TOKENS:
            raise InvalidToken("unknown")
        return TOKENS[token]


def make_app() -> FastAPI:
    app = FastAPI()
    app.state.api_keys = ApiKeys.load(DEV_API_KEYS_FILE)
    app.state.rate_limits = rate_limits(6000, 100, 6000, 100)
    app.state.oidc = FakeProvider()
    install_problem_handlers(app)

    @app.get("/log")
    async def read_log(client: ApiClient = Depends(require_person("databeskyttelse"))) -> dict[str, str]:  # noqa: B008
        return {"who": client.name}

    return app


async def get(app: FastAPI, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        return await client.get("/log", headers=headers)


async def test_only_a_person_with_the_role_passes_and_a_key_never_does() -> None:
    app = make_app()
    assert (await get(app, None)).status_code == 401
    assert (await get(app, "eyJforged.payload.sig")).status_code == 401
    key = await get(app, "dev-police-key")
    assert key.status_code == 403 and "Only a person" in key.json()["detail"]
    officer = await get(app, "eyJanne.payload.sig")
    assert (
        officer.status_code == 403 and "vagtchef" not in officer.json()["detail"] and "databeskyttelse" in officer.text
    )
    dpo = await get(app, "eyJdpo.payload.sig")
    assert dpo.status_code == 200 and dpo.json() == {"who": "s-1"}


def test_the_rosters_officers_are_vagtchefer_of_every_kommune_and_lokalbetjente_of_their_own() -> None:
    officers = load_officers(DEFAULT_ROSTER_FILE)
    anne, greve = officers["vc-anne"], officers["lb-greve-1"]
    assert (anne.role, anne.kommune, anne.as_person().kommuner) == ("vagtchef", None, None)
    assert (greve.role, greve.kommune, greve.as_person().kommuner) == ("lokalbetjent", "0253", frozenset({"0253"}))
    assert greve.as_person().id == "lb-greve-1" and not greve.as_person().sees_kommune("0265")
    assert not any(o.startswith("raad") for o in officers)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("- just a list", "not a roster"),
        ("vagtchefer: {id: x}", "must be a list"),
        ("vagtchefer: [{id: x}]", "needs an id and a name"),
        ("kommuner: [1, 2]", "kommuner must map"),
        ("vagtchefer: [{id: x, name: X}]\nkommuner: {'0253': {lokalbetjente: [{id: x, name: Y}]}}", "appears twice"),
    ],
)
def test_a_roster_that_names_no_clear_officers_stops_start_up_naming_the_file(
    tmp_path: Path, text: str, complaint: str
) -> None:
    path = tmp_path / "roster.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=complaint) as refused:
        load_officers(path)
    assert str(path) in str(refused.value)
    with pytest.raises(ValueError, match="cannot read"):
        load_officers(tmp_path / "missing.yaml")
