"""The skewed world of channels: Zipf shares, uploads playlists, scheduled, private and deleted videos."""

from __future__ import annotations

import collections
import dataclasses

import pytest

from services.youtube_emulator.channels import ChannelPicker, top_share, zipf_weights
from services.youtube_emulator.streams import WorldParams
from services.youtube_emulator.world import SearchFilter, World

START = 1_795_000_000  # 2026-11-18T09:46:40Z
HOUR = 3600
BASE = WorldParams(
    seed=20261124,
    queries=("cricket", "chess"),
    videos_per_minute=50 / 60,
    backfill_seconds=HOUR,
    channels=300,
    late_fraction=0.0,
    late_max_seconds=600,
    live_fraction=0.0,
    channel_zipf_exponent=1.04,
)


def world(**changes: object) -> World:
    return World(dataclasses.replace(BASE, **changes), START)  # type: ignore[arg-type]


def stream_channels(w: World, query: str, seconds: int) -> collections.Counter[str]:
    stream = w.streams[query]
    first, last = stream.index_range(w.floor, START + seconds)
    return collections.Counter(w.channels[stream.core(i).channel].channel_id for i in range(first, last + 1))


def test_default_exponent_puts_about_60_percent_with_the_top_20_of_300() -> None:
    assert top_share(300, 1.04, 20) == pytest.approx(0.60, abs=0.01)
    w = world()
    for query in ("cricket", "chess"):
        counts = stream_channels(w, query, 200 * HOUR)
        total = sum(counts.values())
        top = sum(counts[c.channel_id] for c in w.channels[:20])
        assert top / total == pytest.approx(0.60, abs=0.03), query
        # the ranking is the world's: channel 0 is the most prolific for every query
        assert counts.most_common(1)[0][0] == w.channels[0].channel_id


def test_exponent_zero_spreads_videos_evenly() -> None:
    assert zipf_weights(4, 0.0) == [0.25] * 4
    counts = stream_channels(world(channel_zipf_exponent=0.0), "cricket", 200 * HOUR)
    top = sum(n for _, n in counts.most_common(20))
    assert top / sum(counts.values()) < 0.12


def test_picker_covers_every_channel_and_is_deterministic() -> None:
    picker = ChannelPicker(3, 1.0)
    assert [picker.pick(u) for u in (0.0, 0.5, 0.6, 0.9999999)] == [0, 0, 1, 2]
    a, b = world(), world()
    assert stream_channels(a, "cricket", 6 * HOUR) == stream_channels(b, "cricket", 6 * HOUR)


def test_uploads_playlist_holds_every_upload_of_the_channel_newest_first() -> None:
    w = world(scheduled_fraction=0.2, scheduled_max_seconds=2 * HOUR)
    now = START + 6 * HOUR
    for channel in w.channels[:3]:
        playlist = w.uploads.uploads(channel.channel_id, now)
        expected = set()
        for stream in w.streams.values():
            first, last = stream.index_range(w.floor, now + 2 * HOUR)
            for i in range(first, last + 1):
                video = stream.video(i)
                if video.channel == channel and video.uploaded_at <= now:
                    expected.add(video.video_id)
        assert {v.video_id for v in playlist} == expected
        assert {v.query for v in playlist} == {"cricket", "chess"}
        uploads = [v.uploaded_at for v in playlist]
        assert uploads == sorted(uploads, reverse=True)
    assert w.uploads.channel("UC" + "x" * 22) is None
    assert w.uploads.by_playlist(w.channels[0].uploads_playlist_id) == w.channels[0]


def test_pages_of_a_playlist_follow_the_clock() -> None:
    w = world()
    cid = w.channels[0].channel_id
    early = w.uploads.page(cid, START, 0, 50)
    later = w.uploads.page(cid, START + HOUR, 0, 50)
    assert later.total > early.total
    assert [v.video_id for v in later.videos[later.total - early.total :]] == [v.video_id for v in early.videos]
    # the clock moved back: the playlist is as it was then
    assert w.uploads.page(cid, START, 0, 50) == early
    second = w.uploads.page(cid, START + HOUR, 2, 3)
    assert second.videos == later.videos[2:5]
    assert w.uploads.page(cid, START + HOUR, later.total, 5).videos == []


