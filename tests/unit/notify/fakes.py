"""An in-memory NotifyRepository and its unit of work, so the use cases in services/notify/handlers.py run without
Postgres. tests/support/contracts/notify.py runs one suite against this fake and the Postgres repository."""

from __future__ import annotations

import contextlib
import copy
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, replace
from datetime import datetime, timedelta
from typing import Any

from services.notify.adapters.repository import delivery_from_row, to_cloud_events
from services.notify.domain.alert import Alert
from services.notify.domain.delivery import Delivery
from services.notify.handlers import AuditEntry, Unreadable
from shared import tracing
from shared.events import CloudEvent, EventData


class FakeNotifyRepository:
    """Alerts, deliveries (dicts with the table's columns), audit trail and outbox as plain collections.

    Like the Postgres one, a delivery leased to a worker is in flight: an ack's cancel leaves it
    alone (here a lease never runs out by itself). `unreadable` alert ids claim as Unreadable.

    It is its own unit of work: `transaction()` yields itself and, as a rollback does, undoes what
    the block wrote when it raises.
    """

    def __init__(self) -> None:
        self.case_refs: dict[uuid.UUID, tuple[str, str, str]] = {}
        self.alerts: dict[uuid.UUID, Alert] = {}
        self.deliveries: dict[uuid.UUID, dict[str, Any]] = {}  # in the order written
        self.audit_rows: list[dict[str, Any]] = []
        self.outbox: list[CloudEvent] = []
        self.parked: dict[uuid.UUID, str] = {}
        self.disabled: dict[str, str] = {}
        self.used_links: set[uuid.UUID] = set()
        self.unreadable: set[uuid.UUID] = set()
        self.creations_locked: list[uuid.UUID] = []

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[FakeNotifyRepository]:
        async with self.savepoint():
            yield self

    # --- NotifyRepository ---

    async def remember_case(self, case_id: uuid.UUID, reference: str, category: str, kommune: str) -> bool:
        first = case_id not in self.case_refs
        self.case_refs.setdefault(case_id, (reference, category, kommune))
        return first

    async def reference_of(self, case_id: uuid.UUID) -> str | None:
        known = self.case_refs.get(case_id)
        return known[0] if known else None

    async def lock_new_alert(self, alert_id: uuid.UUID) -> None:
        self.creations_locked.append(alert_id)

    async def lock_alert(self, alert_id: uuid.UUID) -> Alert | None:
        return self.alerts.get(alert_id)

    async def lock_alert_of_case(self, alert_id: uuid.UUID, case_id: uuid.UUID) -> tuple[Alert | None, str | None]:
        return self.alerts.get(alert_id), await self.reference_of(case_id)

    async def save_alert(self, alert: Alert) -> None:
        # As the table's trace_context: the trace a new alert is written in, kept by every later save.
        existing = self.alerts.get(alert.id)
        raised_in = existing.trace_context if existing else alert.trace_context or tracing.current_traceparent()
        self.alerts[alert.id] = replace(alert, trace_context=raised_in)

    async def cancel_stoppable(self, alert_id: uuid.UUID, why: str) -> int:
        cancelled = 0
        for d in self.deliveries.values():
            if d["alert_id"] == alert_id and d["state"] == "pending" and d["stoppable"] and d["lease_owner"] is None:
                d.update(state="cancelled", last_error=why)
                cancelled += 1
        return cancelled

    async def add_deliveries(self, deliveries: Sequence[Delivery]) -> list[Delivery]:
        added = []
        for delivery in deliveries:
            # ON CONFLICT DO NOTHING: the id, or UNIQUE (notice_id, recipient_id, channel_no).
            same = (delivery.notice_id, delivery.recipient_id, delivery.channel_no)
            if delivery.id in self.deliveries or any(
                (d["notice_id"], d["recipient_id"], d["channel_no"]) == same for d in self.deliveries.values()
            ):
                continue
            self.deliveries[delivery.id] = asdict(delivery) | {"lease_owner": None, "lease_until": None,
                                                              "last_error": None}  # fmt: skip
            added.append(delivery)
        return added

    async def audit(
        self, alert_id: uuid.UUID, at: datetime, kind: str, detail: dict[str, Any], actor: str | None = None
    ) -> None:
        self.audit_rows.append({"alert_id": alert_id, "at": at, "kind": kind, "actor": actor, "detail": detail})

    async def audit_many(self, alert_id: uuid.UUID, at: datetime, entries: Sequence[AuditEntry]) -> None:
        for kind, detail, actor in entries:
            await self.audit(alert_id, at, kind, detail, actor)

    async def emit(self, events: Sequence[EventData], *, kommune: str) -> list[CloudEvent]:
        envelopes = to_cloud_events(events, kommune)
        known = {e.id for e in self.outbox}
        # Like the outbox's ON CONFLICT (event_id) DO NOTHING: a recomputed fact is written once.
        self.outbox.extend(e for e in envelopes if e.id not in known)
        return envelopes

    async def claim_due_alerts(self, now: datetime, limit: int) -> list[Alert | Unreadable]:
        due = sorted(
            (a for a in self.alerts.values() if a.next_timer_at is not None and a.next_timer_at <= now),
            key=lambda a: a.next_timer_at or now,
        )[:limit]
        return [Unreadable(a.id, KeyError("steps")) if a.id in self.unreadable else a for a in due]

    async def park_timers(self, parked: Sequence[tuple[uuid.UUID, str]]) -> None:
        for alert_id, why in parked:
            self.alerts[alert_id] = replace(self.alerts[alert_id], next_timer_at=None)
            self.parked[alert_id] = why

    async def share_alert(self, alert_id: uuid.UUID) -> dict[str, Any] | None:
        alert = self.alerts.get(alert_id)
        return None if alert is None else {"case_id": alert.case_id, "kommune": alert.kommune, "state": alert.state}

    async def lock_delivery(self, delivery_id: uuid.UUID, owner: str) -> Delivery | None:
        row = self.deliveries.get(delivery_id)
        return delivery_from_row(row) if row is not None and row["lease_owner"] == owner else None

    async def mark_delivered(self, delivery_id: uuid.UUID, at: datetime, owner: str) -> bool:
        row = self.deliveries.get(delivery_id)
        if row is None or row["lease_owner"] != owner:
            return False
        row.update(state="delivered", delivered_at=at, lease_owner=None, lease_until=None, last_error=None)
        return True

    async def mark_retry(self, delivery_id: uuid.UUID, at: datetime, error: str) -> None:
        self.deliveries[delivery_id].update(
            next_attempt_at=at, last_error=error[:500], lease_owner=None, lease_until=None
        )

    async def mark_failed(self, delivery_id: uuid.UUID, error: str) -> None:
        self.deliveries[delivery_id].update(state="failed", last_error=error[:500], lease_owner=None, lease_until=None)

    async def disable_endpoint(self, target: str, reason: str) -> None:
        self.disabled.setdefault(target, reason)

    async def use_ack_link(self, delivery_id: uuid.UUID, alert_id: uuid.UUID) -> bool:
        if delivery_id in self.used_links:
            return False
        self.used_links.add(delivery_id)
        return True

    @contextlib.asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """Like a SAVEPOINT: an error inside restores everything written inside, then propagates."""
        saved = copy.deepcopy(self.__dict__)
        try:
            yield
        except BaseException:
            self.__dict__.update(saved)
            raise

    # --- what the delivery worker does around the use cases (claim_deliveries in the adapter) ---

    def claim_deliveries(
        self, now: datetime, owner: str, lease: timedelta = timedelta(seconds=30), *, recipient: str | None = None
    ) -> list[Delivery]:
        """Due pending deliveries (of `recipient`, or all) taken under a lease, one attempt more each, as the
        worker's claim does."""
        claimed = []
        for d in self.deliveries.values():
            free = d["lease_until"] is None or d["lease_until"] < now
            mine = recipient is None or d["recipient_id"] == recipient
            if d["state"] == "pending" and d["next_attempt_at"] <= now and free and mine:
                d.update(lease_owner=owner, lease_until=now + lease, attempts=d["attempts"] + 1)
                claimed.append(delivery_from_row(d))
        return claimed

    def of(self, alert_id: uuid.UUID, **match: Any) -> list[dict[str, Any]]:
        """The alert's deliveries whose columns equal `match`."""
        return [
            d
            for d in self.deliveries.values()
            if d["alert_id"] == alert_id and all(d[k] == v for k, v in match.items())
        ]

    def kinds(self, alert_id: uuid.UUID) -> list[str]:
        return [row["kind"] for row in self.audit_rows if row["alert_id"] == alert_id]
