"""Whether a service's background loops make progress: one record read by /readyz, /healthz and the metrics.

A process can answer HTTP while every loop that does its real work is stuck (it happened: after a
Postgres restart every timer retried a dead connection for ever and /readyz said "ready"). So each
loop reports here when it completes a round, and the service's probes judge by that:

- **ready** (/readyz, Kubernetes readinessProbe): every loop completed a round within its
  `ready_bound` (30 s by default, longer for a loop that sleeps longer). A loop held up by a
  dependency that is away (Postgres, Kafka) makes the instance not ready: it cannot do its work,
  so a load balancer should send the work elsewhere. Nothing is restarted for it.
- **live** (/healthz, livenessProbe): no loop has been stalled for `live_bound` (5 minutes) *while
  Postgres and Kafka answer*. A loop that cannot progress although its dependencies are there is a
  fault of this process that a restart cures; restarting while Postgres is away cures nothing, so
  an outage never fails liveness.

Two kinds of loop: a *timer* (relay, scheduler, delivery worker) completes a round at least every
few seconds, so silence is a stall; a *consumer* may be idle for hours, so only a failure that
lasts (the database away while a message waits) is a stall.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from prometheus_client import Gauge

LOOP_LAST_ROUND = Gauge(
    "service_loop_last_round_timestamp_seconds",
    "When a background loop (outbox relay, timer, consumer) last completed a round (Unix time)",
    ["service", "loop"],
)
LOOP_STALLED = Gauge(
    "service_loop_stalled_seconds",
    "How long a background loop has gone without completing a round (timers) or has been failing"
    " (consumers); 0 while it makes progress",
    ["service", "loop"],
)
LOOP_READY_BOUND = Gauge(
    "service_loop_ready_bound_seconds",
    "How long a loop may be stalled before the service answers /readyz with 503",
    ["service", "loop"],
)

READY_BOUND_SECONDS = 30.0
LIVE_BOUND_SECONDS = 300.0


@dataclass
class LoopProgress:
    """One loop's record: rounds completed and failures under way."""

    service: str
    name: str
    ready_bound: float
    idle_ok: bool
    started: float = field(default_factory=time.monotonic)
    last_round: float | None = None
    failing_since: float | None = None
    # The dependency the last failure was waiting for ("kafka", "postgres"), when the loop knows it.
    blocked_by: str | None = None

    def __post_init__(self) -> None:
        LOOP_READY_BOUND.labels(self.service, self.name).set(self.ready_bound)

    def round_done(self) -> None:
        """The loop did its work (or found none to do): it is not stuck."""
        self.last_round = time.monotonic()
        self.failing_since = None
        self.blocked_by = None
        LOOP_LAST_ROUND.labels(self.service, self.name).set(time.time())

    def failed(self, blocked_by: str | None = None) -> None:
        """A round failed (a dependency away, an error); the stall counts from the first such failure.

        `blocked_by` names the dependency it waits for, when known: a loop held up only by a dependency
        the service does not need to answer requests (intake's relay while Kafka is away: the outbox
        keeps every report) does not make the service unready; the stall still shows in the metrics.
        """
        if self.failing_since is None:
            self.failing_since = time.monotonic()
        self.blocked_by = blocked_by

    def stalled_for(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        if self.idle_ok:
            return 0.0 if self.failing_since is None else now - self.failing_since
        return now - (self.last_round if self.last_round is not None else self.started)


Probe = Callable[[], Awaitable[bool]]


class Health:
    """The loops of one service instance (one per ServiceRuntime, so tests can run several in a process)."""

    def __init__(
        self, service: str, *, ready_bound: float = READY_BOUND_SECONDS, live_bound: float = LIVE_BOUND_SECONDS
    ) -> None:
        self.service = service
        self.ready_bound = ready_bound
        self.live_bound = live_bound
        self._loops: dict[str, LoopProgress] = {}
        # The dependencies /readyz requires (service_app sets them); None: every stall counts.
        self.required: set[str] | None = None

    def loop(self, name: str, *, idle_ok: bool = False, sleeps_up_to: float = 0.0) -> LoopProgress:
        """Registers a loop; `sleeps_up_to`: its longest sleep between rounds, which widens its bound."""
        bound = max(self.ready_bound, 3 * sleeps_up_to)
        progress = LoopProgress(self.service, name, ready_bound=bound, idle_ok=idle_ok)
        self._loops[name] = progress
        return progress

    @property
    def loops(self) -> list[LoopProgress]:
        return list(self._loops.values())

    def stalled(self, *, live: bool = False) -> dict[str, float]:
        """The loops past their bound (the ready bound, or the live bound), with seconds stalled."""
        now = time.monotonic()
        out: dict[str, float] = {}
        for name, progress in self._loops.items():
            seconds = progress.stalled_for(now)
            if seconds <= (self.live_bound if live else progress.ready_bound):
                continue
            waits_on = progress.blocked_by
            if not live and waits_on is not None and self.required is not None and waits_on not in self.required:
                continue  # held up by a dependency the service answers without (intake and Kafka)
            out[name] = round(seconds, 1)
        return out

    def publish(self) -> None:
        """Sets the stall gauges (run every few seconds, so an alert needs no scrape-time arithmetic)."""
        now = time.monotonic()
        for name, progress in self._loops.items():
            LOOP_STALLED.labels(self.service, name).set(round(progress.stalled_for(now), 1))

    async def live(self, dependencies_answer: Probe) -> dict[str, float]:
        """Loops stalled past the live bound while the dependencies answer: a fault a restart cures."""
        stuck = self.stalled(live=True)
        if stuck and await dependencies_answer():
            return stuck
        return {}
