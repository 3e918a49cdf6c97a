"""The quota budget: how often the fetcher may poll so the day's calls last until the reset.

The effective interval is the larger of ``POLL_INTERVAL_SECONDS`` and the interval that spreads
the search calls left on all usable projects evenly over the time to the next midnight Pacific
time, for all queries together. A cycle's cost is measured over recent cycles — head polls with
their extra pages, and the late sweeps that stand in for a head poll every ``LATE_SWEEP_EVERY``
cycles — and never taken below its floor of one call per query. Catch-up walks
(the first cycle after a start, gaps left by cut walks) do not recur, and the calls they spent
are already out of the calls left, so they are not counted as a cycle's cost.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime
from statistics import fmean

from services.fetcher.clock import next_reset
from services.fetcher.keys import KeyPool


@dataclass(frozen=True)
class Plan:
    calls_left: int
    calls_per_cycle: float
    reset_at: datetime
    seconds_to_reset: float
    effective_interval: float


class BudgetPlanner:
    def __init__(self, poll_interval: float, queries: int, late_sweep_every: int) -> None:
        self._poll_interval = poll_interval
        self.floor_per_cycle = float(queries)
        # Long enough to hold a few sweeps, short enough to follow a change in upload rate.
        self._recent: deque[int] = deque(maxlen=max(12, 3 * late_sweep_every))

    def record_cycle(self, search_calls: int) -> None:
        self._recent.append(search_calls)

    @property
    def calls_per_cycle(self) -> float:
        measured = fmean(self._recent) if self._recent else 0.0
        return max(self.floor_per_cycle, measured)

    def plan(self, pool: KeyPool, now: datetime) -> Plan:
        reset_at = next_reset(now)
        to_reset = max(0.0, (reset_at - now).total_seconds())
        left = pool.calls_left(now)
        per_cycle = self.calls_per_cycle
        if left <= 0:
            interval = to_reset
        else:
            interval = max(self._poll_interval, to_reset * per_cycle / left)
        return Plan(
            calls_left=left,
            calls_per_cycle=per_cycle,
            reset_at=reset_at,
            seconds_to_reset=to_reset,
            effective_interval=interval,
        )
