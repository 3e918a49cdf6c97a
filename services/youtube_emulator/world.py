"""The catalogue: deterministic per-query streams of videos (streams.py) plus videos injected by tests.

Every emulator with the same seed and rates agrees on which video exists when, across restarts and
clock jumps. A query first asked at run time gets its stream on first use (``stream_for``), a pure
function of the seed and the normalised query like a configured one, so it answers the same after a
restart; its videos join the channels' uploads playlists from the floor on. A video deleted through
the admin endpoint (``remove``) leaves search.list, videos.list and its uploads playlist; one whose
title or description an admin changed (``edit``) shows the new text in every answer.

Only videos published at or after ``world start - backfill`` are part of the world;
the clock decides which of them are out yet: search.list shows public videos once visible (publish
time + search lag, + late indexing), videos.list once published, and each channel's uploads
playlist (channels.py) every upload at once, private, deleted and scheduled ones included.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import math
import random
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

from services.youtube_emulator.channels import ChannelPicker, UploadsIndex
from services.youtube_emulator.content import CHANNEL_NAMES
from services.youtube_emulator.ids import VideoIdCodec, channel_id, digest
from services.youtube_emulator.settings import normalize_query
from services.youtube_emulator.streams import Stream, WorldParams
from services.youtube_emulator.video import (
    Channel,
    Core,
    EventType,
    Privacy,
    Times,
    Video,
    build_video,
    event_matches,
)

INJECTED_TAG = 0xFFFF
# Streams a search may create at run time beyond the configured ones: each costs a scan of its
# uploads, so a client inventing queries without end cannot grow the emulator without bound.
MAX_RUNTIME_STREAMS = 1000

Order = Literal["date", "rating", "relevance", "title", "videoCount", "viewCount"]


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
        self.picker = ChannelPicker(params.channels, params.channel_zipf_exponent)
        self.edits: dict[str, tuple[str, str]] = {}  # video id -> (title, description) changed since
        self.uploads = UploadsIndex(self.channels, self.floor, params.scheduled_max_seconds, revise=self.edited)
        self.streams: dict[str, Stream] = {}
        self._by_tag: dict[int, Stream] = {}
        for query in params.queries:
            key = normalize_query(query)
            if key and key not in self.streams:
                self._add_stream(query, key)
        self.runtime_queries: list[str] = []
        self._injected: dict[str, Video] = {}
        self.removed: dict[str, float] = {}  # video id -> when it was deleted
        self._removed_indices: dict[int, set[int]] = {}  # stream tag -> removed stream indices

    def _add_stream(self, query: str, key: str) -> Stream:
        tag = int.from_bytes(digest("tag", self.params.seed, key, size=2), "big")
        while tag == INJECTED_TAG or tag in self._by_tag:
            tag = (tag + 1) % INJECTED_TAG
        stream = Stream(self, query, tag, len(self.streams))
        self.streams[key] = stream
        self._by_tag[tag] = stream
        self.uploads.add_source(stream)
        return stream

    def stream_for(self, key: str) -> Stream | None:
        """The stream of a normalised query, created on first use when no configured query is it."""
        stream = self.streams.get(key)
        if stream is None and key and len(self.runtime_queries) < MAX_RUNTIME_STREAMS:
            # The normalised text, not the caller's spelling: the same videos whoever asks first.
            stream = self._add_stream(key, key)
            self.runtime_queries.append(key)
        return stream

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
        uploaded_at: float | None = None,
        privacy: Privacy = "public",
    ) -> Video:
        """A hand-placed video; ``uploaded_at`` before ``published_at`` makes it a scheduled one."""
        serial = len(self._injected)
        vid = video_id or self.codec.encode(INJECTED_TAG, serial)
        if vid in self._injected:
            raise ValueError(f"video {vid} was already injected")
        published = math.floor(published_at)
        uploaded = published if uploaded_at is None else math.floor(uploaded_at)
        if uploaded > published:
            raise ValueError("uploaded_at must not be after published_at")
        lagged = published + self.params.search_lag_seconds
        visible = lagged if visible_at is None else max(published, math.floor(visible_at))
        rng = random.Random(int.from_bytes(digest("injected", self.params.seed, vid), "big"))
        video = build_video(
            rng,
            video_id=vid,
            query=" ".join(query.split()) if query else None,
            times=Times(uploaded, published, visible, privacy),
            channel=self._resolve_channel(channel, channel_id_, rng),
            broadcast=None,
            sort_key=(published, -1, serial),
            title=title,
            description=description,
        )
        self._injected[vid] = video
        self.uploads.add_injected(video)
        return video

    def injected_videos(self) -> list[Video]:
        """Every injected video, in the order of injection."""
        return list(self._injected.values())

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

    def remove(self, video_id: str, now: float) -> Video:
        """Delete an uploaded video: gone from search, videos.list and its uploads playlist."""
        if video_id in self.removed:
            raise ValueError(f"video {video_id} was already deleted")
        video = self._uploaded(video_id, now)
        if video is None:
            raise LookupError(f"no video {video_id} has been uploaded by now")
        self.uploads.remove(video, now)
        self.removed[video_id] = now
        decoded = None if video.injected else self.codec.decode(video_id)
        if decoded is not None:
            self._removed_indices.setdefault(decoded[0], set()).add(decoded[1])
        return video

    def edit(self, video_id: str, now: float, *, title: str | None, description: str | None) -> Video:
        """Change an uploaded video's title or description, as its owner may; every answer shows it."""
        video = None if video_id in self.removed else self._uploaded(video_id, now)
        if video is None:
            raise LookupError(f"no video {video_id} has been uploaded by now")
        current = self.edited(video)
        self.edits[video_id] = (
            current.title if title is None else title,
            current.description if description is None else description,
        )
        return self.edited(video)

    def edited(self, video: Video) -> Video:
        """``video`` with its changed title and description, if it has any."""
        change = self.edits.get(video.video_id)
        if change is None:
            return video
        return dataclasses.replace(video, title=change[0], description=change[1])

    def _uploaded(self, video_id: str, now: float) -> Video | None:
        injected = self._injected.get(video_id)
        if injected is not None:
            return injected if injected.uploaded_at <= now else None
        decoded = self.codec.decode(video_id)
        stream = None if decoded is None else self._by_tag.get(decoded[0])
        if decoded is None or stream is None:
            return None
        core = stream.core(decoded[1])
        if not self.floor <= core.published_at or core.uploaded_at > now:
            return None
        return stream.video(decoded[1])

    # Lookups -------------------------------------------------------------------------------

    def get(self, video_id: str, now: float) -> Video | None:
        """videos.list's view: any public video (published), indexed by search yet or not."""
        if video_id in self.removed:
            return None
        injected = self._injected.get(video_id)
        if injected is not None:
            return self.edited(injected) if injected.is_public(now) else None
        decoded = self.codec.decode(video_id)
        if decoded is None:
            return None
        stream = self._by_tag.get(decoded[0])
        if stream is None:
            return None
        core = stream.core(decoded[1])
        if not self.floor <= core.published_at <= now or core.privacy != "public":
            return None
        return self.edited(stream.video(decoded[1]))

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
            return self.edited(hit.video)
        assert hit.stream is not None
        return self.edited(hit.stream.video(hit.key[2]))

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
            streams = [s for s in (self.stream_for(a) for a in alternatives) if s is not None]
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

    def _injected_matches(self, video: Video, flt: SearchFilter, now: float, high: int) -> bool:
        # Injected videos are placed by hand, so the backfill floor does not bound them.
        if video.privacy != "public" or video.visible_at > now or video.published_at > high:
            return False
        if video.video_id in self.removed:
            return False
        if flt.published_after is not None and video.published_at < flt.published_after:
            return False
        if flt.channel_id and video.channel.channel_id != flt.channel_id:
            return False
        return flt.event_type is None or event_matches(video.broadcast, flt.event_type, now)

    def _walk(self, stream: Stream, first: int, last: int, criteria: _Criteria) -> Iterator[_Hit]:
        removed = self._removed_indices.get(stream.tag, set())
        for index in range(last, first - 1, -1):
            core = stream.core(index)
            if criteria.matches(core) and index not in removed:
                yield _Hit((core.published_at, stream.rank, index), stream, None)

    def _count(self, stream: Stream, first: int, last: int, criteria: _Criteria) -> int:
        removed = self._removed_indices.get(stream.tag, set())
        gone = sum(1 for i in removed if first <= i <= last and criteria.matches(stream.core(i)))
        if criteria.channel_index is not None or criteria.flt.event_type is not None:
            return sum(1 for i in range(first, last + 1) if criteria.matches(stream.core(i))) - gone
        # Only videos published within the last lag + late_max seconds can still be unsearchable.
        delay = self.params.search_lag_seconds + self.params.late_max_seconds
        recent = max(first, stream.first_at_or_after(math.floor(criteria.now) - delay))
        hidden = sum(1 for i in range(recent, last + 1) if _waiting(stream.core(i), criteria.now))
        return last - first + 1 - hidden - stream.dark_between(first, last) - gone


@dataclass(frozen=True, slots=True)
class _Criteria:
    now: float
    flt: SearchFilter
    channel_index: int | None

    def matches(self, core: Core) -> bool:
        if core.visible_at > self.now or core.privacy != "public":
            return False
        if self.channel_index is not None and core.channel != self.channel_index:
            return False
        return self.flt.event_type is None or event_matches(core.broadcast, self.flt.event_type, self.now)


def _waiting(core: Core, now: float) -> bool:
    """Public, yet not searchable: published within the search lag or indexed late."""
    return core.privacy == "public" and core.visible_at > now


def _alternatives(query: str | None) -> list[str] | None:
    """``q`` split on ``|`` (YouTube's OR); None means no ``q`` at all (everything matches)."""
    if query is None or not query.strip():
        return None
    return [key for key in (normalize_query(part) for part in query.split("|")) if key]


def _merge(sources: Iterable[Iterator[_Hit]]) -> Iterator[_Hit]:
    return heapq.merge(*sources, key=lambda hit: hit.key, reverse=True)
