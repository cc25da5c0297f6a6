"""The demo's roster and alert policy for notify load as notify loads them, and differ from the real
policy only in their timeouts (as demo-minutes.yaml differs from the real deadline rules only in windows)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from demo.__main__ import DEMO_POLICY_FILE, DEMO_ROSTER_FILE
from demo.simulate import DEMO_ACK_TIMEOUTS, acknowledger
from services.notify.adapters.policy_file import DEFAULT_POLICY_FILE, load_policy
from services.notify.adapters.roster_file import load_roster
from shared.reference import kommuner

SECRET = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"


def test_the_demo_policy_is_the_real_one_with_shorter_timeouts() -> None:
    demo, real = load_policy(DEMO_POLICY_FILE), load_policy(DEFAULT_POLICY_FILE)
    assert set(demo.chains) == set(real.chains)
    for chain_id, chain in demo.chains.items():
        assert chain.steps == real.chains[chain_id].steps
        assert chain.ack_timeout < real.chains[chain_id].ack_timeout
    same_timeouts = {c: replace(chain, ack_timeout=timedelta(0), reminder_interval=timedelta(0))
                     for c, chain in real.chains.items()}  # fmt: skip
    for demo_rule, real_rule in zip(demo.rules, real.rules, strict=True):
        assert replace(demo_rule, chain=same_timeouts[demo_rule.chain.id]) == replace(
            real_rule, chain=same_timeouts[real_rule.chain.id]
        )


def test_the_simulated_officers_know_the_demo_policy_timeouts() -> None:
    demo = load_policy(DEMO_POLICY_FILE)
    by_severity = {rule.severity: rule.chain.ack_timeout.total_seconds() for rule in demo.rules}
    assert by_severity == DEMO_ACK_TIMEOUTS


def test_the_demo_roster_has_a_vagtchef_at_every_hour_and_officers_in_every_kommune() -> None:
    roster = load_roster(DEMO_ROSTER_FILE, env={"DEMO_WEBHOOK_SECRET": SECRET})
    now = datetime.now(UTC)
    assert roster.gaps(now, now + timedelta(days=28)) == []
    for code in kommuner():
        assert roster.recipients("lokalbetjente", code, now), code


def test_the_simulated_officers_acknowledge_as_officers_of_the_demo_roster() -> None:
    """Notify refuses an ack `by` anyone outside the roster (422): the demo's acks name whom the alert reached."""
    roster = load_roster(DEMO_ROSTER_FILE, env={"DEMO_WEBHOOK_SECRET": SECRET})
    now = datetime.now(UTC)

    def delivery(recipient_id: str, minute: int) -> dict[str, str]:
        return {"recipient_id": recipient_id, "created_at": f"2026-11-27T14:{minute:02d}:00Z"}

    for code in kommuner():
        local = roster.recipients("lokalbetjente", code, now)[0].id
        chief = roster.recipients("vagtchef", code, now)[0].id
        # Raised to the local officer, escalated to the vagtchef, then to the vagtcentral's shared channel.
        alert = {"deliveries": [delivery(local, 1), delivery(chief, 2), delivery("vagtcentral", 3)]}
        assert acknowledger(alert) == chief and roster.find(chief) is not None, code
        assert acknowledger({"deliveries": [delivery(local, 1)]}) == local and roster.find(local) is not None
    assert acknowledger({"deliveries": []}) is None  # then nobody acknowledges it yet


def test_every_demo_officer_is_a_user_of_the_development_realm() -> None:
    """The demo acknowledges with each officer's own access token: every roster id must be able to sign in."""
    import json

    from deploy.keycloak.make_realm import OUT

    usernames = {u["username"] for u in json.loads(OUT.read_text(encoding="utf-8"))["users"]}
    roster = load_roster(DEMO_ROSTER_FILE, env={"DEMO_WEBHOOK_SECRET": SECRET})
    officers = {o.id for o in roster.duty_officers.values()} | {
        o.id for officers in roster.lokalbetjente.values() for o in officers
    }
    assert officers and officers <= usernames, sorted(officers - usernames)
