"""The demo's roster and alert policy for notify load as notify loads them, and differ from the real
policy only in their timeouts (as demo-minutes.yaml differs from the real deadline rules only in windows)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from demo.__main__ import DEMO_POLICY_FILE, DEMO_ROSTER_FILE
from demo.simulate import DEMO_ACK_TIMEOUTS, acknowledger
from services.notify.adapters.policy_file import DEFAULT_POLICY_FILE, load_policy
from services.notify.adapters.roster_file import load_roster
from services.reporting.adapters.delivery_plan_file import DEFAULT_PLAN_FILE, load_plan
from services.reporting.domain.delivery_plan import Once
from services.reporting.domain.periods import Period
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


def test_the_demo_plan_sends_the_kredsraad_last_quarters_report_once_soon_after_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import demo.__main__ as demo_main

    monkeypatch.setattr(demo_main, "RUN_DIR", tmp_path)
    monkeypatch.setattr(demo_main, "DEMO_DELIVERY_PLAN", tmp_path / "council-delivery-plan.yaml")
    started = datetime(2026, 12, 6, 9, 30, tzinfo=UTC)
    entry_id = demo_main.write_delivery_plan(started)
    plan, development = load_plan(tmp_path / "council-delivery-plan.yaml"), load_plan(DEFAULT_PLAN_FILE)
    assert plan.entries[:-1] == development.entries  # the development plan, and one entry more
    demo = plan.entries[-1]
    assert demo.id == entry_id == "kredsraad-demo-20261206-103000"  # each run its own: each run sends
    assert demo.schedule == Once(
        Period.parse("2026-Q3"), started + timedelta(seconds=demo_main.DEMO_DELIVERY_AFTER_SECONDS)
    )
    assert demo.periods_to_plan(started, plan.calendar, None) == [(Period.parse("2026-Q3"), demo.schedule.at)]
    # The summary finds this run's e-mails in the sink's log, and only them.
    (tmp_path / "smtp.log").write_text(
        "[e-mail] to lb@politi.example: Advarsel\n         tekst\n"
        "[e-mail] to kredsraad-sekretariat@politi.example: Rådsrapport 3. kvartal 2026: hele kredsen\n"
        "         Til Kredsrådet\n"
        f"         vedhæftet: raadsrapport-kreds-2026-Q3.pdf (application/pdf, 46 kB), Message-ID <{entry_id}.2026-Q3.0a@x>\n"
        "[e-mail] to kredsraad-sekretariat@politi.example: Rådsrapport 3. kvartal 2026: hele kredsen\n"
        "         vedhæftet: raadsrapport-kreds-2026-Q3.pdf (application/pdf, 46 kB), Message-ID <kredsraad-demo-1.x@x>\n"
    )
    (mail,) = demo_main.council_emails(entry_id)
    assert mail[0].startswith("[e-mail] to kredsraad-sekretariat@politi.example: Rådsrapport")
    assert mail[1].startswith("vedhæftet: raadsrapport-kreds-2026-Q3.pdf")
