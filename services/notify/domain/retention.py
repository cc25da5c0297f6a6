"""How long notify keeps what it writes about alerts (docs/privacy.md, "Notify"): the cut-offs at a moment.

Everything an alert leaves behind is counted from the alert's resolution: while an alert is open,
acknowledged or escalated, nothing of it goes. Deliveries name officers and their addresses and go
first; the audit trail (who acknowledged, when, every attempt) and the alert row itself are the
record of who acted, and go last. A used ack link is remembered only while the link could still be
presented: its signature expires `ack_link_max_age` after it was signed, which is no later than its
use, so a row older than that (plus a margin for clocks) guards nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

# Clocks: the link's age is judged by the service's clock, its use stamped by Postgres's; the two
# agree within seconds (shared/clock.py CorrectedClock). An hour is far more than that.
ACK_LINK_MARGIN = timedelta(hours=1)

# What the purge deletes, in the order it deletes it (deliveries before the alerts they belong to).
# (The console's web sessions go by the purge every service with pages runs: shared/websession.py.)
PurgedTable = Literal["deliveries", "alerts", "audit", "case_refs", "used_ack_links", "disabled_endpoints"]
PURGED_TABLES: tuple[PurgedTable, ...] = (
    "deliveries", "alerts", "audit", "case_refs", "used_ack_links", "disabled_endpoints",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Cutoffs:
    """Rows older than these go, at one moment."""

    deliveries_of_alerts_resolved_before: datetime
    alerts_resolved_before: datetime  # the alert, its audit trail and any delivery left
    case_refs_seen_before: datetime  # and no alert of the case left
    ack_links_used_before: datetime
    endpoints_disabled_before: datetime  # a webhook address that answered 410 Gone


@dataclass(frozen=True, slots=True)
class Retention:
    """NOTIFY_DELIVERY_RETENTION, NOTIFY_AUDIT_RETENTION and the ack links' NOTIFY_ACK_LINK_MAX_AGE_SECONDS."""

    deliveries: timedelta
    audit: timedelta
    ack_link_max_age: timedelta
    ack_link_margin: timedelta = ACK_LINK_MARGIN

    def cutoffs(self, now: datetime) -> Cutoffs:
        return Cutoffs(
            deliveries_of_alerts_resolved_before=now - self.deliveries,
            alerts_resolved_before=now - self.audit,
            # A case's reference names its alerts; once the last alert of the case is gone (or none was
            # ever raised) it is kept as long as an alert's trail would have been.
            case_refs_seen_before=now - self.audit,
            ack_links_used_before=now - self.ack_link_max_age - self.ack_link_margin,
            # The address of an officer's endpoint, kept as long as the deliveries to it.
            endpoints_disabled_before=now - self.deliveries,
        )
