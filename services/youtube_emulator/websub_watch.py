"""Which videos the world has made public since the hub last looked: the uploads it pushes.

The world is a pure function of the clock, so "a new upload" is a video whose publish time the
clock has passed since the previous look (the watermark): a scheduled video is pushed when it is
published, not when it is uploaded; private and deleted ones never. Injected videos count if their
publish time is at or after the watermark when they are injected (one placed in the past was, in
that past, already pushed or not). Streams created at run time start at the watermark, so a new
query's backfill is not pushed as news. Only channels someone subscribes to are scanned, and no
further than the last lease runs, so a test that jumps the clock by days stays cheap.
"""

from __future__ import annotations

import math

from services.youtube_emulator.video import Video
from services.youtube_emulator.world import World


class PublicationWatch:
    def __init__(self, world: World, start: float) -> None:
        self._world = world
        self.watermark = math.floor(start)
        self._next: dict[str, int] = {}
        self._injected_seen = 0
        self._waiting: list[Video] = []

    def advance(self, now: float, channels: set[str], until: float) -> list[Video]:
        """Videos of ``channels`` made public in (watermark, now] (up to ``until``), oldest first."""
        moment = math.floor(now)
        world = self._world
        self._take_injected()
        found = [v for v in self._waiting if v.published_at <= moment]
        self._waiting = [v for v in self._waiting if v.published_at > moment]
        found = [v for v in found if v.channel.channel_id in channels and v.video_id not in world.removed]
        if moment > self.watermark:
            stop = min(moment, math.floor(until))
            indices = {i for i, c in enumerate(world.channels) if c.channel_id in channels}
            for key, stream in list(world.streams.items()):
                first = self._next.get(key)
                if first is None:
                    first = stream.first_at_or_after(self.watermark + 1)
                if indices and stop > self.watermark:
                    for index in range(first, stream.first_at_or_after(stop + 1)):
                        core = stream.core(index)
                        if core.privacy != "public" or core.channel not in indices:
                            continue
                        video = stream.video(index)
                        if video.video_id not in world.removed:
                            found.append(video)
                self._next[key] = stream.first_at_or_after(moment + 1)
            self.watermark = moment
        found.sort(key=lambda v: (v.published_at, v.video_id))
        return found

    def _take_injected(self) -> None:
        videos = self._world.injected_videos()
        for video in videos[self._injected_seen :]:
            if video.privacy == "public" and video.published_at >= self.watermark:
                self._waiting.append(video)
        self._injected_seen = len(videos)
