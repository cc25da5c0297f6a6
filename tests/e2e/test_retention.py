"""Nothing kept for ever (issue 17): after the retention, no table of any service holds a word of the report,
and the council's figures for the period are what they were.

The four services run as processes (tests/e2e/test_alert_flow.py's system). A burglary report carries
marker strings in every personal field; it raises an alert, the patrol comes and the follow-up is done,
and the council report counts it. Then intake and notify are restarted with retentions of nothing (as
an operator shortens a setting: the jobs apply it at their next round), and every table of every
service's schema is searched for the markers, row by row as text.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from services.reporting.domain.periods import Period
from shared.db import quote_ident
from tests.e2e.test_alert_flow import COUNCIL, LEJRE, PORTAL, AlertingSystem, Flow
from tests.support.infra import Namespace
from tests.support.services import PORTAL_LIKE_HOOKS
from tests.support.waiting import eventually

RULES = ("burglary_home_24h", "tryghedsopfoelgning_burglary")


class Markers:
    """Strings no other test writes, one per personal field of the report."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:10]
        digits = f"{random.randint(2, 9)}{random.randrange(10**7):07d}"
        self.fields = {
            "name": f"Navnmarkoer {tag}",
            "phone": digits,  # stored as +45 and these 8 digits
            "email": f"mail{tag}@borger.example",
            "street": f"Gademarkoer {tag} 7",
            "text": f"Tekstmarkoer {tag}: terrassedoeren brudt op",
        }

    def report(self) -> dict[str, object]:
        return {
            "category": "burglary_home",
            "description": self.fields["text"],
            "in_progress": False,
            "kommune": LEJRE,
            "address": self.fields["street"],
            "contact": {"name": self.fields["name"], "phone": self.fields["phone"], "email": self.fields["email"]},
        }


async def tables_holding(database_url: str, schemas: Sequence[str], markers: Sequence[str]) -> dict[str, list[str]]:
    """For each marker found, the tables (schema.table) where some row, read as text, contains it."""
    conn = await asyncpg.connect(database_url)
    try:
        tables = await conn.fetch(
            "SELECT DISTINCT c.table_schema, c.table_name FROM information_schema.columns c"
            " JOIN information_schema.tables t USING (table_schema, table_name)"
            " WHERE c.table_schema = ANY($1) AND t.table_type = 'BASE TABLE' ORDER BY 1, 2",
            list(schemas),
        )
        assert {schema for schema, _ in tables} == set(schemas), "a service's schema has no tables"
        found: dict[str, list[str]] = {}
        for schema, table in tables:
            name = f"{quote_ident(schema)}.{quote_ident(table)}"
            hits = await conn.fetch(
                # Every column at once: the whole row as text (a bytea column as hex, jsonb as written).
                f"SELECT m FROM unnest($1::text[]) AS m WHERE EXISTS"
                f" (SELECT 1 FROM {name} AS r WHERE strpos(r::text, m) > 0)",
                list(markers),
            )
            for hit in hits:
                found.setdefault(hit["m"], []).append(f"{schema}.{table}")
        return found
    finally:
        await conn.close()


@pytest.fixture
def system(ns: Namespace, tmp_path: Path) -> Iterator[AlertingSystem]:
    started = AlertingSystem(ns, tmp_path, burglary_window_seconds=10)
    try:
        yield started.start()
    finally:
        started.stop()


def rule_figures(current: dict[str, Any], rule_id: str) -> dict[str, Any]:
    """A rule's figures in the report ({} until reporting has seen one of its deadlines)."""
    found: dict[str, Any] = next((r for r in current["compliance"]["rules"] if r["rule_id"] == rule_id), {})
    return found


async def settled(read: Callable[[], Any], *, what: str) -> Any:
    """The value once two reads a second apart agree (reporting has taken in everything there is)."""
    last = await read()
    for _ in range(20):
        await asyncio.sleep(1.0)
        now = await read()
        if now == last:
            return now
        last = now
    raise AssertionError(f"{what} never settled: {last}")


