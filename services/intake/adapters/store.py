"""Postgres storage of cases, police actions and Idempotency-Key answers (intake's own schema).

Every accepted request is one transaction: the idempotency key's row, the case (or action) rows
and the outbox row commit together or not at all, so a failure at any moment leaves nothing
half-written, and an accepted case always has its event waiting in the outbox.
"""

from __future__ import annotations

import contextlib
import logging
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

import asyncpg

from services.intake.domain.cases import CaseFacts, Conflict, RecordedAction, decide_action
from services.intake.domain.reference import new_reference
from services.intake.metrics import count_accepted
from services.intake.records import NewAction, NewCase, StoredCase, accepted_body, action_event, case_event
from shared.db import Conn
from shared.outbox import enqueue

log = logging.getLogger(__name__)

# A fresh reference collides with a stored one about once in 600 draws per million cases
# (domain/reference.py); eight draws in a row failing means something else is wrong.
REFERENCE_ATTEMPTS = 8


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    """An Idempotency-Key as one API client sent it, with the hash of the request it came with."""

    client: str
    key: str
    request_hash: str


@dataclass(frozen=True, slots=True)
class Answer:
    """What the caller is told: the first answer to a request, and whether this is a replay of it."""

    status_code: int
    body: dict[str, Any]
    replayed: bool = False


class CaseNotFound(LookupError):
    pass


class ActionRefused(Exception):
    """The case does not take this action now (the domain's Conflict)."""

    def __init__(self, conflict: Conflict) -> None:
        super().__init__(conflict.reason)
        self.code = conflict.code
        self.reason = conflict.reason


class IdempotencyKeyReused(Exception):
    """The key was used before, with a different request."""


class CaseStore(Protocol):
    """What the HTTP layer needs from storage; bootstrap wires the Postgres one, unit tests a fake."""

    async def submit(self, case: NewCase, key: IdempotencyKey | None) -> Answer: ...

    async def record_action(self, action: NewAction, key: IdempotencyKey | None) -> Answer: ...

    async def find(self, case_id: uuid.UUID) -> StoredCase | None: ...


class PostgresCaseStore:
    def __init__(
        self,
        pool: Callable[[], asyncpg.Pool],
        *,
        topic: str,
        acquire_timeout: float,
        rng: random.Random | None = None,
        before_commit: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._pool = pool  # a getter: the pool exists only once the service has started
        self._topic = topic
        self._acquire_timeout = acquire_timeout
        self._rng = rng
        # Test seam: runs inside the transaction just before COMMIT, to fail at the worst moment.
        self._before_commit = before_commit

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Conn]:
        # acquire(timeout=...): with Postgres away, a request fails in bounded time (503), never hangs.
        async with self._pool().acquire(timeout=self._acquire_timeout) as conn, conn.transaction():
            yield conn
            if self._before_commit is not None:
                await self._before_commit()

    async def submit(self, case: NewCase, key: IdempotencyKey | None) -> Answer:
        reference = new_reference(self._rng)
        answer = Answer(202, accepted_body(case.case_id, reference))
        async with self._transaction() as conn:
            # The key is claimed with its answer already in it: one round trip fewer per report.
            earlier = await _claim(conn, key, answer) if key is not None else None
            if earlier is not None:
                return earlier
            taken = reference
            reference = await _insert_case(conn, case, reference, self._rng)
            if reference != taken:
                answer = Answer(202, accepted_body(case.case_id, reference))
                if key is not None:
                    await _remember(conn, key, answer)
            event = case_event(case, reference)
            await enqueue(conn, event, topic=self._topic)
        count_accepted(event)
        log.info(
            "case accepted",
            extra={"case_id": case.case_id, "reference": reference, "kind": case.kind,
                   "category": case.category, "kommune": case.kommune},
        )  # fmt: skip
        return answer

    async def record_action(self, action: NewAction, key: IdempotencyKey | None) -> Answer:
        async with self._transaction() as conn:
            earlier = await _claim(conn, key) if key is not None else None
            if earlier is not None:
                return earlier
            # FOR UPDATE: two officers recording on one case at once are decided one after the other.
            case = await _load(conn, action.case_id, for_update=True)
            if case is None:
                raise CaseNotFound(action.case_id)
            decision = decide_action(case.facts, case.actions, action.recorded)
            if isinstance(decision, Conflict):
                raise ActionRefused(decision)
            await _insert_action(conn, action, decision.status)
            event = action_event(case, action)
            await enqueue(conn, event, topic=self._topic)
            answer = Answer(202, accepted_body(case.case_id, case.reference, action_id=str(action.action_id)))
            if key is not None:
                await _remember(conn, key, answer)
        count_accepted(event)
        log.info(
            "action recorded",
            extra={"case_id": case.case_id, "action": action.request.action, "action_id": action.action_id,
                   "status": decision.status, "kommune": case.kommune},
        )  # fmt: skip
        return answer

    async def find(self, case_id: uuid.UUID) -> StoredCase | None:
        async with self._pool().acquire(timeout=self._acquire_timeout) as conn:
            return await _load(conn, case_id, for_update=False)


