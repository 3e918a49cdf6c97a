"""A followed channel as a work item: each poll reads its uploads playlist and hands on what is new.

The first poll asks channels.list (1 unit) for the uploads playlist id and remembers it; an id
channels.list does not know marks the channel ``not_found`` with one WARNING, and it is not read
again until the configuration (FOLLOW_CHANNELS) changes. A read asks playlistItems.list (1 unit a
page, newest upload first) and goes on to the next page only while a page holds no known video
and reaches no further back than the channel's floor (``channel_progress.py``), at most
``MAX_PAGES_PER_CYCLE`` pages; once a day the read is deep: every page, so a scheduled or
late-published video sitting below newer uploads is found. New videos (by id) go to the channel
delivery, which publishes them batched with other channels' and tells the channel what the broker
confirmed (``confirmed``); only then are they known, and the channel's state is saved, fenced.

Every poll measures, for the planner, the new videos it found, the units it spent and the seconds
since the channel's previous read; and, for freshness, each video's delay from its
``videoPublishedAt`` to the broker's confirm (not for the videos of the first read's lookback).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.common.events import VideoEvent
from services.common.poll_plan import ItemInputs
from services.fetcher.channel_delivery import ChannelDelivery
from services.fetcher.channel_progress import ChannelProgress
from services.fetcher.clock import Clock
from services.fetcher.gateway import NoUsableKeyError, YouTubeGateway
from services.fetcher.keys import KeyPool
from services.fetcher.lease import LeaderLease, LeaseLostError
from services.fetcher.metrics import FetcherMetrics
from services.fetcher.playlist import playlist_params, read_page, uploads_playlist_id
from services.fetcher.store import FetcherStore
from services.fetcher.youtube_client import ErrorKind, YouTubeApiError

logger = logging.getLogger(__name__)

# A deep read stops here however long the channel's history (10,000 uploads).
DEEP_READ_MAX_PAGES = 200
# The cost's sums remember about three deep reads' worth of reads at a few minutes apart.
CHANNEL_COST_DECAY = 0.99


@dataclass(frozen=True)
class ChannelParts:
    """What every followed channel's polls use."""

    gateway: YouTubeGateway
    delivery: ChannelDelivery
    store: FetcherStore
    pool: KeyPool
    lease: LeaderLease
    clock: Clock
    metrics: FetcherMetrics
    max_pages: int  # MAX_PAGES_PER_CYCLE: a read's page cap (a deep read's is DEEP_READ_MAX_PAGES)
    lookback_seconds: float  # INITIAL_LOOKBACK_SECONDS: how far back a channel's first read publishes
    config_digest: str  # FOLLOW_CHANNELS' digest, part of every not_found verdict's configuration


