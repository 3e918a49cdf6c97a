"""The followed channels as the channel scheduler's work items, kept in step with the followed set.

The followed set comes from ``ChannelFollows`` (``follows.py``: the sources' explicit channels and
auto-follow, saved for /api/v1/status even with auto-follow off). ``follow`` is given every
source set the sources watch loads and applies it at once: a channel followed is loaded and
registered (due at once), one unfollowed, paused or excluded unregistered. As the scheduler's
hooks the roster registers a work item for every followed channel before a new leader loads
them, and after every cycle sends what the cycle's reads found (one videos.list call for up to
50 videos of any channels), then adds the channels that joined the set and drops those that
left it or that channels.list does not know. It also writes the channels' part of ``/healthz``.

A channel channels.list does not know stays unread until its configuration changes: FOLLOW_CHANNELS
or the channel's own source document (its ``updated_at``), so following it again through the
admin API asks channels.list again, while a restart or another channel's change does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, Protocol

from services.common.sources import SourceSet
from services.common.timefmt import format_rfc3339
from services.fetcher.followed_channel import ChannelParts, FollowedChannel
from services.fetcher.scheduler import Scheduler


class FollowedId(Protocol):
    @property
    def channel_id(self) -> str: ...


class FollowSource(Protocol):
    def set_sources(self, explicit: Sequence[str], excluded: Collection[str]) -> None:
        """Follow these explicitly from now on, and never auto-follow ``excluded``."""
        ...

    async def load(self) -> None:
        """Read the persisted set (a new leader keeps it)."""
        ...

    async def current(self, now: datetime) -> Sequence[FollowedId]:
        """The followed set now (re-chosen when due)."""
        ...


def config_digest(explicit: Sequence[str]) -> str:
    """Names the configuration: a channel found unknown under one is asked again under another."""
    return hashlib.sha256(",".join(sorted(set(explicit))).encode()).hexdigest()[:16]


def channel_digest(base: str, source_stamp: str) -> str:
    """One channel's configuration: FOLLOW_CHANNELS' digest and when its source document last changed."""
    return hashlib.sha256(f"{base}|{source_stamp}".encode()).hexdigest()[:16]


class ChannelRoster:
    def __init__(self, *, follows: FollowSource, parts: ChannelParts) -> None:
        self._follows = follows
        self._parts = parts
        self._channels: dict[str, FollowedChannel] = {}
        # Each channel's source document's updated_at ("" for a channel only auto-follow chose).
        self._stamps: dict[str, str] = {}
        self._scheduler: Scheduler | None = None
        # The sources watch and the scheduler's own cycle must not add the same channel twice.
        self._lock = asyncio.Lock()

    @property
    def channels(self) -> list[FollowedChannel]:
        return list(self._channels.values())

    async def follow(self, sources: SourceSet, now: datetime) -> None:
        """The sources changed: their explicit channels, no excluded or paused one (at once while running)."""
        self._follows.set_sources(sources.explicit_channels, sources.excluded_channels | sources.paused_channels)
        self._stamps = {c.channel_id: c.updated_at.isoformat() for c in sources.channels}
        if self._scheduler is not None:
            await self._sync(self._scheduler, now, load=True)

    async def prepare(self, scheduler: Scheduler, now: datetime) -> None:
        """A new leader: the persisted set, one work item per channel (the scheduler loads them)."""
        await self._follows.load()
        async with self._lock:
            for item in scheduler.items:
                scheduler.unregister(item.name)
            self._channels = {}
        self._scheduler = scheduler
        await self._sync(scheduler, now, load=False)

    async def after_cycle(self, scheduler: Scheduler) -> None:
        await self._parts.delivery.flush()
        now = self._parts.clock.now()
        plan = scheduler.budget.plan
        for channel in self._channels.values():
            if plan is not None and channel.readable:
                channel.progress.interval_seconds = plan.interval(channel.name)
        await self._sync(scheduler, now, load=True)

    async def _sync(self, scheduler: Scheduler, now: datetime, *, load: bool) -> None:
        async with self._lock:
            await self._sync_locked(scheduler, now, load=load)

    async def _sync_locked(self, scheduler: Scheduler, now: datetime, *, load: bool) -> None:
        wanted = [follow.channel_id for follow in await self._follows.current(now)]
        for channel_id in wanted:
            digest = channel_digest(self._parts.config_digest, self._stamps.get(channel_id, ""))
            if channel_id not in self._channels:
                channel = FollowedChannel(channel_id, self._parts, config_digest=digest)
                if load:
                    await channel.load(now)
                self._channels[channel_id] = channel
            else:
                self._channels[channel_id].reconfigure(digest)
        for channel_id in [c for c in self._channels if c not in wanted]:
            del self._channels[channel_id]
            self._forget_gauges(channel_id)
        scheduled = {item.name for item in scheduler.items}
        for channel_id, channel in self._channels.items():
            if channel.readable and channel_id not in scheduled:
                scheduler.register(channel)
            elif not channel.readable and channel_id in scheduled:
                scheduler.unregister(channel_id)
        for name in scheduled - set(self._channels):
            scheduler.unregister(name)

    def _forget_gauges(self, channel_id: str) -> None:
        """A channel no longer followed leaves /metrics (its counter of published videos stays)."""
        metrics = self._parts.metrics
        for gauge in (metrics.channel_interval, metrics.channel_upload_rate, metrics.channel_last_read):
            with contextlib.suppress(KeyError):
                gauge.remove(channel_id)

    def health(self) -> dict[str, Any]:
        """Each followed channel: its status, uploads playlist, planned interval, last read."""
        channels = {}
        for channel in self._channels.values():
            progress = channel.loaded
            if progress is None:
                continue
            channels[channel.channel_id] = {
                "status": progress.status,
                "uploads_playlist_id": progress.uploads_playlist_id,
                "interval_seconds": round(progress.interval_seconds, 1) if progress.interval_seconds else None,
                "last_read_at": format_rfc3339(progress.last_read_at) if progress.last_read_at else None,
                "last_deep_read_at": format_rfc3339(progress.last_deep_read_at) if progress.last_deep_read_at else None,
                "videos_published": progress.videos_published,
            }
        return {"channels": channels}
