"""Notify's HTTP edge as a hostile or careless client meets it: fixed error wording, acks, ack links."""

from __future__ import annotations

from tests.integration.notify.conftest import POLICE


async def test_a_bad_kommune_filter_is_answered_without_repeating_it(notify_service) -> None:  # type: ignore[no-untyped-def]
    _, client = notify_service
    typed = "ring 22 33 44 55 <b>" + "x" * 3000
    response = await client.get("/v1/alerts", params={"kommune": typed}, headers=POLICE)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "22 33 44 55" not in response.text and "xxxx" not in response.text and "<b>" not in response.text
    assert [e["message"] for e in response.json()["errors"]] == ["Not a kommunekode of the district, such as 0265."]
