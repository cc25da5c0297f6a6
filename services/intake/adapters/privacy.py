"""Postgres storage of a case's personal content, its access log and its erasure (intake's own schema).

`PostgresPrivacyRepository` is the PrivacyRepository of handlers.py on one connection, inside the
transaction a `shared.unit_of_work.PostgresUnitOfWork` (HTTP, the erasure job) or the deadlines.v1
consumer opened. Erasure sets the personal columns of case_details to NULL and keeps every row.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from services.intake.domain.privacy import Contact, RetentionPolicy, StoredDetails
from services.intake.handlers import AccessEntry, DueErasure
from shared.db import Conn, readable_time

# Which personal fields hold something, by the names of domain/privacy.py (what the access log records).
_CONTACT_FIELDS_SQL = """array_remove(ARRAY[
    CASE WHEN d.contact_name IS NOT NULL THEN 'contact.name' END,
    CASE WHEN d.contact_phone IS NOT NULL THEN 'contact.phone' END,
    CASE WHEN d.contact_email IS NOT NULL THEN 'contact.email' END,
    CASE WHEN d.client_address IS NOT NULL THEN 'client_address' END]::text[], NULL)"""
_REPORT_FIELDS_SQL = """array_remove(ARRAY[
    CASE WHEN d.description IS NOT NULL THEN 'description' END,
    CASE WHEN d.address IS NOT NULL THEN 'address' END,
    CASE WHEN d.postcode IS NOT NULL THEN 'postcode' END,
    CASE WHEN d.lat IS NOT NULL THEN 'position' END,
    CASE WHEN d.institution IS NOT NULL THEN 'institution' END]::text[], NULL)"""

_LOAD = """
SELECT c.case_id, c.reference, c.kind, c.category, c.kommune, c.received_at, c.contact_erased_at,
       c.details_erased_at, d.anonymous, d.description, d.address, d.postcode, d.lat, d.lon, d.institution,
       d.contact_name, d.contact_phone, d.contact_email, d.client_address IS NOT NULL AS client_address_stored
FROM cases c JOIN case_details d USING (case_id)
WHERE c.case_id = $1
"""

# One instance of the job at a time, per schema (transaction-scoped: see shared.db.keep_session).
_LOCK = "SELECT pg_try_advisory_xact_lock(hashtext('intake-erasure:' || current_schema()))"

_CONTACTS_DUE = (
    "SELECT c.case_id, "
    + _CONTACT_FIELDS_SQL
    + """ AS fields
FROM cases c JOIN case_details d USING (case_id)
WHERE c.contact_erased_at IS NULL AND c.details_erased_at IS NULL AND NOT c.deadlines_open
  AND coalesce(c.deadlines_settled_at, c.received_at) < $1
ORDER BY coalesce(c.deadlines_settled_at, c.received_at)
LIMIT $2
FOR UPDATE OF c SKIP LOCKED
"""
)

_REPORTS_DUE = (
    "SELECT c.case_id, "
    + _REPORT_FIELDS_SQL
    + " || "
    + _CONTACT_FIELDS_SQL
    + """ AS fields
FROM cases c JOIN case_details d USING (case_id)
WHERE c.details_erased_at IS NULL AND c.received_at < $1
ORDER BY c.received_at
LIMIT $2
FOR UPDATE OF c SKIP LOCKED
"""
)

_OVERDUE = """
SELECT greatest(
    (SELECT extract(epoch FROM $2::timestamptz - min(received_at)) FROM cases
      WHERE details_erased_at IS NULL AND received_at < $2),
    (SELECT extract(epoch FROM $1::timestamptz - min(coalesce(deadlines_settled_at, received_at))) FROM cases
      WHERE contact_erased_at IS NULL AND details_erased_at IS NULL AND NOT deadlines_open
        AND coalesce(deadlines_settled_at, received_at) < $1),
    0)
