from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.fetcher.snippets import enrich_event, event_from_search_item, parse_duration

FETCHED = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def _item(title: str, description: str = "d", channel_title: str = "c") -> dict[str, object]:
    return {
        "kind": "youtube#searchResult",
        "id": {"kind": "youtube#video", "videoId": "aB3dE5fG7hI"},
        "snippet": {
            "publishedAt": "2026-11-24T09:41:07Z",
            "channelId": "UC1a2B3c4D5e6F7g8H9i0J1k",
            "title": title,
            "description": description,
            "thumbnails": {
                "default": {"url": "https://i.ytimg.com/vi/aB3dE5fG7hI/default.jpg", "width": 120, "height": 90}
            },
            "channelTitle": channel_title,
            "liveBroadcastContent": "none",
            "publishTime": "2026-11-24T09:41:07Z",
        },
    }


def test_snippet_text_is_unescaped_exactly_once() -> None:
    event = event_from_search_item(
        _item("Kohli&#39;s 50th &amp; &quot;that&quot; catch", "Rock &amp;amp; Roll", "Sports &amp; Cricket"),
        "cricket",
        FETCHED,
    )
    assert event.title == 'Kohli\'s 50th & "that" catch'
    # The raw text really contained "&amp;": YouTube sent "&amp;amp;", one unescape keeps "&amp;".
    assert event.description == "Rock &amp; Roll"
    assert event.channel_title == "Sports & Cricket"
    assert event.published_at == datetime(2026, 11, 24, 9, 41, 7, tzinfo=UTC)
    assert event.query == "cricket"
    assert event.thumbnails["default"].width == 120


@pytest.mark.parametrize(
    "item",
    [
        {"id": {"kind": "youtube#channel", "channelId": "UCx"}, "snippet": {}},
        {"id": {"videoId": "aB3dE5fG7hI"}},
        {"id": {"videoId": "aB3dE5fG7hI"}, "snippet": {"title": "no date", "channelId": "UCx"}},
        {"id": {"videoId": "aB3dE5fG7hI"}, "snippet": {"publishedAt": "yesterday", "channelId": "UCx"}},
        {"id": {"videoId": "not-an-id"}, "snippet": {"publishedAt": "2026-11-24T09:41:07Z", "channelId": "UCx"}},
    ],
)
def test_unusable_items_are_refused(item: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        event_from_search_item(item, "cricket", FETCHED)


def _resource(**overrides: object) -> dict[str, object]:
    resource: dict[str, object] = {
        "kind": "youtube#video",
        "id": "aB3dE5fG7hI",
        "snippet": {
            "title": 'Kohli\'s 50th & "that" catch',
            "description": "Full highlights.\n\n#INDvAUS & more",
            "tags": ["cricket", "india"],
        },
        "contentDetails": {"duration": "PT12M41S"},
        "statistics": {"viewCount": "48213", "likeCount": "1904", "favoriteCount": "0", "commentCount": "211"},
    }
    resource.update(overrides)
    return resource


def test_videos_list_adds_raw_description_tags_duration_and_counts() -> None:
    event = event_from_search_item(_item("Kohli&#39;s 50th", "Full highlights. ..."), "cricket", FETCHED)
    enriched = enrich_event(event, _resource())
    # videos.list text is raw: taken as is, never unescaped
    assert enriched.description == "Full highlights.\n\n#INDvAUS & more"
    assert enriched.tags == ["cricket", "india"]
    assert (enriched.duration_seconds, enriched.view_count, enriched.like_count) == (761, 48213, 1904)
    assert enriched.title == event.title
    assert enriched.published_at == event.published_at


def test_hidden_likes_and_running_broadcasts_stay_unknown() -> None:
    item = _item("Live now")
    item["snippet"]["liveBroadcastContent"] = "live"  # type: ignore[index]
    event = event_from_search_item(item, "cricket", FETCHED)
    enriched = enrich_event(
        event, _resource(contentDetails={"duration": "P0D"}, statistics={"viewCount": "10", "favoriteCount": "0"})
    )
    assert enriched.duration_seconds is None
    assert enriched.like_count is None
    assert enriched.view_count == 10


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("PT12M41S", 761), ("PT1H", 3600), ("P1DT2H3M4S", 93784), ("PT59S", 59), ("P0D", 0), ("P1W", 604800)],
)
def test_iso_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "P", "PT", "12:41", "PT1.5S", "garbage"])
def test_unreadable_durations_are_unknown(text: str) -> None:
    assert parse_duration(text) is None
