"""In-memory stand-ins for the council deliveries: the store (as adapters/delivery_repository.py's SQL behaves) and
a mail server whose every answer a test chooses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from email.message import EmailMessage

from services.reporting.adapters.delivery_repository import (
    DeliveryKey,
    PlannedRow,
    Rendered,
    RenderJob,
    SendJob,
    SendKey,
)
from services.reporting.adapters.mailer import CouncilMailer
from shared.clock import Clock
from shared.smtp import BeforeData, SmtpResult, SmtpServer


@dataclass
class DeliveryRow:
    planned: PlannedRow
    state: str = "scheduled"
    next_attempt_at: datetime | None = None
    attempts: int = 0
    lease_owner: str | None = None
    lease_until: datetime | None = None
    last_error: str | None = None
    document: Rendered | None = None


@dataclass
class SendRow:
    message_id: str
    created_at: datetime
    next_attempt_at: datetime
    state: str = "pending"
    attempts: int = 0
    lease_owner: str | None = None
    lease_until: datetime | None = None
    data_started_at: datetime | None = None
    in_doubt_resends: int = 0
    sent_at: datetime | None = None
    reply: str | None = None
    failed_at: datetime | None = None
    last_error: str | None = None


@dataclass
class FakeDeliveryStore:
    """The DeliveryStore in memory; leases on `clock` (Postgres's clock in the real one)."""

    clock: Clock
    deliveries: dict[DeliveryKey, DeliveryRow] = field(default_factory=dict)
    sends: dict[SendKey, SendRow] = field(default_factory=dict)
    # Every lease is taken over at the moment DATA would go (data_starting finds the row another's).
    stolen: bool = False

    def _free(self, lease_until: datetime | None) -> bool:
        return lease_until is None or lease_until < self.clock.now()

    def _held(self, row: DeliveryRow | SendRow, owner: str, state: str) -> bool:
        return row.lease_owner == owner and row.state == state

    async def planned_periods(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for entry_id, period in self.deliveries:
            found.setdefault(entry_id, []).append(period)
        return found

    async def plan(self, rows: Sequence[PlannedRow], now: datetime) -> int:
        added = 0
        for row in rows:
            key = (row.entry_id, row.period)
            found = self.deliveries.get(key)
            if found is None:
                self.deliveries[key] = DeliveryRow(row, next_attempt_at=row.due_at)
                added += 1
            elif found.state == "scheduled" and found.attempts == 0 and found.planned.due_at != row.due_at:
                found.planned, found.next_attempt_at = replace(found.planned, due_at=row.due_at), row.due_at
        return added

    async def claim_renders(self, now: datetime, owner: str, lease: timedelta, limit: int) -> list[RenderJob]:
        due = sorted(
            (r.next_attempt_at, key) for key, r in self.deliveries.items()
            if r.state == "scheduled" and r.next_attempt_at is not None and r.next_attempt_at <= now
            and self._free(r.lease_until)
        )[:limit]  # fmt: skip
        jobs = []
        for _, key in due:
            row = self.deliveries[key]
            row.lease_owner, row.lease_until, row.attempts = owner, self.clock.now() + lease, row.attempts + 1
            jobs.append(RenderJob(*key, row.attempts))
        return jobs

    async def rendered(self, key: DeliveryKey, owner: str, document: Rendered, sends: Sequence[tuple[str, str]],
                       now: datetime) -> bool:  # fmt: skip
        row = self.deliveries[key]
        if not self._held(row, owner, "scheduled"):
            return False
        row.state, row.document, row.lease_owner, row.lease_until, row.last_error = (
            "rendered",
            document,
            None,
            None,
            None,
        )
        for recipient, message_id in sends:
            self.sends.setdefault((*key, recipient), SendRow(message_id, now, now))
        return True

    async def render_retry(self, key: DeliveryKey, owner: str, error: str, at: datetime) -> bool:
        row = self.deliveries[key]
        if not self._held(row, owner, "scheduled"):
            return False
        row.next_attempt_at, row.last_error, row.lease_owner, row.lease_until = at, error, None, None
        return True

    async def render_failed(self, key: DeliveryKey, owner: str, error: str, sends: Sequence[tuple[str, str]],
                            now: datetime) -> bool:  # fmt: skip
        row = self.deliveries[key]
        if not self._held(row, owner, "scheduled"):
            return False
        row.state, row.last_error, row.lease_owner, row.lease_until = "failed", error, None, None
        for recipient, message_id in sends:
            self.sends.setdefault(
                (*key, recipient),
                SendRow(message_id, now, now, state="failed", failed_at=now,
                        last_error=f"the report could not be made: {error}"),
            )  # fmt: skip
        return True

    async def cancel(self, key: DeliveryKey, owner: str, reason: str) -> bool:
        row = self.deliveries[key]
        if not self._held(row, owner, "scheduled"):
            return False
        row.state, row.last_error, row.lease_owner, row.lease_until = "cancelled", reason, None, None
        return True

    async def claim_sends(self, now: datetime, owner: str, lease: timedelta, limit: int) -> list[SendJob]:
        due = sorted(
            (r.next_attempt_at, key) for key, r in self.sends.items()
            if r.state == "pending" and r.next_attempt_at <= now and self._free(r.lease_until)
        )[:limit]  # fmt: skip
        jobs = []
        for _, key in due:
            row = self.sends[key]
            row.lease_owner, row.lease_until, row.attempts = owner, self.clock.now() + lease, row.attempts + 1
            document = self.deliveries[key[:2]].document
            assert document is not None
            jobs.append(SendJob(*key, message_id=row.message_id, attempts=row.attempts,
                                in_doubt=row.data_started_at is not None, filename=document.filename,
                                subject=document.subject, body=document.body, pdf=document.pdf,
                                composed_at=document.rendered_at))  # fmt: skip
        return jobs

    async def data_starting(self, key: SendKey, owner: str, lease: timedelta, now: datetime) -> bool:
        row = self.sends[key]
        if self.stolen or not self._held(row, owner, "pending") or self._free(row.lease_until):
            return False
        row.in_doubt_resends += row.data_started_at is not None
        row.data_started_at, row.lease_until = now, self.clock.now() + lease
        return True

    async def sent(self, key: SendKey, owner: str, now: datetime, reply: str) -> bool:
        row = self.sends[key]
        if not self._held(row, owner, "pending"):
            return False
        row.state, row.sent_at, row.reply, row.last_error, row.lease_owner, row.lease_until = (
            "sent", now, reply, None, None, None)  # fmt: skip
        return True

    async def send_retry(self, key: SendKey, owner: str, error: str, at: datetime) -> bool:
        row = self.sends[key]
        if not self._held(row, owner, "pending"):
            return False
        row.next_attempt_at, row.last_error, row.lease_owner, row.lease_until = at, error, None, None
        return True

    async def send_failed(self, key: SendKey, owner: str, error: str, now: datetime) -> bool:
        row = self.sends[key]
        if not self._held(row, owner, "pending"):
            return False
        row.state, row.failed_at, row.last_error, row.lease_owner, row.lease_until = "failed", now, error, None, None
        return True

    async def hand_back(self, key: SendKey, owner: str) -> bool:
        row = self.sends[key]
        if not self._held(row, owner, "pending"):
            return False
        row.lease_owner, row.lease_until, row.attempts = None, None, row.attempts - 1
        return True

    async def renew(self, renders: Sequence[DeliveryKey], sends: Sequence[SendKey], owner: str,
                    lease: timedelta) -> None:  # fmt: skip
        rows: list[DeliveryRow | SendRow] = [*(self.deliveries[k] for k in renders), *(self.sends[k] for k in sends)]
        for row in rows:
            if row.lease_owner == owner:
                row.lease_until = self.clock.now() + lease

    async def next_due(self) -> datetime | None:
        times = [
            max(r.next_attempt_at, r.lease_until or r.next_attempt_at)
            for r in self.deliveries.values() if r.state == "scheduled" and r.next_attempt_at is not None
        ] + [
            max(r.next_attempt_at, r.lease_until or r.next_attempt_at)
            for r in self.sends.values() if r.state == "pending"
        ]  # fmt: skip
        return min(times, default=None)


class FakeMailServer(CouncilMailer):
    """The real message, a pretend conversation: each recipient's answers are queued by the test ("ok" after them).

    down: no connection (nothing sent); refused: 550 at RCPT; no_answer: the server takes the
    message but its 250 never comes (as a kill -9 or a lost connection leaves it).
    """

    def __init__(self) -> None:
        super().__init__(SmtpServer("127.0.0.1", 25), "raadsrapporter@politi.example", timeout=10)
        self.answers: dict[str, list[str]] = {}
        self.received: list[EmailMessage] = []

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.received if m["To"] == address]

    async def send(self, message: EmailMessage, *, timeout: float, before_data: BeforeData) -> SmtpResult:
        queued = self.answers.get(str(message["To"]), [])
        answer = queued.pop(0) if queued else "ok"
        if answer == "down":
            return SmtpResult("retry", "SMTPConnectError: Error connecting to 127.0.0.1 on port 25")
        if answer == "refused":
            return SmtpResult("failed", "SMTP refused the recipient: 550 5.1.1 no such user")
        await before_data()
        self.received.append(message)
        if answer == "no_answer":
            return SmtpResult("retry", "TimeoutError: ", data_sent=True)
        return SmtpResult("delivered", "SMTP 250 OK", data_sent=True)
