"""Which channels the fetcher follows: the explicit follows, and the channels search finds most (auto-follow).

The explicit follows are the sources' followed and pinned channels (services/common/sources.py,
seeded from FOLLOW_CHANNELS); ``set_sources`` changes them and the excluded set at run time.

**Counting.** For every channel, the stored videos (MongoDB ``videos``) published in the last
``AUTO_FOLLOW_WINDOW_DAYS`` that search found — for any query, all queries together, each video
once — whether or not a followed channel's uploads found it too. A video found by search has a
``found_by`` entry of source ``search``; a video stored before ``found_by`` existed has non-empty
``queries``. The window's range on ``published_at`` is read through the catalogue's
``published_at_video_id`` index.

**Ranking and hysteresis** (``choose_auto``), with N = ``AUTO_FOLLOW_CHANNELS``:

- The candidates are the channels with at least one such video, except the explicit follows
  (the sources' followed and pinned channels) and the excluded and paused ones: explicit follows
  always stay and are followed besides the N, never ranked among them; an excluded channel is
  never auto-followed.
- Candidates are ordered by count, most first; among equal counts a channel auto-followed already
  (an incumbent) comes before one that is not, incumbents among themselves in their previous
  order and the others by channel id. A candidate's **rank** is its position in that order, from 1;
  no two share a rank.
- A channel not followed **joins** when its rank is at most N; a followed one **stays** while its
  rank is at most ⌊1.5·N⌋, and **leaves** when its rank is worse or it has no video in the window.

So when two channels tie, the one followed already keeps its place: a tie never changes the set,
and a channel moving a few places around rank N neither joins nor leaves on each evaluation. The
auto set holds at most ⌊1.5·N⌋ channels; N = 0 turns auto-follow off (explicit follows only).

**When.** The set is chosen when ``load`` runs (the leader's start, from the incumbents the last
leader saved, so a new leader keeps the set), then again hourly, whenever ``current`` finds it due —
every five minutes instead while the auto set holds fewer than N channels: a new deployment's
first searches fill the catalogue within minutes, and waiting an hour to follow its top channels
would leave the units pool idle for that hour.
Each choice is saved in ``fetcher_follows`` (fenced by the lease token when a fence is given), which
the API's ``/api/v1/status`` shows. A failed count keeps the set and is tried again a minute later.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import ValidationError
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, PyMongoError

from services.common.catalogue import VIDEOS_COLLECTION
from services.common.events import CHANNEL_ID_PATTERN
from services.common.fetcher_state import FOLLOWS_COLLECTION, FOLLOWS_ID, AutoFollowDoc, FollowsDoc, as_utc
from services.fetcher.clock import Clock
from services.fetcher.lease import LeaseLostError

logger = logging.getLogger(__name__)

EVALUATION_INTERVAL = timedelta(hours=1)
# While the auto set is short of N (a young catalogue): chosen again this soon.
FILLING_INTERVAL = timedelta(minutes=5)
# After a failed count (MongoDB away): soon again, not an hour later.
RETRY_AFTER_FAILURE = timedelta(minutes=1)
# A followed channel leaves only when it ranks worse than this many times N.
KEEP_FACTOR = 1.5
_CHANNEL_ID = re.compile(CHANNEL_ID_PATTERN)


@dataclass(frozen=True)
class Follow:
    """A followed channel and why: followed explicitly (the sources), or chosen by auto-follow."""

    channel_id: str
    reason: Literal["explicit", "auto"]
    rank: int | None = None  # auto only: its rank among the candidates
    count: int | None = None  # auto only: videos search found in the window


@dataclass(frozen=True)
class AutoFollow:
    """A channel auto-follow chose, and the evaluation it first joined in."""

    channel_id: str
    rank: int
    count: int
    since: datetime


def keep_limit(top_n: int) -> int:
    """The worst rank a followed channel may have and stay: ⌊1.5·N⌋."""
    return math.floor(KEEP_FACTOR * top_n)


def choose_auto(
    counts: Mapping[str, int],
    incumbents: Sequence[AutoFollow],
    *,
    top_n: int,
    explicit: Sequence[str] = (),
    now: datetime,
) -> list[AutoFollow]:
    """The auto set after one evaluation, best rank first (the rules are in the module docstring)."""
    if top_n <= 0:
        return []
    excluded = set(explicit)
    previous = {f.channel_id: (position, f) for position, f in enumerate(incumbents)}
    candidates = [c for c, n in counts.items() if n > 0 and c not in excluded]

    def order(channel_id: str) -> tuple[int, int, int, str]:
        known = previous.get(channel_id)
        # Most videos first; at equal counts incumbents first, in their previous order, then by id.
        return (-counts[channel_id], 0 if known else 1, known[0] if known else 0, channel_id)

    chosen = []
    for rank, channel_id in enumerate(sorted(candidates, key=order), start=1):
        known = previous.get(channel_id)
        if rank <= top_n or (known is not None and rank <= keep_limit(top_n)):
            since = known[1].since if known else now
            chosen.append(AutoFollow(channel_id, rank, counts[channel_id], since))
    return chosen


def search_counts_pipeline(since: datetime, until: datetime) -> list[dict[str, Any]]:
    """Per channel, the videos published in [since, until] that search found."""
    return [
        {
            "$match": {
                "published_at": {"$gte": since, "$lte": until},
                # queries alone only for a video stored before found_by: a channel video's queries may
                # be attributed by text (services/indexer/attribution.py), which is no search find.
                "$or": [
                    {"found_by.source": "search"},
                    {"found_by": {"$exists": False}, "queries.0": {"$exists": True}},
                ],
            }
        },
        {"$group": {"_id": "$channel_id", "count": {"$sum": 1}}},
    ]


async def search_counts(db: AsyncDatabase[dict[str, Any]], since: datetime, until: datetime) -> dict[str, int]:
    """Videos search found per channel in the window (channels with a well-formed id only)."""
    cursor = await db[VIDEOS_COLLECTION].aggregate(search_counts_pipeline(since, until))
    return {
        doc["_id"]: int(doc["count"])
        async for doc in cursor
        if isinstance(doc["_id"], str) and _CHANNEL_ID.fullmatch(doc["_id"])
    }


class ChannelFollows:
    """The followed channels: the explicit follows in their order, then the auto set by rank."""

    def __init__(
        self,
        *,
        explicit: Sequence[str],
        db: AsyncDatabase[dict[str, Any]],
        top_n: int,
        window: timedelta,
        clock: Clock,
        fence: Callable[[], int] | None = None,
        excluded: Collection[str] = (),
    ) -> None:
        self._explicit = list(dict.fromkeys(explicit))
        # Never auto-followed (the sources' excluded and paused channels).
        self._excluded = set(excluded)
        self._db = db
        self._top_n = top_n
        self._window = window
        self._clock = clock
        # The leader's lease token (LeaderLease.check): every save is refused once a newer leader wrote.
        self._fence = fence
        self._auto: list[AutoFollow] = []
        self._due_at: datetime | None = None
        self.evaluated_at: datetime | None = None

    @property
    def due_at(self) -> datetime | None:
        """When the set is chosen again (None: at the next ``current``)."""
        return self._due_at

    def set_sources(self, explicit: Sequence[str], excluded: Collection[str]) -> None:
        """The sources changed: follow these explicitly, never auto-follow ``excluded``.

        An excluded channel leaves the auto set at once; any change has the set chosen again at
        the next ``current`` (and saved for /api/v1/status)."""
        explicit, excluded = list(dict.fromkeys(explicit)), set(excluded)
        if explicit == self._explicit and excluded == self._excluded:
            return
        self._explicit, self._excluded = explicit, excluded
        self._auto = [a for a in self._auto if a.channel_id not in excluded and a.channel_id not in explicit]
        self._due_at = None

    async def load(self) -> None:
        """Read the set the last leader saved (its incumbents keep their places), then choose at once."""
        raw = await self._db[FOLLOWS_COLLECTION].find_one({"_id": FOLLOWS_ID})
        doc = None
        try:
            doc = FollowsDoc.model_validate(raw) if raw is not None else None
        except ValidationError:
            # Choosing afresh costs one aggregation; a leader that cannot start costs every read.
            logger.warning("auto-follow: ignoring a malformed saved set; choosing afresh")
        if doc is not None:
            self._auto = [AutoFollow(a.channel_id, a.rank, a.count, as_utc(a.since)) for a in doc.auto]
            self.evaluated_at = as_utc(doc.evaluated_at) if doc.evaluated_at else None
        self._due_at = None
        await self._evaluate(self._clock.now())

    async def current(self, now: datetime) -> list[Follow]:
        """The followed channels, the auto set chosen again first when it is due."""
        if self._due_at is None or now >= self._due_at:
            await self._evaluate(now)
        return self.follows()

    def follows(self) -> list[Follow]:
        explicit = [Follow(channel_id, "explicit") for channel_id in self._explicit]
        auto = [a for a in self._auto if a.channel_id not in self._excluded]  # a failed count kept an old set
        return explicit + [Follow(a.channel_id, "auto", a.rank, a.count) for a in auto]

    async def _evaluate(self, now: datetime) -> None:
        try:
            counts = await search_counts(self._db, now - self._window, now) if self._top_n > 0 else {}
            chosen = choose_auto(
                counts, self._auto, top_n=self._top_n, explicit=[*self._explicit, *self._excluded], now=now
            )
            await self._save(chosen, now)
        except PyMongoError as exc:
            logger.warning(
                "auto-follow: could not choose the followed channels; keeping the set",
                extra={
                    "error": f"{type(exc).__name__}: {exc}",
                    "retry_in_seconds": RETRY_AFTER_FAILURE.total_seconds(),
                },
            )
            self._due_at = now + RETRY_AFTER_FAILURE
            return
        self._log_changes(chosen, len(counts))
        self._auto = chosen
        self.evaluated_at = now
        self._due_at = now + (EVALUATION_INTERVAL if len(chosen) >= self._top_n else FILLING_INTERVAL)

    def _log_changes(self, chosen: list[AutoFollow], candidates: int) -> None:
        before = {a.channel_id for a in self._auto}
        after = {a.channel_id for a in chosen}
        if before != after:
            logger.info(
                "auto-follow: the followed channels changed",
                extra={
                    "joined": sorted(after - before),
                    "left": sorted(before - after),
                    "auto_followed": len(chosen),
                    "candidates": candidates,
                    "top_n": self._top_n,
                },
            )

    async def _save(self, chosen: list[AutoFollow], now: datetime) -> None:
        token = self._fence() if self._fence is not None else 0
        doc = FollowsDoc(
            explicit=self._explicit,
            auto=[AutoFollowDoc(channel_id=a.channel_id, rank=a.rank, count=a.count, since=a.since) for a in chosen],
            top_n=self._top_n,
            window_seconds=self._window.total_seconds(),
            evaluated_at=now,
            lease_token=token,
        )
        fence: dict[str, Any] = {"$or": [{"lease_token": {"$exists": False}}, {"lease_token": {"$lte": token}}]}
        try:
            await self._db[FOLLOWS_COLLECTION].update_one(
                {"_id": FOLLOWS_ID, **fence}, {"$set": doc.model_dump(by_alias=True, exclude={"id"})}, upsert=True
            )
        except DuplicateKeyError:
            # The document exists with a newer token: a newer leader chose the set.
            raise LeaseLostError("follow set write refused: a newer leader owns it") from None