async def test_after_the_retention_no_table_holds_the_report_and_the_council_figures_stay(
    system: AlertingSystem, ns: Namespace
) -> None:
    markers = Markers()
    async with httpx.AsyncClient(timeout=10, event_hooks=PORTAL_LIKE_HOOKS) as client:
        flow = Flow(system, client)
        accepted = await client.post(f"{system.url('intake')}/v1/reports", json=markers.report(), headers=PORTAL)
        assert accepted.status_code == 202, accepted.text
        case_id = str(accepted.json()["case_id"])

        # The follow-up target (6 s) warns at 3 s: an alert to Lejre's lokalbetjent.
        async def alerts_of_case() -> list[dict[str, Any]]:
            notify = system.url("notify")
            page = (await client.get(f"{notify}/v1/alerts", params={"kommune": LEJRE},
                                     headers={"Authorization": "Bearer dev-police-key"})).json()  # fmt: skip
            return [a for a in page["items"] if a["case_id"] == case_id]

        await eventually(alerts_of_case, timeout=30, what="an alert raised about the case")
        await flow.act(case_id, "on_scene")
        await flow.act(case_id, "followup_done")

        async def all_resolved() -> bool:
            alerts = await alerts_of_case()
            return bool(alerts) and all(a["state"] == "resolved" for a in alerts)

        await eventually(all_resolved, timeout=30, what="the case's alerts resolved")
        period = str(Period.containing(datetime.now(UTC), "quarter"))

        async def figures() -> dict[str, Any]:
            kpis = await client.get(f"{system.url('reporting')}/v1/kpis", params={"scope": LEJRE, "period": period},
                                    headers=COUNCIL)  # fmt: skip
            assert kpis.status_code == 200, kpis.text
            return {"kreds": await flow.report_figures(), "lejre": kpis.json()["current"]}

        async def counted() -> bool:
            current = (await figures())["kreds"]
            return current["reports"] == 1 and all(rule_figures(current, r).get("concluded") == 1 for r in RULES)

        await eventually(counted, timeout=30, what="the council report counting the report and both deadlines")
        before = await settled(figures, what="the council figures")
        assert before["kreds"]["alerts"]["raised"] == len(await alerts_of_case())

        # The search finds what is there: every marker in intake's case details, and nowhere else.
        everything = list(markers.fields.values())
        found = await tables_holding(ns.database_url, ns.schemas, everything)
        assert found == {m: [f"{ns.schema('intake')}.case_details"] for m in everything}

        # The retention pass: intake's erasure job and notify's purge, with retentions of nothing.
        system.restart("intake", INTAKE_CONTACT_RETENTION="PT0S", INTAKE_REPORT_RETENTION="PT0S",
                       INTAKE_ERASURE_INTERVAL_SECONDS="0.5")  # fmt: skip
        system.restart("notify", NOTIFY_DELIVERY_RETENTION="PT0S", NOTIFY_AUDIT_RETENTION="PT0S",
                       NOTIFY_PURGE_INTERVAL_SECONDS="0.5")  # fmt: skip

        async def nothing_left() -> bool:
            return not await tables_holding(ns.database_url, ns.schemas, everything)

        await eventually(nothing_left, timeout=20, step=0.5, what="no marker in any table of any service")

        async def notify_purged() -> bool:
            return not await alerts_of_case()

        await eventually(notify_purged, timeout=20, step=0.5, what="notify's alerts, deliveries and audit purged")
        notify_schema = quote_ident(ns.schema("notify"))
        conn = await asyncpg.connect(ns.database_url)
        try:
            for table in ("deliveries", "audit", "alerts"):
                assert await conn.fetchval(f"SELECT count(*) FROM {notify_schema}.{table}") == 0
        finally:
            await conn.close()

        # The council's figures for the period are exactly what they were.
        assert await figures() == before