"""


def _entry(row: Any) -> AccessEntry:
    return AccessEntry(
        id=row["id"], at=row["at"], case_id=row["case_id"], action=row["action"], person_id=row["person_id"],
        person_name=row["person_name"], via=row["via"], via_key=row["via_key"], purpose=row["purpose"],
        reason=row["reason"], fields=tuple(row["fields"]),
    )  # fmt: skip


def _entry_values(e: AccessEntry) -> tuple[Any, ...]:
    return (e.at, e.case_id, e.action, e.person_id, e.person_name, e.via, e.via_key, e.purpose, e.reason,
            list(e.fields))  # fmt: skip


_INSERT_ENTRY = (
    "INSERT INTO access_log (at, case_id, action, person_id, person_name, via, via_key, purpose, reason, fields)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
)


class PostgresPrivacyRepository:
    """The PrivacyRepository of handlers.py on one connection, inside the caller's transaction."""

    def __init__(self, conn: Conn) -> None:
        self._conn = conn

    async def load_details(self, case_id: uuid.UUID, *, for_update: bool) -> StoredDetails | None:
        row = await self._conn.fetchrow(_LOAD + (" FOR UPDATE OF c" if for_update else ""), case_id)
        if row is None:
            return None
        return StoredDetails(
            case_id=row["case_id"], reference=row["reference"], kind=row["kind"], category=row["category"],
            kommune=row["kommune"], received_at=readable_time(row["received_at"]) or row["received_at"],
            anonymous=row["anonymous"], description=row["description"], address=row["address"],
            postcode=row["postcode"], lat=row["lat"], lon=row["lon"], institution=row["institution"],
            contact=Contact(row["contact_name"], row["contact_phone"], row["contact_email"]),
            contact_erased_at=row["contact_erased_at"], details_erased_at=row["details_erased_at"],
            client_address_stored=row["client_address_stored"],
        )  # fmt: skip

    async def record(self, entry: AccessEntry) -> int:
        entry_id = await self._conn.fetchval(_INSERT_ENTRY + " RETURNING id", *_entry_values(entry))
        return int(entry_id)

    async def record_many(self, entries: list[AccessEntry]) -> None:
        if entries:
            await self._conn.executemany(_INSERT_ENTRY, [_entry_values(e) for e in entries])

    async def access_log(self, case_id: uuid.UUID, *, limit: int, offset: int) -> tuple[list[AccessEntry], int]:
        rows = await self._conn.fetch(
            "SELECT * FROM access_log WHERE case_id = $1 ORDER BY id LIMIT $2 OFFSET $3", case_id, limit, offset
        )
        total = await self._conn.fetchval("SELECT count(*) FROM access_log WHERE case_id = $1", case_id)
        return [_entry(r) for r in rows], int(total)

    async def erase_reports(self, case_ids: list[uuid.UUID], at: datetime, because: str) -> None:
        if not case_ids:
            return
        await self._conn.execute(
            "UPDATE case_details SET description = NULL, address = NULL, postcode = NULL, lat = NULL, lon = NULL,"
            " institution = NULL, contact_name = NULL, contact_phone = NULL, contact_email = NULL,"
            " client_address = NULL WHERE case_id = ANY($1::uuid[])",
            case_ids,
        )
        await self._conn.execute(
            "UPDATE cases SET details_erased_at = $2, contact_erased_at = coalesce(contact_erased_at, $2),"
            " erased_because = $3, deadlines_open = false, updated_at = clock_timestamp()"
            " WHERE case_id = ANY($1::uuid[])",
            case_ids,
            at,
            because,
        )
        # What told the job when the contact was due is of no use any more.
        await self._conn.execute("DELETE FROM case_deadlines WHERE case_id = ANY($1::uuid[])", case_ids)

    async def erase_contacts(self, case_ids: list[uuid.UUID], at: datetime) -> None:
        if not case_ids:
            return
        await self._conn.execute(
            "UPDATE case_details SET contact_name = NULL, contact_phone = NULL, contact_email = NULL,"
            " client_address = NULL WHERE case_id = ANY($1::uuid[])",
            case_ids,
        )
        await self._conn.execute(
            "UPDATE cases SET contact_erased_at = $2, updated_at = clock_timestamp() WHERE case_id = ANY($1::uuid[])",
            case_ids,
            at,
        )

    async def note_deadline(self, deadline_id: uuid.UUID, case_id: uuid.UUID, concluded_at: datetime | None) -> None:
        # A case whose report is erased (or that intake never stored) needs no deadline kept.
        known = await self._conn.fetchval(
            "SELECT true FROM cases WHERE case_id = $1 AND details_erased_at IS NULL FOR UPDATE", case_id
        )
        if not known:
            return
        # Concluded stays concluded: a late warning or breach of the same deadline does not reopen it.
        await self._conn.execute(
            "INSERT INTO case_deadlines (deadline_id, case_id, concluded_at) VALUES ($1, $2, $3)"
            " ON CONFLICT (deadline_id) DO UPDATE"
            " SET concluded_at = coalesce(case_deadlines.concluded_at, EXCLUDED.concluded_at)",
            deadline_id,
            case_id,
            concluded_at,
        )
        await self._conn.execute(
            "UPDATE cases c SET deadlines_open = s.open, deadlines_settled_at = CASE WHEN s.open THEN NULL ELSE"
            " s.settled END FROM (SELECT bool_or(concluded_at IS NULL) AS open, max(concluded_at) AS settled"
            " FROM case_deadlines WHERE case_id = $1) s WHERE c.case_id = $1",
            case_id,
        )

    async def lock_erasure(self) -> bool:
        return bool(await self._conn.fetchval(_LOCK))

    async def contacts_due(self, settled_before: datetime, limit: int) -> list[DueErasure]:
        rows = await self._conn.fetch(_CONTACTS_DUE, settled_before, limit)
        return [DueErasure(r["case_id"], tuple(r["fields"])) for r in rows]

    async def reports_due(self, received_before: datetime, limit: int) -> list[DueErasure]:
        rows = await self._conn.fetch(_REPORTS_DUE, received_before, limit)
        return [DueErasure(r["case_id"], tuple(r["fields"])) for r in rows]

    async def purge_access_log(self, before: datetime) -> int:
        status = await self._conn.execute("DELETE FROM access_log WHERE at < $1", before)
        return int(status.split()[-1])

    async def overdue_seconds(self, policy: RetentionPolicy, now: datetime) -> float:
        value = await self._conn.fetchval(
            _OVERDUE, policy.contact_due_if_settled_before(now), policy.report_due_if_received_before(now)
        )
        return float(value or 0.0)
