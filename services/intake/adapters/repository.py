"""Postgres storage of cases, police actions and Idempotency-Key answers (intake's own schema).

`PostgresCaseRepository` is the CaseRepository of handlers.py on one connection, inside the
transaction a `shared.unit_of_work.PostgresUnitOfWork` opened; every SQL statement of the use
cases is in its methods.
"""

from __future__ import annotations

import logging
import random
import uuid
from datetime import datetime, timedelta

import asyncpg

from services.intake.domain.cases import CaseFacts, RecordedAction
from services.intake.domain.reference import new_reference
from services.intake.handlers import Answer, IdempotencyKey, IdempotencyKeyReused, NewAction, NewCase, StoredCase
from shared.db import Conn, readable_time
from shared.events import CloudEvent
from shared.outbox import enqueue

log = logging.getLogger(__name__)

# A fresh reference collides with a stored one about once in 600 draws per million cases
# (domain/reference.py); eight draws in a row failing means something else is wrong.
REFERENCE_ATTEMPTS = 8

# The case and its details in one statement: both rows or, on a reference collision, neither.
_INSERT_CASE = """
WITH new_case AS (
    INSERT INTO cases (case_id, reference, kind, category, focus_area, kommune, in_progress, acute,
                       request_type, anonymous, received_at, occurred_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $10, $11, $12, $13)
    ON CONFLICT (reference) DO NOTHING
    RETURNING case_id
)
INSERT INTO case_details (case_id, anonymous, description, address, postcode, lat, lon,
                          contact_name, contact_phone, contact_email, client_address, institution)
SELECT case_id, $11, $14, $15, $16, $17, $18, $19, $20, $21, $22::inet, $9 FROM new_case
RETURNING case_id
"""

_LOAD_CASE = (
    "SELECT case_id, reference, kind, category, kommune, received_at, in_progress FROM cases WHERE case_id = $1"
)
_LOAD_CASE_FOR_UPDATE = _LOAD_CASE + " FOR UPDATE"


class PostgresCaseRepository:
    """The CaseRepository of handlers.py on one connection, inside the unit of work's transaction."""

    def __init__(self, conn: Conn, *, topic: str, rng: random.Random | None = None) -> None:
        self._conn = conn
        self._topic = topic
        self._rng = rng

    async def claim_key(self, key: IdempotencyKey, answer: Answer | None = None) -> Answer | None:
        """Claims the key for this transaction (None), or returns the answer its first use committed.

        `answer`, when already known, is stored with the claim; otherwise `remember` stores it later
        in the same transaction. A concurrent request with the same key blocks on the INSERT until the
        first transaction ends: after a commit it finds the row and replays the answer; after a
        rollback it claims the key.
        """
        while True:
            claimed = await self._conn.fetchval(
                "INSERT INTO idempotency_keys (client, key, request_hash, status_code, response)"
                " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (client, key) DO NOTHING RETURNING true",
                key.client,
                key.key,
                key.request_hash,
                answer.status_code if answer else None,
                answer.body if answer else None,
            )
            if claimed:
                return None
            row = await self._conn.fetchrow(
                "SELECT request_hash, status_code, response FROM idempotency_keys WHERE client = $1 AND key = $2",
                key.client,
                key.key,
            )
            if row is None:
                continue  # purged between the two statements: claim it again
            if row["request_hash"] != key.request_hash:
                raise IdempotencyKeyReused(key.key)
            return Answer(row["status_code"], row["response"], replayed=True)

    async def remember(self, key: IdempotencyKey, answer: Answer) -> None:
        await self._conn.execute(
            "UPDATE idempotency_keys SET status_code = $3, response = $4 WHERE client = $1 AND key = $2",
            key.client,
            key.key,
            answer.status_code,
            answer.body,
        )

    async def insert_case(self, case: NewCase, reference: str) -> str:
        """Stores the case under `reference`, or a fresh one while that is taken; returns the one it got."""
        d = case.details
        for attempt in range(REFERENCE_ATTEMPTS):
            if attempt:
                reference = new_reference(self._rng)
            inserted = await self._conn.fetchval(
                _INSERT_CASE,
                case.case_id, reference, case.kind, case.category, case.focus_area, case.kommune, case.in_progress,
                case.acute, d.institution, case.request_type, case.anonymous, case.received_at, case.occurred_at,
                d.description, d.address, d.postcode, d.lat, d.lon, d.contact_name, d.contact_phone, d.contact_email,
                d.client_address,
            )  # fmt: skip
            if inserted is not None:
                return reference
            log.info("reference taken; drawing another", extra={"case_id": case.case_id})
        raise RuntimeError(f"no free case reference after {REFERENCE_ATTEMPTS} draws")

    async def load_case(self, case_id: uuid.UUID, *, for_update: bool) -> StoredCase | None:
        row = await self._conn.fetchrow(_LOAD_CASE_FOR_UPDATE if for_update else _LOAD_CASE, case_id)
        if row is None:
            return None
        actions = await self._conn.fetch(
            "SELECT action, occurred_at, requested_time FROM case_actions WHERE case_id = $1 ORDER BY seq", case_id
        )
        return StoredCase(
            case_id=row["case_id"],
            reference=row["reference"],
            kommune=row["kommune"],
            facts=CaseFacts(
                kind=row["kind"],
                category=row["category"],
                received_at=_time(row["received_at"]),
                in_progress=row["in_progress"],
            ),
            # A stored -infinity (written before times were bounded) reads as a far-off time, not a 500.
            actions=tuple(
                RecordedAction(a["action"], _time(a["occurred_at"]), readable_time(a["requested_time"]))
                for a in actions
            ),
        )

    async def insert_action(self, action: NewAction, status: str) -> None:
        request = action.request
        await self._conn.execute(
            "WITH recorded AS ("
            " INSERT INTO case_actions (action_id, case_id, action, occurred_at, recorded_at, requested_time,"
            " outcome, officer_id, recorded_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9))"
            " UPDATE cases SET status = $10, updated_at = clock_timestamp() WHERE case_id = $2",
            action.action_id, action.case_id, request.action, request.occurred_at, action.recorded_at,
            request.requested_time, request.outcome, request.officer_id, action.recorded_by, status,
        )  # fmt: skip

    async def emit(self, event: CloudEvent) -> None:
        await enqueue(self._conn, event, topic=self._topic)


def _time(value: datetime) -> datetime:
    read = readable_time(value)
    assert read is not None  # a NOT NULL column
    return read


async def purge_idempotency_keys(pool: asyncpg.Pool, older_than: timedelta) -> int:
    """Forgets keys older than the retention; returns how many."""
    status = await pool.execute("DELETE FROM idempotency_keys WHERE created_at < now() - $1::interval", older_than)
    return int(status.split()[-1])
