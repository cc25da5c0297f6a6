"""Who reads which council report (domain/access.py), and the API's check of a person's access token."""

from __future__ import annotations

import pytest

from services.reporting.domain.access import readership
from services.reporting.domain.report import Scope
from services.reporting.entrypoints.http import may_read
from shared.auth import ApiClient
from shared.http import Problem
from shared.oidc import Person
from shared.reference import kommuner

pytestmark = pytest.mark.unit

KREDS, ROSKILDE, GREVE = Scope(None), Scope("0265"), Scope("0253")
EVERY = [KREDS, *(Scope(code) for code in kommuner())]


def test_a_lokalraad_secretary_reads_her_kommune_and_the_kreds_only() -> None:
    readers = readership("council", "0265")
    assert readers.choices() == [KREDS, ROSKILDE]
    assert readers.may_read(ROSKILDE) and readers.may_read(KREDS) and not readers.may_read(GREVE)
    assert readers.own == ROSKILDE


def test_the_kredsraad_secretary_and_police_read_every_report() -> None:
    for role, kommune in (("council", "kreds"), ("police", None), ("police", "0253")):
        readers = readership(role, kommune)
        assert readers.choices() == EVERY, (role, kommune)
        assert readers.own == KREDS


def test_a_council_secretary_of_no_single_kommune_reads_the_kreds_and_anyone_else_nothing() -> None:
    assert readership("council", None).choices() == [KREDS]
    assert readership("council", "9999").choices() == [KREDS]  # not a kommune of the district
    for role in (None, "portal", "none"):
        nobody = readership(role, "0265")
        assert nobody.choices() == [] and not nobody.reads_any and not nobody.may_read(KREDS)


def person(roles: set[str], kommune: str | None) -> Person:
    return Person(subject="s-1", username="raad-0265", name="Rådssekretær Roskilde", roles=frozenset(roles),
                  kommune=kommune)  # fmt: skip


def test_the_api_holds_a_council_persons_token_to_her_reach_and_a_key_to_its_role() -> None:
    secretary = ApiClient("s-1", "council", person({"raadssekretaer"}, "0265"))
    may_read(secretary, ROSKILDE)
    may_read(secretary, KREDS)
    with pytest.raises(Problem) as refused:
        may_read(secretary, GREVE)
    assert refused.value.status == 403 and "raad-0265 may read these scopes only: kreds, 0265" in str(
        refused.value.detail
    )
    for scope in EVERY:  # a council system's key, and an officer's token
        may_read(ApiClient("council-system", "council"), scope)
        may_read(ApiClient("vc-anne", "police", person({"vagtchef"}, None)), scope)
