"""Time as the fetcher sees it: UTC now, sleeps, and YouTube's quota day (midnight Pacific time).

The clock is injectable so tests can drive the fetcher with the emulator's settable clock (and
cross midnight in Los Angeles without waiting for it).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from services.common.timefmt import utc_now

# YouTube's daily quotas reset at midnight Pacific time, daylight saving included.
PACIFIC = ZoneInfo("America/Los_Angeles")


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware (UTC)."""
        ...

    async def sleep_until(self, moment: datetime) -> None:
        """Return once this clock reads ``moment`` or later."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return utc_now()

    async def sleep_until(self, moment: datetime) -> None:
        # Re-checked in slices so a wall-clock step (NTP, a suspended VM) cannot oversleep by hours.
        left = (moment - utc_now()).total_seconds()
        while left > 0:
            await asyncio.sleep(min(left, 60.0))
            left = (moment - utc_now()).total_seconds()


def pacific_day(moment: datetime) -> date:
    return moment.astimezone(PACIFIC).date()


def next_reset(moment: datetime) -> datetime:
    """The next midnight in Los Angeles after ``moment`` (07:00 or 08:00 UTC)."""
    tomorrow = pacific_day(moment) + timedelta(days=1)
    return datetime.combine(tomorrow, time(0), tzinfo=PACIFIC).astimezone(UTC)


async def sleep_unless(clock: Clock, until: datetime, stop: asyncio.Event) -> bool:
    """Sleep on ``clock`` until ``until`` or until ``stop`` is set; True when stopped."""
    if stop.is_set():
        return True
    if until <= clock.now():
        return False
    sleeper = asyncio.ensure_future(clock.sleep_until(until))
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sleeper, stopper):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return stop.is_set()