# --- SQL -------------------------------------------------------------------------------------


async def _claim(conn: Conn, key: IdempotencyKey, answer: Answer | None = None) -> Answer | None:
    """Claims the key for this transaction (None), or returns the answer its first use committed.

    `answer`, when already known, is stored with the claim; otherwise `_remember` stores it later
    in the same transaction. A concurrent request with the same key blocks on the INSERT until the
    first transaction ends: after a commit it finds the row and replays the answer; after a
    rollback it claims the key.
    """
    while True:
        claimed = await conn.fetchval(
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
        row = await conn.fetchrow(
            "SELECT request_hash, status_code, response FROM idempotency_keys WHERE client = $1 AND key = $2",
            key.client,
            key.key,
        )
        if row is None:
            continue  # purged between the two statements: claim it again
        if row["request_hash"] != key.request_hash:
            raise IdempotencyKeyReused(key.key)
        return Answer(row["status_code"], row["response"], replayed=True)


async def _remember(conn: Conn, key: IdempotencyKey, answer: Answer) -> None:
    await conn.execute(
        "UPDATE idempotency_keys SET status_code = $3, response = $4 WHERE client = $1 AND key = $2",
        key.client,
        key.key,
        answer.status_code,
        answer.body,
    )


# The case and its details in one statement: both rows or, on a reference collision, neither.
_INSERT_CASE = """
WITH new_case AS (
    INSERT INTO cases (case_id, reference, kind, category, focus_area, kommune, in_progress, acute,
                       institution, request_type, anonymous, received_at, occurred_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
    ON CONFLICT (reference) DO NOTHING
    RETURNING case_id
)
INSERT INTO case_details (case_id, anonymous, description, address, postcode, lat, lon,
                          contact_name, contact_phone, contact_email, client_address)
SELECT case_id, $11, $14, $15, $16, $17, $18, $19, $20, $21, $22::inet FROM new_case
RETURNING case_id
"""


async def _insert_case(conn: Conn, case: NewCase, reference: str, rng: random.Random | None) -> str:
    """Stores the case under `reference`, or a fresh one while that is taken; returns the one it got."""
    d = case.details
    for attempt in range(REFERENCE_ATTEMPTS):
        if attempt:
            reference = new_reference(rng)
        inserted = await conn.fetchval(
            _INSERT_CASE,
            case.case_id, reference, case.kind, case.category, case.focus_area, case.kommune, case.in_progress,
            case.acute, case.institution, case.request_type, case.anonymous, case.received_at, case.occurred_at,
            d.description, d.address, d.postcode, d.lat, d.lon, d.contact_name, d.contact_phone, d.contact_email,
            d.client_address,
        )  # fmt: skip
        if inserted is not None:
            return reference
        log.info("reference taken; drawing another", extra={"case_id": case.case_id})
    raise RuntimeError(f"no free case reference after {REFERENCE_ATTEMPTS} draws")


async def _insert_action(conn: Conn, action: NewAction, status: str) -> None:
    request = action.request
    await conn.execute(
        "WITH recorded AS ("
        " INSERT INTO case_actions (action_id, case_id, action, occurred_at, recorded_at, requested_time,"
        " outcome, officer_id, recorded_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9))"
        " UPDATE cases SET status = $10, updated_at = clock_timestamp() WHERE case_id = $2",
        action.action_id, action.case_id, request.action, request.occurred_at, action.recorded_at,
        request.requested_time, request.outcome, request.officer_id, action.recorded_by, status,
    )  # fmt: skip


_LOAD_CASE = (
    "SELECT case_id, reference, kind, category, kommune, received_at, in_progress FROM cases WHERE case_id = $1"
)
_LOAD_CASE_FOR_UPDATE = _LOAD_CASE + " FOR UPDATE"


async def _load(conn: Conn, case_id: uuid.UUID, *, for_update: bool) -> StoredCase | None:
    row = await conn.fetchrow(_LOAD_CASE_FOR_UPDATE if for_update else _LOAD_CASE, case_id)
    if row is None:
        return None
    actions = await conn.fetch(
        "SELECT action, occurred_at, requested_time FROM case_actions WHERE case_id = $1 ORDER BY seq", case_id
    )
    return StoredCase(
        case_id=row["case_id"],
        reference=row["reference"],
        kommune=row["kommune"],
        facts=CaseFacts(
            kind=row["kind"], category=row["category"], received_at=row["received_at"], in_progress=row["in_progress"]
        ),
        actions=tuple(RecordedAction(a["action"], a["occurred_at"], a["requested_time"]) for a in actions),
    )


async def purge_idempotency_keys(pool: asyncpg.Pool, older_than: timedelta) -> int:
    """Forgets keys older than the retention; returns how many."""
    status = await pool.execute("DELETE FROM idempotency_keys WHERE created_at < now() - $1::interval", older_than)
    return int(status.split()[-1])