class FollowedChannel:
    def __init__(
        self, channel_id: str, parts: ChannelParts, weight: float = 1.0, config_digest: str | None = None
    ) -> None:
        self.channel_id = channel_id
        self.weight = weight
        self._parts = parts
        # The configuration a not_found verdict belongs to (the roster's: the channel's source document too).
        self.config_digest = config_digest or parts.config_digest
        self._progress: ChannelProgress | None = None
        self._reading = False  # a read is under way (its videos may be confirmed meanwhile)
        self._read_complete = False  # the last read went as far as it had to

    @property
    def name(self) -> str:
        return self.channel_id

    @property
    def log_context(self) -> dict[str, str]:
        return {"channel_id": self.channel_id}

    @property
    def progress(self) -> ChannelProgress:
        assert self._progress is not None, "load() first"
        return self._progress

    @property
    def loaded(self) -> ChannelProgress | None:
        """Its progress, once ``load`` read it."""
        return self._progress

    @property
    def readable(self) -> bool:
        """False once channels.list said it does not know the channel (under this configuration)."""
        return self._progress is None or self._progress.status == "ok"

    def reconfigure(self, config_digest: str) -> None:
        """The channel's configuration changed (its source document): a not_found of the old one is asked again."""
        self.config_digest = config_digest
        progress = self._progress
        if progress is not None and progress.status == "not_found" and progress.config_digest != config_digest:
            progress.status = "ok"  # readable again: its next read asks channels.list

    def plan_inputs(self) -> ItemInputs:
        stats = self._progress.poll_stats if self._progress is not None else None
        return ItemInputs(
            name=self.channel_id,
            upload_rate=stats.upload_rate if stats else 0.0,
            extra_calls_per_second=stats.extra_calls_per_second if stats else 0.0,
            weight=self.weight,
        )

    async def load(self, now: datetime) -> None:
        """Start from what the previous leader saved; a not_found of another configuration is asked again."""
        parts = self._parts
        doc = await parts.store.load_channel(self.channel_id)
        if doc is None:
            progress = ChannelProgress.fresh(self.channel_id, now, parts.lookback_seconds)
        else:
            progress = ChannelProgress.from_doc(doc, now, parts.lookback_seconds)
        if progress.status == "not_found" and progress.config_digest != self.config_digest:
            progress.status = "ok"
        self._progress = progress
        if doc is None:
            # Saved before the first read: a crash in it must not move the channel's origin.
            await parts.store.save_channel(progress.to_doc(now), parts.lease.check())

    async def poll(self) -> None:
        """One read (deep once a day); raises NoUsableKeyError or LeaseLostError after saving."""
        parts, progress = self._parts, self.progress
        if progress.status != "ok":
            return
        token = parts.lease.check()
        started = parts.clock.now()
        since = progress.last_read_at or progress.origin
        units_before = parts.gateway.read_units
        found = 0
        error: Exception | None = None
        try:
            if progress.uploads_playlist_id is None and not await self._resolve():
                await parts.store.save_channel(progress.to_doc(parts.clock.now()), token)
                return
            deep = progress.deep_read_due(started)
            self._reading = True
            found, complete = await self._read(deep)
            self._reading, self._read_complete = False, complete
            # Settled once the read went as far as it had to and the broker confirmed all it found.
            progress.unsettled = not complete or bool(parts.delivery.pending_ids(self.channel_id))
            if deep and complete:
                progress.last_deep_read_at = started
        except (LeaseLostError, NoUsableKeyError) as exc:
            error = exc
        except YouTubeApiError as exc:
            if exc.kind is not ErrorKind.NOT_FOUND:
                error = exc
            else:
                # The playlist went away (the channel was closed, or the id changed): ask again next time.
                logger.warning("uploads playlist not found; asking channels.list again", extra=self.log_context)
                progress.uploads_playlist_id = None
        except Exception as exc:
            error = exc
        if self._reading:  # cut short by the error
            self._reading, self._read_complete = False, False
            progress.unsettled = True
        units = parts.gateway.read_units - units_before
        progress.units_last_read = units
        progress.poll_stats.record(
            videos=found, calls=units, seconds=(started - since).total_seconds(), cost_decay=CHANNEL_COST_DECAY
        )
        if units > 0:
            progress.last_read_at = started
            parts.metrics.channel_last_read.labels(self.channel_id).set(started.timestamp())
        now = parts.clock.now()
        await parts.store.save_keys(parts.pool.take_dirty(now), token)
        await parts.store.save_channel(progress.to_doc(now), token)
        if isinstance(error, (LeaseLostError, NoUsableKeyError)):
            raise error
        if error is not None:
            logger.warning(
                "channel read cut short; the next read tries again",
                extra={"channel_id": self.channel_id, "error": str(error)[:300]},
            )

    async def _resolve(self) -> bool:
        """Ask channels.list for the uploads playlist; False (and not_found) for an unknown channel."""
        progress = self.progress
        playlist = uploads_playlist_id(await self._parts.gateway.channels(self.channel_id))
        if playlist is None:
            progress.status = "not_found"
            progress.config_digest = self.config_digest
            logger.warning(
                "followed channel not found by channels.list: not read until the configuration changes",
                extra=self.log_context,
            )
            return False
        progress.uploads_playlist_id = playlist
        return True

    async def _read(self, deep: bool) -> tuple[int, bool]:
        """Read the uploads playlist from its newest upload: the new videos handed on, and whether it went
        as far as it had to (not cut by the page cap)."""
        parts, progress = self._parts, self.progress
        assert progress.uploads_playlist_id is not None
        page_token: str | None = None
        met: set[str] = set()
        found = 0
        for _ in range(DEEP_READ_MAX_PAGES if deep else parts.max_pages):
            body = await parts.gateway.playlist_items(playlist_params(progress.uploads_playlist_id, page_token))
            now = parts.clock.now()
            page = read_page(body, self.channel_id, now)
            if page.unusable:
                parts.metrics.skipped_items.labels(f"channel {self.channel_id}").inc(page.unusable)
            handed = parts.delivery.pending_ids(self.channel_id)
            fresh = [
                e for e in page.videos if e.video_id not in handed and progress.is_new(e.video_id, e.published_at, now)
            ]
            ids = {e.video_id for e in page.videos} | set(page.pending)
            looped = bool(ids) and ids <= met  # page tokens leading back over pages read
            met |= ids
            # Known before this read: a full batch handed on below is confirmed (and known) at once.
            reached_known = any(e.video_id in progress.known for e in page.videos)
            if fresh:
                found += len(fresh)
                progress.unsettled = True  # saved with any confirm before the read ends
                await parts.delivery.add(self, list({e.video_id: e for e in fresh}.values()))
            page_token = page.next_page_token
            if page_token is None or looped:
                return found, True
            below_floor = page.oldest_upload is None or page.oldest_upload < progress.floor(now)
            if not deep and (reached_known or below_floor):
                return found, True
        return found, False

    def knows(self, video_id: str) -> bool:
        """Whether the video was published for this channel before (a push of it is a refresh)."""
        return self._progress is not None and video_id in self._progress.known

    async def confirmed(self, events: Sequence[VideoEvent], at: datetime) -> None:
        """The broker confirmed these: known from now on, counted, saved (fenced)."""
        parts, progress = self._parts, self.progress
        # The first read publishes its lookback: those delays say nothing about freshness.
        first_read_at = progress.origin + timedelta(seconds=parts.lookback_seconds)
        delays = [(at - e.published_at).total_seconds() for e in events if e.published_at >= first_read_at]
        if delays:
            progress.freshness.add(delays, at)
        progress.record({e.video_id: e.published_at for e in events}, at)
        if not self._reading and self._read_complete and not parts.delivery.pending_ids(self.channel_id):
            progress.unsettled = False  # the read ended complete, and the last of its videos is confirmed
        await parts.store.save_channel(progress.to_doc(parts.clock.now()), parts.lease.check())
