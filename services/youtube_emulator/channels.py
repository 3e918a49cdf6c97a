"""Channels: who uploads how much (Zipf-like ranks) and each channel's uploads playlist.

Channel ``k`` of the world (0-based) is its ``k+1``-th most prolific: a stream video's channel is
drawn with weight ``1 / (k+1) ** exponent``, the same ranking for every query, so with 300 channels
and the default exponent 1.04 the top 20 publish about 60% of each query's videos (``top_share``).

An uploads playlist holds every upload of its channel with an upload time at or before the clock,
newest upload first (reference §2: ordered by upload, not by publish time). The index is built
incrementally: each stream is scanned once, up to the furthest upload the clock has reached, and
each channel keeps its uploads sorted, so one page costs a binary search, not a walk of the world.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from services.youtube_emulator.video import Channel, Core, Video

INJECTED_RANK = -1


def zipf_weights(count: int, exponent: float) -> list[float]:
    """Normalised weights of ranks 1..count: ``1 / rank ** exponent`` (0 gives equal weights)."""
    raw = [1.0 / (rank**exponent) for rank in range(1, count + 1)]
    total = sum(raw)
    return [w / total for w in raw]


def top_share(count: int, exponent: float, top: int) -> float:
    """The expected share of a query's videos that its ``top`` most prolific channels publish."""
    return sum(zipf_weights(count, exponent)[:top])


class ChannelPicker:
    """Maps a uniform draw in [0, 1) to a channel index by the Zipf weights."""

    def __init__(self, count: int, exponent: float) -> None:
        self._bounds = list(itertools.accumulate(zipf_weights(count, exponent)))
        self._last = count - 1

    def pick(self, unit: float) -> int:
        return min(bisect.bisect_right(self._bounds, unit), self._last)


class UploadSource(Protocol):
    """A query stream as the uploads index sees it (world.Stream)."""

    key: str
    rank: int

    def core(self, index: int) -> Core: ...

    def video(self, index: int) -> Video: ...

    def first_at_or_after(self, moment: int) -> int: ...


# (uploaded_at, source rank, index in source, stream key or injected video id): tuples sort by the
# first three, which are unique, so the fourth is never compared.
_Entry = tuple[int, int, int, str]


@dataclass(frozen=True, slots=True)
class UploadsPage:
    videos: list[Video]
    total: int


class UploadsIndex:
    def __init__(
        self,
        channels: list[Channel],
        floor: int,
        max_lead_seconds: int,
        revise: Callable[[Video], Video] = lambda video: video,
    ) -> None:
        self._world_channels = channels
        self._revise = revise  # the world's changed titles and descriptions
        self._floor = floor
        self._max_lead = max_lead_seconds
        self._known: dict[str, Channel] = {c.channel_id: c for c in channels}
        self._uploads: dict[str, list[_Entry]] = {}
        self._sources: dict[str, UploadSource] = {}
        self._next: dict[str, int] = {}
        self._injected: dict[str, Video] = {}
        self._scanned_until = floor - 1

    def add_source(self, source: UploadSource) -> None:
        self._sources[source.key] = source
        self._next[source.key] = source.first_at_or_after(self._floor)
        if self._scanned_until >= self._floor:
            # A stream added at run time: its uploads so far join the playlists at once.
            self._scan_source(source.key, source, self._scanned_until + self._max_lead)

    def remove(self, video: Video, now: float) -> None:
        """Take a deleted video out of its channel's playlist (it was uploaded by ``now``)."""
        self._scan(math.floor(now))
        entries = self._uploads.get(video.channel.channel_id, [])
        low = bisect.bisect_left(entries, (video.uploaded_at, -math.inf))
        high = bisect.bisect_right(entries, (video.uploaded_at, math.inf))
        for position in range(low, high):
            if self._materialise(entries[position]).video_id == video.video_id:
                del entries[position]
                return

    def add_injected(self, video: Video) -> None:
        self._known.setdefault(video.channel.channel_id, video.channel)
        self._injected[video.video_id] = video
        entry = (video.uploaded_at, INJECTED_RANK, len(self._injected), video.video_id)
        bisect.insort(self._uploads.setdefault(video.channel.channel_id, []), entry)

    def channel(self, channel_id: str) -> Channel | None:
        """A channel of the world or one an injected video named; None for any other id."""
        return self._known.get(channel_id)

    def by_playlist(self, playlist_id: str) -> Channel | None:
        if not playlist_id.startswith("UU"):
            return None
        return self._known.get("UC" + playlist_id[2:])

    def page(self, channel_id: str, now: float, offset: int, limit: int) -> UploadsPage:
        """Uploads at or before ``now``, newest first: ``limit`` of them from position ``offset``."""
        moment = math.floor(now)
        self._scan(moment)
        entries = self._uploads.get(channel_id, [])
        cut = bisect.bisect_right(entries, (moment, math.inf))
        stop = max(cut - offset - limit, 0)
        picked = reversed(entries[stop : max(cut - offset, 0)])
        return UploadsPage([self._materialise(e) for e in picked], cut)

    def uploads(self, channel_id: str, now: float) -> list[Video]:
        """The whole playlist at ``now`` (ground truth for tests), newest upload first."""
        return self.page(channel_id, now, 0, 1 << 40).videos

    def counts(self, now: float) -> dict[str, int]:
        """How many uploads each channel's playlist holds at ``now``."""
        moment = math.floor(now)
        self._scan(moment)
        return {cid: bisect.bisect_right(e, (moment, math.inf)) for cid, e in self._uploads.items()}

    def _scan(self, moment: int) -> None:
        if moment <= self._scanned_until:
            return
        # A scheduled video is uploaded up to max_lead before its publish slot, which orders the stream.
        horizon = moment + self._max_lead
        for key, source in self._sources.items():
            self._scan_source(key, source, horizon)
        self._scanned_until = moment

    def _scan_source(self, key: str, source: UploadSource, horizon: int) -> None:
        index = self._next[key]
        stop = source.first_at_or_after(horizon + 1)
        for i in range(index, stop):
            core = source.core(i)
            cid = self._world_channels[core.channel].channel_id
            bisect.insort(self._uploads.setdefault(cid, []), (core.uploaded_at, source.rank, i, key))
        self._next[key] = max(index, stop)

    def _materialise(self, entry: _Entry) -> Video:
        if entry[1] == INJECTED_RANK:
            return self._revise(self._injected[entry[3]])
        return self._revise(self._sources[entry[3]].video(entry[2]))

    def known(self) -> Iterable[Channel]:
        return self._known.values()
