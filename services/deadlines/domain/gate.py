"""The breach gate: a warning or breach fires only once every event that could have stopped it is known.

A deadline is met by a police action on cases.v1 (`on_scene`, ...). Were the timer to fire by the
clock alone, a service whose consumer is behind (restarted and not yet assigned its partitions,
stopped, lagging) would declare a breach for a case whose stop action has been on the bus for
seconds: a breach that is not one. So the timer fires a warning or breach that falls due at `t`
only when the consumer has processed everything appended to cases.v1 before `t`.

The consumer side records, per partition, a time up to which it has caught up (see
`entrypoints/progress.py`). The gate is the least of these over every partition of the topic,
not the one partition a case's events are keyed to: the per-partition gate would need the
producer's partitioner and an unchanged partition count to hold for every case ever reported,
and a wrong guess there would breach early in silence, while the cost of the global gate (one
lagging partition holds every deadline) is only a delay, and a visible one
(`deadlines_breach_gate_lag_seconds`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime


def caught_up_until(progress: Mapping[int, datetime | None]) -> datetime | None:
    """The time before which every partition's messages have been processed; None while unknown.

    `progress` maps each partition number of the topic to the time its consumer caught up as of
    (None: not yet). Partitions are numbered 0..n-1, so a gap is a partition with no record: not
    caught up. No partitions at all (the consumer has never seen the topic) is not caught up either.
    """
    if not progress:
        return None
    if set(progress) != set(range(max(progress) + 1)):
        return None
    times = list(progress.values())
    if any(t is None for t in times):
        return None
    return min(t for t in times if t is not None)


def firing_horizon(now: datetime, gate: datetime | None) -> datetime | None:
    """Up to when warnings and breaches may fire: `now`, held back to the gate; None while it is shut.

    Deadlines are fired as of this time (not `now`), so a deadline whose warning is past the gate
    but whose breach is not gets its warning, and its breach only once the gate passes it.
    """
    if gate is None:
        return None
    return min(now, gate)


def held_back(next_fire_at: datetime | None, now: datetime, gate: datetime | None) -> bool:
    """True when something has fallen due by the clock but the gate holds it."""
    if next_fire_at is None or next_fire_at > now:
        return False
    horizon = firing_horizon(now, gate)
    return horizon is None or next_fire_at > horizon
