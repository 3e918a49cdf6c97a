"""One query's endless, deterministic stream of videos: publish slots, channels, times, privacy.

Stream video ``i`` of query ``q`` is a pure function of (seed, q, i): its publish time falls in
slot ``i`` of a fixed grid counted from 2020-01-01. Its channel is drawn by the world's Zipf-like
weights (channels.py); it may be scheduled (uploaded up to ``scheduled_max_seconds`` before its
slot), private or deleted (never published), indexed late by search (``late_fraction``), and it
reaches search ``search_lag_seconds`` after its publish time.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Protocol

from services.youtube_emulator.channels import ChannelPicker
from services.youtube_emulator.ids import MAX_INDEX, VideoIdCodec, digest
from services.youtube_emulator.settings import normalize_query
from services.youtube_emulator.video import Broadcast, Channel, Core, Privacy, Times, Video, build_video

EPOCH = 1_577_836_800  # 2020-01-01T00:00:00Z, slot 0 of every stream
_CACHE_LIMIT = 50_000


@dataclass(frozen=True, slots=True)
class WorldParams:
    seed: int
    queries: tuple[str, ...]
    videos_per_minute: float
    backfill_seconds: int
    channels: int
    late_fraction: float
    late_max_seconds: int
    live_fraction: float
    # (normalised query, videos per minute) for the queries whose rate is not videos_per_minute
    query_rates: tuple[tuple[str, float], ...] = ()
    channel_zipf_exponent: float = 0.0
    scheduled_fraction: float = 0.0
    scheduled_max_seconds: int = 0
    private_fraction: float = 0.0
    deleted_fraction: float = 0.0
    search_lag_seconds: int = 0

    def rate_of(self, key: str) -> float:
        return dict(self.query_rates).get(key, self.videos_per_minute)


class StreamWorld(Protocol):
    """What a stream needs of its world."""

    params: WorldParams
    floor: int
    codec: VideoIdCodec
    channels: list[Channel]
    picker: ChannelPicker


def _unit(data: bytes) -> float:
    return int.from_bytes(data, "big") / (1 << (8 * len(data)))


class Stream:
    """The endless, deterministic sequence of videos for one query."""

    def __init__(self, world: StreamWorld, query: str, tag: int, rank: int) -> None:
        self.world = world
        self.query = query
        self.key = normalize_query(query)
        self.tag = tag
        self.rank = rank
        self._interval = 60.0 / world.params.rate_of(self.key)
        self._cores: dict[int, Core] = {}
        self._videos: dict[int, Video] = {}
        # Running count of private and deleted videos from index _dark_base on, for search totals.
        self._dark_base = self.first_at_or_after(world.floor)
        self._dark_prefix = [0]

    def _digest(self, index: int) -> bytes:
        return digest("video", self.world.params.seed, self.key, index)

    def core(self, index: int) -> Core:
        cached = self._cores.get(index)
        if cached is not None:
            return cached
        params = self.world.params
        d = self._digest(index)
        e = digest("video-channel", params.seed, self.key, index, size=12)
        published = EPOCH + math.floor((index + _unit(d[0:4])) * self._interval)
        visible = published + params.search_lag_seconds
        if _unit(d[4:6]) < params.late_fraction:
            # Late indexing: visible in search some minutes after publishedAt.
            visible += _spread(_unit(d[6:8]), params.late_max_seconds)
        broadcast = None
        if _unit(d[10:12]) < params.live_fraction:
            start = published + math.floor(_unit(d[12:14]) * 1800)
            broadcast = Broadcast(start=start, end=start + 1200 + math.floor(_unit(d[14:16]) * 9600))
        privacy: Privacy = "public"
        roll = _unit(e[8:10])
        if roll < params.private_fraction:
            privacy = "private"
        elif roll < params.private_fraction + params.deleted_fraction:
            privacy = "deleted"
        uploaded = published
        if privacy == "public" and broadcast is None and _unit(e[4:6]) < params.scheduled_fraction:
            # Scheduled: uploaded earlier, public at its slot (and below any upload in between).
            uploaded -= _spread(_unit(e[6:8]), params.scheduled_max_seconds)
        channel = self.world.picker.pick(_unit(e[0:4]))
        core = Core(index, published, visible, channel, broadcast, uploaded, privacy)
        if len(self._cores) >= _CACHE_LIMIT:
            self._cores.clear()
        self._cores[index] = core
        return core

    def dark_between(self, first: int, last: int) -> int:
        """How many of indices first..last (first >= the world's floor index) are private or deleted."""
        params = self.world.params
        if params.private_fraction + params.deleted_fraction <= 0 or first > last:
            return 0
        prefix = self._dark_prefix
        while len(prefix) <= last + 1 - self._dark_base:
            dark = self.core(self._dark_base + len(prefix) - 1).privacy != "public"
            prefix.append(prefix[-1] + dark)
        return prefix[last + 1 - self._dark_base] - prefix[first - self._dark_base]

    def published(self, index: int) -> int:
        return self.core(index).published_at

    def first_at_or_after(self, moment: int) -> int:
        """Smallest index published at or after ``moment`` (publish times never decrease)."""
        index = max(0, math.floor((moment - EPOCH) / self._interval) - 1)
        while self.published(index) < moment:
            index += 1
        return index

    def video(self, index: int) -> Video:
        cached = self._videos.get(index)
        if cached is not None:
            return cached
        core = self.core(index)
        rng = random.Random(int.from_bytes(self._digest(index)[16:32], "big"))
        video = build_video(
            rng,
            video_id=self.world.codec.encode(self.tag, index),
            query=self.query,
            times=Times(core.uploaded_at, core.published_at, core.visible_at, core.privacy),
            channel=self.world.channels[core.channel],
            broadcast=core.broadcast,
            sort_key=(core.published_at, self.rank, index),
        )
        if len(self._videos) >= _CACHE_LIMIT:
            self._videos.clear()
        self._videos[index] = video
        return video

    def index_range(self, low: int, high: int) -> tuple[int, int]:
        """Indices published within [low, high] seconds; empty when first > last."""
        first = self.first_at_or_after(low)
        last = self.first_at_or_after(high + 1) - 1
        return first, min(last, MAX_INDEX)


def _spread(unit: float, maximum: int) -> int:
    """A delay from a uniform draw: at least a minute (or ``maximum`` if shorter), at most ``maximum``."""
    low = min(60, maximum)
    return low + math.floor(unit * (maximum - low + 1))
