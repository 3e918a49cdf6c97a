"""What an item's polls measured, smoothed: its upload rate and the calls a poll makes per second of interval.

Each poll adds the new videos it found, its search calls and the seconds since the item's previous
poll (for its first poll, the seconds its first window reached back). The estimates are ratios of
decayed sums — videos ÷ seconds, calls beyond each poll's first ÷ seconds — so a poll counts in
proportion to the stretch of time it covered, a burst in one poll moves the rate by only a part of
its size, and a lasting change is followed within a few polls. The cost remembers longer than the
rate (several late sweeps), so a sweep's extra pages do not make it swing from poll to poll.

The sums are saved with the item's state (``fetcher_queries``), so the API rebuilds the same planner
inputs, and a new leader goes on from them.
"""

from __future__ import annotations

from dataclasses import dataclass

# Each poll the rate's sums keep this share of what they held: about five polls of memory.
RATE_DECAY = 0.8


def cost_decay(late_sweep_every: int) -> float:
    """The cost's sums remember about three late sweeps' worth of polls."""
    return 1.0 - 1.0 / (3 * max(1, late_sweep_every))


@dataclass
class PollStats:
    videos: float = 0.0  # decayed new videos
    video_seconds: float = 0.0  # decayed seconds those videos came in
    extra_calls: float = 0.0  # decayed calls beyond each poll's first
    call_seconds: float = 0.0  # decayed seconds those calls covered
    polls: int = 0

    def record(self, *, videos: int, calls: int, seconds: float, cost_decay: float, fixed_calls: float = 1.0) -> None:
        """One poll: ``videos`` new, ``calls`` search calls, ``seconds`` since the previous poll."""
        if seconds <= 0 or calls <= 0:
            return  # nothing was read (no key, a lost lease before the first call): nothing measured
        self.videos = RATE_DECAY * self.videos + videos
        self.video_seconds = RATE_DECAY * self.video_seconds + seconds
        self.extra_calls = cost_decay * self.extra_calls + max(0.0, calls - fixed_calls)
        self.call_seconds = cost_decay * self.call_seconds + seconds
        self.polls += 1

    @property
    def upload_rate(self) -> float:
        """New videos a second (0 before the first poll)."""
        return self.videos / self.video_seconds if self.video_seconds > 0 else 0.0

    @property
    def extra_calls_per_second(self) -> float:
        """Calls beyond a poll's first, per second of its interval."""
        return self.extra_calls / self.call_seconds if self.call_seconds > 0 else 0.0
