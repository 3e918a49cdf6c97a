"""The catalogue: deterministic per-query streams of videos plus videos injected by tests.

Stream video ``i`` of query ``q`` is a pure function of (seed, q, i): its publish time falls in
slot ``i`` of a fixed grid counted from 2020-01-01, so every emulator with the same seed and rate
agrees on which video exists when, across restarts and clock jumps. Only the window
``[world start - backfill, clock]`` is part of the world.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from services.youtube_emulator.content import CATEGORY_IDS, CHANNEL_NAMES, make_text
from services.youtube_emulator.ids import MAX_INDEX, VideoIdCodec, channel_id, digest
from services.youtube_emulator.settings import normalize_query

EPOCH = 1_577_836_800  # 2020-01-01T00:00:00Z, slot 0 of every stream
INJECTED_TAG = 0xFFFF
_CACHE_LIMIT = 50_000

LiveState = Literal["none", "upcoming", "live"]
EventType = Literal["upcoming", "live", "completed"]
Order = Literal["date", "rating", "relevance", "title", "videoCount", "viewCount"]


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

    def rate_of(self, key: str) -> float:
        return dict(self.query_rates).get(key, self.videos_per_minute)


@dataclass(frozen=True, slots=True)
class Channel:
    channel_id: str
    title: str


@dataclass(frozen=True, slots=True)
class Broadcast:
    """A live broadcast: ``upcoming`` before start, ``live`` until end, then ``none``."""

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Core:
    """What filtering and counting need, computed without building the whole video."""

    index: int
    published_at: int
    visible_at: int
    channel: int
    broadcast: Broadcast | None


@dataclass(frozen=True, slots=True)
class Video:
    video_id: str
    query: str | None
    published_at: int
    visible_at: int
    channel: Channel
    title: str
    description: str
    tags: tuple[str, ...]
    category_id: str
    duration_seconds: int
    definition: str
    caption: bool
    licensed: bool
    broadcast: Broadcast | None
    popularity: float
    like_ratio: float
    comment_ratio: float
    hide_likes: bool
    has_maxres: bool
    default_audio_language: str | None
    injected: bool
    # Newest first sorts on this descending: (publishedAt, source rank, index in source).
    sort_key: tuple[int, int, int] = field(compare=False)

    def live_state(self, now: float) -> LiveState:
        if self.broadcast is None:
            return "none"
        return _live_state(self.broadcast, now)

    def views(self, now: float) -> int:
        started = self.broadcast.start if self.broadcast else self.published_at
        hours = max(0.0, now - started) / 3600
        return int(self.popularity * hours**0.85)

    def statistics(self, now: float) -> dict[str, str]:
        views = self.views(now)
        stats = {"viewCount": str(views)}
        if not self.hide_likes:
            stats["likeCount"] = str(int(views * self.like_ratio))
        stats["favoriteCount"] = "0"
        stats["commentCount"] = str(int(views * self.comment_ratio))
        return stats

    def duration(self, now: float) -> str:
        if self.broadcast is not None and now < self.broadcast.end:
            return "P0D"  # what YouTube reports for an upcoming or running broadcast
        return iso_duration(self.duration_seconds)


_RankKey = Callable[[Video], tuple[int | str, str]]


@dataclass(frozen=True, slots=True)
class SearchFilter:
    query: str | None = None
    published_after: float | None = None  # inclusive
    published_before: float | None = None  # inclusive
    channel_id: str | None = None
    event_type: EventType | None = None


@dataclass(frozen=True, slots=True)
class _Hit:
    key: tuple[int, int, int]
    stream: Stream | None
    video: Video | None


def _live_state(broadcast: Broadcast, now: float) -> LiveState:
    if now < broadcast.start:
        return "upcoming"
    if now < broadcast.end:
        return "live"
    return "none"


def _event_matches(broadcast: Broadcast | None, event: EventType, now: float) -> bool:
    if broadcast is None:
        return False
    if event == "completed":
        return now >= broadcast.end
    return _live_state(broadcast, now) == event


def iso_duration(seconds: int) -> str:
    if seconds <= 0:
        return "P0D"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = "PT"
    if hours:
        text += f"{hours}H"
    if minutes:
        text += f"{minutes}M"
    if secs:
        text += f"{secs}S"
    return text


def _unit(data: bytes) -> float:
    return int.from_bytes(data, "big") / (1 << (8 * len(data)))


class Stream:
    """The endless, deterministic sequence of videos for one query."""

    def __init__(self, world: World, query: str, tag: int, rank: int) -> None:
        self.world = world
        self.query = query
        self.key = normalize_query(query)
        self.tag = tag
        self.rank = rank
        self._interval = 60.0 / world.params.rate_of(self.key)
        self._cores: dict[int, Core] = {}
        self._videos: dict[int, Video] = {}

    def _digest(self, index: int) -> bytes:
        return digest("video", self.world.params.seed, self.key, index)

    def core(self, index: int) -> Core:
        cached = self._cores.get(index)
        if cached is not None:
            return cached
        params = self.world.params
        d = self._digest(index)
        published = EPOCH + math.floor((index + _unit(d[0:4])) * self._interval)
        visible = published
        if _unit(d[4:6]) < params.late_fraction:
            # Late indexing: visible in search some minutes after publishedAt.
            low = min(60, params.late_max_seconds)
            visible += low + math.floor(_unit(d[6:8]) * (params.late_max_seconds - low + 1))
        broadcast = None
        if _unit(d[10:12]) < params.live_fraction:
            start = published + math.floor(_unit(d[12:14]) * 1800)
            broadcast = Broadcast(start=start, end=start + 1200 + math.floor(_unit(d[14:16]) * 9600))
        channel = int.from_bytes(d[8:10], "big") % len(self.world.channels)
        core = Core(index, published, visible, channel, broadcast)
        if len(self._cores) >= _CACHE_LIMIT:
            self._cores.clear()
        self._cores[index] = core
        return core

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
        video = _build_video(
            rng,
            video_id=self.world.codec.encode(self.tag, index),
            query=self.query,
            published_at=core.published_at,
            visible_at=core.visible_at,
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


def _build_video(
    rng: random.Random,
    *,
    video_id: str,
    query: str | None,
    published_at: int,
    visible_at: int,
    channel: Channel,
    broadcast: Broadcast | None,
    sort_key: tuple[int, int, int],
    title: str | None = None,
    description: str | None = None,
) -> Video:
    day = datetime.fromtimestamp(published_at, tz=UTC)
    live = broadcast is not None
    text = make_text(query or "video", rng, live=live, year=day.year, month=day.month, day=day.day)
    final_title = text.title if title is None else title
    if broadcast is not None:
        duration = broadcast.end - broadcast.start
    elif "#shorts" in final_title:
        duration = rng.randint(15, 59)
    else:
        duration = rng.randint(61, 2700)
    return Video(
        video_id=video_id,
        query=query,
        published_at=published_at,
        visible_at=visible_at,
        channel=channel,
        title=final_title,
        description=text.description if description is None else description,
        tags=text.tags if title is None else (),
        category_id=rng.choice(CATEGORY_IDS),
        duration_seconds=duration,
        definition="hd" if rng.random() < 0.85 else "sd",
        caption=rng.random() < 0.3,
        licensed=rng.random() < 0.6,
        broadcast=broadcast,
        popularity=10 ** rng.uniform(1, 4),
        like_ratio=rng.uniform(0.01, 0.06),
        comment_ratio=rng.uniform(0.001, 0.01),
        hide_likes=rng.random() < 0.03,
        has_maxres=rng.random() < 0.7,
        default_audio_language=rng.choice(("en", "en", "en", "hi", None)),
        injected=title is not None,
        sort_key=sort_key,
    )


class World:
    def __init__(self, params: WorldParams, start: float) -> None:
        self.params = params
        self.start = math.floor(start)
        self.floor = self.start - params.backfill_seconds
        self.codec = VideoIdCodec(params.seed)
        base = len(CHANNEL_NAMES)
        names = [CHANNEL_NAMES[i % base] + (f" {i // base + 1}" if i >= base else "") for i in range(params.channels)]
        self.channels = [Channel(channel_id(params.seed, name), name) for name in names]
        self._channels_by_id = {c.channel_id: i for i, c in enumerate(self.channels)}
        self.streams: dict[str, Stream] = {}
        self._by_tag: dict[int, Stream] = {}
        for rank, query in enumerate(params.queries):
            key = normalize_query(query)
            if not key or key in self.streams:
                continue
            tag = int.from_bytes(digest("tag", params.seed, key, size=2), "big")
            while tag == INJECTED_TAG or tag in self._by_tag:
                tag = (tag + 1) % INJECTED_TAG
            stream = Stream(self, query, tag, rank)
            self.streams[key] = stream
            self._by_tag[tag] = stream
        self._injected: dict[str, Video] = {}

    # Injection -----------------------------------------------------------------------------

    def inject(
        self,
        *,
        title: str,
        description: str,
        published_at: float,
        query: str | None = None,
        channel: str | None = None,
        channel_id_: str | None = None,
        visible_at: float | None = None,
        video_id: str | None = None,
    ) -> Video:
        serial = len(self._injected)
        vid = video_id or self.codec.encode(INJECTED_TAG, serial)
        if vid in self._injected:
            raise ValueError(f"video {vid} was already injected")
        published = math.floor(published_at)
        visible = published if visible_at is None else max(published, math.floor(visible_at))
        rng = random.Random(int.from_bytes(digest("injected", self.params.seed, vid), "big"))
        video = _build_video(
            rng,
            video_id=vid,
            query=" ".join(query.split()) if query else None,
            published_at=published,
            visible_at=visible,
            channel=self._resolve_channel(channel, channel_id_, rng),
            broadcast=None,
            sort_key=(published, -1, serial),
            title=title,
            description=description,
        )
        self._injected[vid] = video
        return video

    def _resolve_channel(self, name: str | None, cid: str | None, rng: random.Random) -> Channel:
        if cid:
            if cid in self._channels_by_id:
                return self.channels[self._channels_by_id[cid]]
            return Channel(cid, name or cid)
        if name:
            for known in self.channels:
                if known.title.casefold() == name.casefold():
                    return known
            return Channel(channel_id(self.params.seed, name), name)
        return rng.choice(self.channels)

    # Lookups -------------------------------------------------------------------------------

    def get(self, video_id: str, now: float) -> Video | None:
        """videos.list's view: any public video (published), indexed by search yet or not."""
        injected = self._injected.get(video_id)
        if injected is not None:
            return injected if injected.published_at <= now else None
        decoded = self.codec.decode(video_id)
        if decoded is None:
            return None
        stream = self._by_tag.get(decoded[0])
        if stream is None:
            return None
        core = stream.core(decoded[1])
        if not self.floor <= core.published_at <= now:
            return None
        return stream.video(decoded[1])

    def search(
        self, flt: SearchFilter, now: float, *, order: Order, offset: int, limit: int, cap: int
    ) -> tuple[list[Video], int]:
        """One page (``offset``, ``limit``) of the matches and their total; none past ``cap``."""
        sources, total = self._sources(flt, now)
        stop = min(offset + limit, cap)
        if order == "date":
            hits = list(itertools.islice(_merge(sources), offset, max(offset, stop)))
            return [self._materialise(hit) for hit in hits], total
        # Other orders re-rank the newest ``cap`` matches, the most YouTube ever pages through.
        pool = [self._materialise(hit) for hit in itertools.islice(_merge(sources), cap)]
        pool.sort(key=self._ranker(order, flt.query, now))
        return pool[offset:stop], total

    def visible(self, query: str | None, now: float) -> list[Video]:
        """Ground truth: every video a search for ``query`` can return at ``now``, newest first."""
        sources, _ = self._sources(SearchFilter(query=query), now)
        return [self._materialise(hit) for hit in _merge(sources)]

    def _materialise(self, hit: _Hit) -> Video:
        if hit.video is not None:
            return hit.video
        assert hit.stream is not None
        return hit.stream.video(hit.key[2])

    def _ranker(self, order: Order, query: str | None, now: float) -> _RankKey:
        seed = self.params.seed
        if order == "viewCount":
            return lambda v: (-v.views(now), v.video_id)
        if order == "rating":
            return lambda v: (-int(v.views(now) * v.like_ratio), v.video_id)
        if order == "title":
            return lambda v: (v.title.casefold(), v.video_id)
        # relevance and videoCount: a stable pseudo-random order per query
        return lambda v: (digest("rank", seed, query or "", v.video_id, size=8).hex(), v.video_id)

    # Matching ------------------------------------------------------------------------------

    def _sources(self, flt: SearchFilter, now: float) -> tuple[list[Iterator[_Hit]], int]:
        alternatives = _alternatives(flt.query)
        if alternatives is None:
            streams = list(self.streams.values())
            injected = list(self._injected.values())
        else:
            streams = [self.streams[a] for a in alternatives if a in self.streams]
            patterns = [re.compile(r"(?<!\w)" + re.escape(a) + r"(?!\w)") for a in alternatives]
            injected = [
                v
                for v in self._injected.values()
                if (v.query is not None and normalize_query(v.query) in alternatives)
                or any(p.search(normalize_query(v.title)) for p in patterns)
            ]
        channel_index = self._channels_by_id.get(flt.channel_id) if flt.channel_id else None
        low = self.floor if flt.published_after is None else max(self.floor, math.ceil(flt.published_after))
        high = math.floor(now if flt.published_before is None else min(now, flt.published_before))

        criteria = _Criteria(now, flt, channel_index)
        sources: list[Iterator[_Hit]] = []
        total = 0
        for stream in streams:
            if flt.channel_id and channel_index is None:
                break  # a channel outside the generated set owns no stream videos
            first, last = stream.index_range(low, high)
            if first > last:
                continue
            sources.append(self._walk(stream, first, last, criteria))
            total += self._count(stream, first, last, criteria)
        picked = sorted(
            (v for v in injected if self._injected_matches(v, flt, now, high)),
            key=lambda v: v.sort_key,
            reverse=True,
        )
        total += len(picked)
        sources.append(_Hit(v.sort_key, None, v) for v in picked)
        return sources, total

    @staticmethod
    def _injected_matches(video: Video, flt: SearchFilter, now: float, high: int) -> bool:
        # Injected videos are placed by hand, so the backfill floor does not bound them.
        if video.visible_at > now or video.published_at > high:
            return False
        if flt.published_after is not None and video.published_at < flt.published_after:
            return False
        if flt.channel_id and video.channel.channel_id != flt.channel_id:
            return False
        return flt.event_type is None or _event_matches(video.broadcast, flt.event_type, now)

    def _walk(self, stream: Stream, first: int, last: int, criteria: _Criteria) -> Iterator[_Hit]:
        for index in range(last, first - 1, -1):
            core = stream.core(index)
            if criteria.matches(core):
                yield _Hit((core.published_at, stream.rank, index), stream, None)

    def _count(self, stream: Stream, first: int, last: int, criteria: _Criteria) -> int:
        if criteria.channel_index is not None or criteria.flt.event_type is not None:
            return sum(1 for i in range(first, last + 1) if criteria.matches(stream.core(i)))
        # Only videos published within the last late_max seconds can still be hidden.
        recent = max(first, stream.first_at_or_after(math.floor(criteria.now) - self.params.late_max_seconds))
        hidden = sum(1 for i in range(recent, last + 1) if stream.core(i).visible_at > criteria.now)
        return last - first + 1 - hidden


@dataclass(frozen=True, slots=True)
class _Criteria:
    now: float
    flt: SearchFilter
    channel_index: int | None

    def matches(self, core: Core) -> bool:
        if core.visible_at > self.now:
            return False
        if self.channel_index is not None and core.channel != self.channel_index:
            return False
        return self.flt.event_type is None or _event_matches(core.broadcast, self.flt.event_type, self.now)


def _alternatives(query: str | None) -> list[str] | None:
    """``q`` split on ``|`` (YouTube's OR); None means no ``q`` at all (everything matches)."""
    if query is None or not query.strip():
        return None
    return [key for key in (normalize_query(part) for part in query.split("|")) if key]


def _merge(sources: Iterable[Iterator[_Hit]]) -> Iterator[_Hit]:
    return heapq.merge(*sources, key=lambda hit: hit.key, reverse=True)