def test_scheduled_videos_sit_below_newer_uploads_and_publish_later() -> None:
    w = world(scheduled_fraction=1.0, scheduled_max_seconds=3 * HOUR)
    now = START + 6 * HOUR
    playlist = w.uploads.uploads(w.channels[0].channel_id, now)
    scheduled = [v for v in playlist if v.uploaded_at < v.published_at]
    assert scheduled
    # some scheduled video was published after a video uploaded later: below it, yet newer by publish time
    assert any(
        newer.uploaded_at > old.uploaded_at and newer.published_at < old.published_at
        for i, old in enumerate(playlist)
        for newer in playlist[:i]
    )
    waiting = [v for v in scheduled if v.published_at > now]
    assert waiting, "some uploads are still to be published"
    for video in waiting:
        assert w.get(video.video_id, now) is None
        assert w.get(video.video_id, video.published_at) == video
    searchable = {v.video_id for v in w.visible("cricket|chess", now)}
    assert not searchable & {v.video_id for v in waiting}


def test_private_and_deleted_videos_are_only_in_playlists() -> None:
    w = world(private_fraction=0.3, deleted_fraction=0.2)
    now = START + 3 * HOUR
    playlist = [v for c in w.channels[:5] for v in w.uploads.uploads(c.channel_id, now)]
    privacy = collections.Counter(v.privacy for v in playlist)
    assert privacy["private"] and privacy["deleted"] and privacy["public"]
    hidden = {v.video_id for v in playlist if v.privacy != "public"}
    found, total = w.search(SearchFilter(query="cricket|chess"), now, order="date", offset=0, limit=50, cap=10_000)
    everything = w.visible("cricket|chess", now)
    assert total == len(everything)
    assert not hidden & {v.video_id for v in everything}
    assert all(w.get(vid, now) is None for vid in hidden)
    assert all(v.privacy == "public" for v in found)
    # the count without hidden videos: what walking the streams finds
    stream_public = sum(
        1
        for s in w.streams.values()
        for i in range(*_inclusive(s.index_range(w.floor, int(now))))
        if s.core(i).privacy == "public"
    )
    assert total == stream_public


def _inclusive(bounds: tuple[int, int]) -> tuple[int, int]:
    return bounds[0], bounds[1] + 1


def test_search_lag_delays_search_only() -> None:
    w = world(search_lag_seconds=300)
    newest = w.uploads.uploads(w.channels[0].channel_id, START)[0]
    assert w.get(newest.video_id, newest.published_at) == newest
    at_publish = {v.video_id for v in w.visible(None, newest.published_at + 299)}
    after_lag = {v.video_id for v in w.visible(None, newest.published_at + 300)}
    assert newest.video_id not in at_publish
    assert newest.video_id in after_lag
    _, total = w.search(SearchFilter(), START, order="date", offset=0, limit=0, cap=10_000)
    assert total == len(w.visible(None, START))


def test_injected_videos_join_a_channel_with_their_own_times() -> None:
    w = world()
    cid = w.channels[7].channel_id
    newer = w.inject(title="newer", description="", published_at=START + 60, channel_id_=cid)
    scheduled = w.inject(
        title="scheduled", description="", published_at=START + HOUR, uploaded_at=START, channel_id_=cid
    )
    private = w.inject(title="private", description="", published_at=START + 30, channel_id_=cid, privacy="private")
    order = [v.video_id for v in w.uploads.uploads(cid, START + 120) if v.injected]
    assert order == [newer.video_id, private.video_id, scheduled.video_id]
    assert w.get(scheduled.video_id, START + 120) is None
    assert w.get(scheduled.video_id, START + HOUR) == scheduled
    assert w.get(private.video_id, START + 2 * HOUR) is None
    with pytest.raises(ValueError, match="uploaded_at"):
        w.inject(title="x", description="", published_at=START, uploaded_at=START + 1, channel_id_=cid)
    # a channel only an injected video names exists from then on
    own = w.inject(title="own", description="", published_at=START, channel_id_="UC" + "a" * 22)
    assert w.uploads.channel("UC" + "a" * 22) == own.channel
    assert w.uploads.uploads(own.channel.channel_id, START) == [own]
