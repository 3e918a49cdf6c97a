"""Followed channels, pure: FOLLOW_CHANNELS, the uploads playlist's answers, newness by id, batching across channels."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from services.common.events import FoundBy, VideoEvent
from services.common.fetcher_state import MAX_KNOWN_VIDEOS
from services.common.settings import PROJECT_ROOT
from services.fetcher.channel_delivery import ChannelDelivery
from services.fetcher.channel_progress import DEEP_READ_EVERY, KNOWN_HORIZON, ChannelProgress
from services.fetcher.channel_roster import ChannelRoster, config_digest
from services.fetcher.clock import Clock
from services.fetcher.followed_channel import ChannelParts
from services.fetcher.gateway import YouTubeGateway
from services.fetcher.keys import KeyPool
from services.fetcher.lease import LeaderLease
from services.fetcher.metrics import FetcherMetrics
from services.fetcher.playlist import MalformedAnswerError, playlist_params, read_page, uploads_playlist_id
from services.fetcher.publisher import VideoPublisher
from services.fetcher.scheduler import QuotaGate, ScheduleBudget, Scheduler
from services.fetcher.settings import Settings as FetcherSettings
from services.fetcher.settings import parse_key_entries
from services.fetcher.store import FetcherStore

CHANNEL = "UC" + "a" * 22
OTHER = "UC" + "b" * 22
NOW = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def item(video_id: str, *, uploaded: datetime, published: datetime | None, title: str = "A video") -> dict[str, Any]:
    """A playlistItems.list item as YouTube writes it (part=snippet,contentDetails)."""
    details: dict[str, Any] = {"videoId": video_id}
    if published is not None:
        details["videoPublishedAt"] = stamp(published)
    return {
        "kind": "youtube#playlistItem",
        "etag": "e",
        "id": "UExp" + video_id,
        "snippet": {
            "publishedAt": stamp(uploaded),
            "channelId": CHANNEL,
            "title": title,
            "description": "Tom & Jerry <3",
            "thumbnails": {"default": {"url": f"https://i.ytimg.com/vi/{video_id}/default.jpg", "width": 120}},
            "channelTitle": "The Channel",
            "playlistId": "UU" + CHANNEL[2:],
            "position": 0,
            "resourceId": {"kind": "youtube#video", "videoId": video_id},
            "videoOwnerChannelTitle": "The Channel",
            "videoOwnerChannelId": CHANNEL,
        },
        "contentDetails": details,
    }


def page(items: list[dict[str, Any]], token: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "youtube#playlistItemListResponse",
        "etag": "p",
        "pageInfo": {"totalResults": len(items), "resultsPerPage": 50},
        "items": items,
    }
    if token:
        body["nextPageToken"] = token
    return body


# FOLLOW_CHANNELS ------------------------------------------------------------------------------


def test_follow_channels_split_on_commas_and_whitespace_once_each(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOLLOW_CHANNELS", f" {CHANNEL},{OTHER}\n {CHANNEL} ,, ")
    assert FetcherSettings().follow_channels == [CHANNEL, OTHER]


def test_follow_channels_defaults_to_none_and_the_units_settings_to_youtubes(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FOLLOW_CHANNELS", "YOUTUBE_UNITS_PER_DAY", "UNITS_RESERVE_FOR_ENRICHMENT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("MAX_CHANNEL_INTERVAL_SECONDS", raising=False)
    settings = FetcherSettings()
    assert settings.follow_channels == []
    assert settings.youtube_units_per_day == 10_000
    assert settings.units_reserve_for_enrichment == 0.2
    assert settings.max_channel_interval_seconds == 1800


@pytest.mark.parametrize("bad", ["UCshort", "UU" + "a" * 22, "UC" + "a" * 21 + "!", "UC" + "a" * 23])
def test_a_malformed_channel_id_stops_the_fetcher_at_start_with_one_line_naming_it(bad: str) -> None:
    env = {**os.environ, "YOUTUBE_API_KEYS": "k", "FOLLOW_CHANNELS": f"{CHANNEL},{bad}"}
    result = subprocess.run(
        [sys.executable, "-m", "services.fetcher"],
        check=False,
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("tubewatch: invalid setting FOLLOW_CHANNELS:")
    assert repr(bad) in lines[0]
    assert "Traceback" not in result.stderr


def test_the_configuration_digest_changes_with_the_explicit_set_only() -> None:
    assert config_digest([CHANNEL, OTHER]) == config_digest([OTHER, CHANNEL, CHANNEL])
    assert config_digest([CHANNEL]) != config_digest([CHANNEL, OTHER])


# The playlist's answers -------------------------------------------------------------------------


def test_the_uploads_playlist_comes_from_channels_list_and_an_unknown_channel_has_none() -> None:
    known = {"items": [{"id": CHANNEL, "contentDetails": {"relatedPlaylists": {"likes": "", "uploads": "UUxyz"}}}]}
    assert uploads_playlist_id(known) == "UUxyz"
    assert uploads_playlist_id({"kind": "youtube#channelListResponse", "pageInfo": {"totalResults": 0}}) is None
    assert uploads_playlist_id({"items": []}) is None
    with pytest.raises(MalformedAnswerError):
        uploads_playlist_id({"items": [{"id": CHANNEL, "contentDetails": {}}]})


def test_a_read_asks_fifty_items_with_snippet_and_content_details() -> None:
    expected = {"part": "snippet,contentDetails", "playlistId": "UUxyz", "maxResults": "50"}
    assert playlist_params("UUxyz", None) == expected
    assert playlist_params("UUxyz", "tok")["pageToken"] == "tok"


def test_video_published_at_is_the_publish_time_and_text_is_taken_as_is() -> None:
    uploaded, published = NOW - timedelta(days=3), NOW - timedelta(minutes=5)
    result = read_page(page([item("vid00000001", uploaded=uploaded, published=published)], "next"), CHANNEL, NOW)
    [event] = result.videos
    assert event.published_at == published
    assert event.found_by == FoundBy.channel(CHANNEL)
    assert event.query is None
    assert event.description == "Tom & Jerry <3"
    assert event.channel_id == CHANNEL and event.channel_title == "The Channel"
    assert result.oldest_upload == uploaded
    assert result.next_page_token == "next"


def test_private_deleted_and_not_yet_published_items_are_pending_not_videos() -> None:
    result = read_page(
        page(
            [
                item("private0001", uploaded=NOW, published=None, title="Private video"),
                item("deleted0001", uploaded=NOW, published=NOW - timedelta(hours=1), title="Deleted video"),
                item("nopubdate01", uploaded=NOW, published=None),
                item("scheduled01", uploaded=NOW - timedelta(hours=1), published=NOW + timedelta(hours=2)),
                item("public00001", uploaded=NOW, published=NOW),
            ]
        ),
        CHANNEL,
        NOW,
    )
    assert [e.video_id for e in result.videos] == ["public00001"]
    assert result.pending == ["private0001", "deleted0001", "nopubdate01", "scheduled01"]


def test_items_that_are_no_video_are_counted_and_skipped_and_a_broken_page_is_refused() -> None:
    broken = item("x", uploaded=NOW, published=NOW)  # not an 11-character id
    result = read_page(page([broken, "junk", {"snippet": {}}]), CHANNEL, NOW)  # type: ignore[list-item]
    assert result.videos == [] and result.unusable == 3
    with pytest.raises(MalformedAnswerError):
        read_page({"items": "nope"}, CHANNEL, NOW)
    with pytest.raises(MalformedAnswerError):
        read_page({"items": [], "nextPageToken": 7}, CHANNEL, NOW)


# Newness by id ----------------------------------------------------------------------------------


def test_newness_is_by_id_not_by_position_or_time() -> None:
    progress = ChannelProgress.fresh(CHANNEL, NOW - timedelta(days=2), lookback_seconds=3600)
    progress.record({"known000001": NOW - timedelta(hours=1)}, NOW)
    # Published long before the newest known video, yet new: a late-published upload.
    assert progress.is_new("late0000001", NOW - timedelta(days=1), NOW)
    assert not progress.is_new("known000001", NOW - timedelta(hours=1), NOW)
    # Before the channel's origin (its first read less the lookback): history, never new.
    assert not progress.is_new("ancient0001", NOW - timedelta(days=2, hours=2), NOW)


def test_known_ids_stay_bounded_without_making_a_forgotten_video_new() -> None:
    progress = ChannelProgress.fresh(CHANNEL, NOW - timedelta(days=30), lookback_seconds=0)
    progress.record({"old00000001": NOW - KNOWN_HORIZON - timedelta(hours=1)}, NOW)
    assert "old00000001" not in progress.known
    assert not progress.is_new("old00000001", NOW - KNOWN_HORIZON - timedelta(hours=1), NOW)
    many = {f"v{i:010d}": NOW - timedelta(seconds=i) for i in range(MAX_KNOWN_VIDEOS + 10)}
    progress.record(many, NOW)
    assert len(progress.known) == MAX_KNOWN_VIDEOS
    forgotten = f"v{MAX_KNOWN_VIDEOS + 5:010d}"
    assert forgotten not in progress.known
    assert not progress.is_new(forgotten, many[forgotten], NOW)


def test_the_deep_read_is_due_a_day_after_the_last_and_the_state_round_trips() -> None:
    progress = ChannelProgress.fresh(CHANNEL, NOW, lookback_seconds=3600)
    assert not progress.deep_read_due(NOW + DEEP_READ_EVERY - timedelta(seconds=1))
    assert progress.deep_read_due(NOW + DEEP_READ_EVERY)
    progress.uploads_playlist_id = "UUxyz"
    progress.record({"known000001": NOW}, NOW)
    again = ChannelProgress.from_doc(progress.to_doc(NOW), NOW + timedelta(hours=1), lookback_seconds=3600)
    assert again.known == progress.known and again.origin == progress.origin
    assert again.uploads_playlist_id == "UUxyz" and again.last_deep_read_at == NOW


# Batching across channels -----------------------------------------------------------------------


class FakeGateway:
    def __init__(self, public: set[str] | None = None) -> None:
        self.calls: list[list[str]] = []
        self._public = public

    async def videos(self, ids: list[str]) -> dict[str, Any]:
        self.calls.append(ids)
        shown = [i for i in ids if self._public is None or i in self._public]
        return {"items": [{"id": i, "snippet": {"liveBroadcastContent": "none", "tags": ["t"]}} for i in shown]}


class FakePublisher:
    def __init__(self) -> None:
        self.published: list[str] = []

    async def publish_videos(self, events: Sequence[VideoEvent], lease_token: int) -> None:
        self.published.extend(event.video_id for event in events)


class FakeLease:
    def check(self) -> int:
        return 7


class FixedClock:
    def now(self) -> datetime:
        return NOW

    async def sleep_until(self, moment: datetime) -> None:
        return None


class Sink:
    def __init__(self, channel_id: str) -> None:
        self.channel_id = channel_id
        self.confirmed_ids: list[str] = []

    async def confirmed(self, events: Sequence[VideoEvent], at: datetime) -> None:
        self.confirmed_ids.extend(event.video_id for event in events)


def event(video_id: str, channel_id: str) -> VideoEvent:
    return VideoEvent(
        video_id=video_id,
        found_by=FoundBy.channel(channel_id),
        title="t",
        published_at=NOW,
        channel_id=channel_id,
        fetched_at=NOW,
    )


def delivery(gateway: FakeGateway, publisher: FakePublisher) -> ChannelDelivery:
    return ChannelDelivery(
        gateway=cast(YouTubeGateway, gateway),
        publisher=cast(VideoPublisher, publisher),
        lease=cast(LeaderLease, FakeLease()),
        clock=cast(Clock, FixedClock()),
        metrics=FetcherMetrics(CollectorRegistry()),
    )


async def test_several_channels_new_videos_share_one_videos_list_call_of_up_to_fifty() -> None:
    gateway, publisher = FakeGateway(), FakePublisher()
    out = delivery(gateway, publisher)
    a, b = Sink(CHANNEL), Sink(OTHER)
    await out.add(a, [event(f"a{i:010d}", CHANNEL) for i in range(30)])
    assert gateway.calls == []  # waits for more, or for the end of the cycle
    assert len(out.pending_ids(CHANNEL)) == 30
    await out.add(b, [event(f"b{i:010d}", OTHER) for i in range(30)])
    assert [len(ids) for ids in gateway.calls] == [50]  # 30 of a and 20 of b in one call
    assert len(a.confirmed_ids) == 30 and len(b.confirmed_ids) == 20
    await out.flush()
    assert [len(ids) for ids in gateway.calls] == [50, 10]
    assert len(b.confirmed_ids) == 30 and len(set(publisher.published)) == 60 == len(publisher.published)
    assert out.pending_ids(CHANNEL) == set() == out.pending_ids(OTHER)


async def test_a_video_videos_list_does_not_return_is_not_published_nor_confirmed() -> None:
    gateway, publisher = FakeGateway(public={"public00001"}), FakePublisher()
    out = delivery(gateway, publisher)
    sink = Sink(CHANNEL)
    await out.add(sink, [event("public00001", CHANNEL), event("private0001", CHANNEL)])
    await out.flush()
    assert publisher.published == ["public00001"]
    assert sink.confirmed_ids == ["public00001"]


# The roster: the followed set as work items --------------------------------------------------


class FakeFollows:
    def __init__(self) -> None:
        self.ids: list[str] = []

    def set_sources(self, explicit: Sequence[str], excluded: Collection[str]) -> None:
        self.ids = [channel_id for channel_id in explicit if channel_id not in excluded]

    async def load(self) -> None:
        return None

    async def current(self, now: datetime) -> Sequence[Any]:
        return [SimpleNamespace(channel_id=channel_id) for channel_id in self.ids]


class FakeStore:
    def __init__(self) -> None:
        self.saved: list[str] = []

    async def load_channel(self, channel_id: str) -> None:
        return None

    async def save_channel(self, doc: Any, token: int) -> None:
        self.saved.append(doc.channel_id)


async def test_the_roster_follows_the_followed_set_and_forgets_a_channel_that_left() -> None:
    third = "UC" + "c" * 22
    registry = CollectorRegistry()
    metrics = FetcherMetrics(registry)
    store = FakeStore()
    parts = ChannelParts(
        gateway=cast(YouTubeGateway, FakeGateway()),
        delivery=delivery(FakeGateway(), FakePublisher()),
        store=cast(FetcherStore, store),
        pool=KeyPool(parse_key_entries(["AIzaFAKEaaaaaaaaaaaaaaaaaaaaaaaaaaaa0001"]), 100),
        lease=cast(LeaderLease, FakeLease()),
        clock=cast(Clock, FixedClock()),
        metrics=metrics,
        max_pages=20,
        lookback_seconds=3600,
        config_digest=config_digest([CHANNEL]),
    )
    follows = FakeFollows()
    roster = ChannelRoster(follows=follows, parts=parts)
    scheduler = Scheduler(
        clock=cast(Clock, FixedClock()),
        pool=cast(QuotaGate, None),
        budget=cast(ScheduleBudget, SimpleNamespace(plan=None)),
        metrics=metrics,
        hooks=roster,
    )
    follows.ids = [CHANNEL, OTHER]
    await roster.prepare(scheduler, NOW)
    assert [item.name for item in scheduler.items] == [CHANNEL, OTHER]
    metrics.channel_interval.labels(OTHER).set(60)
    assert OTHER in generate_latest(registry).decode()
    follows.ids = [CHANNEL, third]
    await roster.after_cycle(scheduler)
    assert [item.name for item in scheduler.items] == [CHANNEL, third]
    assert store.saved == [third]  # a channel that joins is loaded (and its origin saved) at once
    shown = generate_latest(registry).decode()
    assert f'tubewatch_fetcher_channel_planned_interval_seconds{{channel="{OTHER}"}}' not in shown
