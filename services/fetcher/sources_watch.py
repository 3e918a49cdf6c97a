"""The sources watch: the leader follows the queries and channels MongoDB holds, without a restart.

What is searched and read is the ``sources`` collection (services/common/sources.py). A new
leader loads the set (``reload``) before its schedulers load their items, so a standby that
takes over reads the same set. While leading, ``run`` watches the collection with a change
stream and, on any change, loads the whole set again (a few hundred small documents at most)
and gives it to the rosters, which apply the difference, then wakes the schedulers so a new
query is searched within seconds rather than after the current sleep. The stream is opened
*before* each reload, so no change falls between the two.

When the stream breaks (MongoDB restarted or away, or its resume token left the oplog:
``ChangeStreamHistoryLost``), the watch opens a new one and reloads, after a backoff doubling
from ``REOPEN_MIN_SECONDS`` to ``REOPEN_MAX_SECONDS``: a change made while MongoDB was away is
applied once it is back. The backoff runs on the event loop's own time, not the fetcher's clock,
which tests freeze.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, Literal, Protocol

from pymongo.asynchronous.database import AsyncDatabase

from services.common.sources import SOURCES_COLLECTION, SourceSet, load_sources
from services.common.timefmt import format_rfc3339
from services.fetcher.clock import Clock
from services.fetcher.metrics import FetcherMetrics

logger = logging.getLogger(__name__)

REOPEN_MIN_SECONDS = 0.5
REOPEN_MAX_SECONDS = 30.0

# leading: a new leader; opened: the stream first opened; change: a change came; reopen: after a break.
ReloadReason = Literal["leading", "opened", "change", "reopen"]


class SourceFollower(Protocol):
    async def follow(self, sources: SourceSet, now: datetime) -> None:
        """Search or read what ``sources`` says from now on."""
        ...


class SourcesWatch:
    def __init__(
        self,
        *,
        db: AsyncDatabase[dict[str, Any]],
        followers: Sequence[SourceFollower],
        clock: Clock,
        metrics: FetcherMetrics,
    ) -> None:
        self._db = db
        self._followers = list(followers)
        self._clock = clock
        self._metrics = metrics
        self.sources: SourceSet | None = None
        # Goes up by one with every load whose set differs from the one before.
        self.revision = 0
        self.loaded_at: datetime | None = None
        self.watching = False

    async def reload(self, reason: ReloadReason) -> bool:
        """Load the set and hand it to every follower; True when it differs from the last one."""
        sources = await load_sources(self._db)
        now = self._clock.now()
        changed = self.sources is None or _contents(sources) != _contents(self.sources)
        for follower in self._followers:
            await follower.follow(sources, now)
        if changed:
            self.revision += 1
        self.sources, self.loaded_at = sources, now
        self._metrics.sources_reloads.labels(reason).inc()
        if changed:
            logger.info(
                "sources loaded",
                extra={
                    "reason": reason,
                    "revision": self.revision,
                    "queries": len(sources.searched_queries),
                    "channels": len(sources.explicit_channels),
                },
            )
        return changed

    async def run(self, on_change: Callable[[], None]) -> None:
        """Watch until cancelled (the leader stands down or stops), reloading on every change."""
        backoff = REOPEN_MIN_SECONDS
        reason: ReloadReason = "opened"
        while True:
            try:
                await self._watch(reason, on_change)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.watching:  # the stream had been working: start the backoff afresh
                    backoff = REOPEN_MIN_SECONDS
                # MongoDB away or restarted, the resume token gone: reopen and reload the whole set.
                logger.warning(
                    "sources change stream broke; reopening and reloading",
                    extra={"error": f"{type(exc).__name__}: {str(exc)[:300]}", "retry_in_seconds": backoff},
                )
            finally:
                self.watching = False
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, REOPEN_MAX_SECONDS)
            reason = "reopen"

    async def _watch(self, reason: ReloadReason, on_change: Callable[[], None]) -> None:
        stream = await self._db[SOURCES_COLLECTION].watch()
        async with stream:
            # Opened first: a change made during this reload is in the stream too.
            await self._reacted(self.reload(reason), on_change)
            self.watching = True
            async for _change in stream:
                await self._reacted(self.reload("change"), on_change)

    @staticmethod
    async def _reacted(reload: Awaitable[bool], on_change: Callable[[], None]) -> None:
        if await reload:
            on_change()

    def health(self) -> dict[str, Any]:
        """The sources' part of ``/healthz``: the revision, the last load, what is followed."""
        sources = self.sources
        return {
            "sources": {
                "revision": self.revision,
                "loaded_at": format_rfc3339(self.loaded_at) if self.loaded_at else None,
                "watching": self.watching,
                "queries": [q.text for q in sources.searched_queries] if sources else [],
                "explicit_channels": sources.explicit_channels if sources else [],
            }
        }


def _contents(sources: SourceSet) -> tuple[object, ...]:
    """What the fetcher acts on (not the documents' update times)."""
    return (
        tuple((q.text, q.weight) for q in sources.searched_queries),
        tuple(sources.explicit_channels),
        tuple(sorted(sources.excluded_channels | sources.paused_channels)),
    )
