from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.fetcher.snippets import event_from_search_item

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
