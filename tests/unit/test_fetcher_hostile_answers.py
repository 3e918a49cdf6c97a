"""Broken answers at the fetcher's edge: wrong-typed text is refused, not coerced; bodies are bounded."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from services.fetcher.settings import parse_key_entries
from services.fetcher.snippets import enrich_event, event_from_search_item
from services.fetcher.youtube_client import MAX_BODY_BYTES, YouTubeClient, YouTubeTransportError

FETCHED = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
ITEM: dict[str, Any] = {
    "kind": "youtube#searchResult",
    "id": {"kind": "youtube#video", "videoId": "aB3dE5fG7hI"},
    "snippet": {
        "publishedAt": "2026-11-24T09:41:07Z",
        "channelId": "UC1a2B3c4D5e6F7g8H9i0J1k",
        "title": "Kohli&#39;s 50th",
        "description": "Full highlights.",
        "thumbnails": {"default": {"url": "https://i.ytimg.com/vi/aB3dE5fG7hI/default.jpg", "width": 120}},
        "channelTitle": "Sports",
        "liveBroadcastContent": "none",
    },
}


def with_snippet(**changes: Any) -> dict[str, Any]:
    item = copy.deepcopy(ITEM)
    item["snippet"].update(changes)
    return item


def test_the_intact_item_is_a_video() -> None:
    event = event_from_search_item(ITEM, "cricket", FETCHED)
    assert (event.title, event.channel_id) == ("Kohli's 50th", "UC1a2B3c4D5e6F7g8H9i0J1k")


@pytest.mark.parametrize(
    "item",
    [
        with_snippet(title=12345),
        with_snippet(title=None),
        with_snippet(channelId={"nested": True}),
        with_snippet(channelId=["UC1a2B3c4D5e6F7g8H9i0J1k"]),
        with_snippet(description=["not", "text"]),
        with_snippet(channelTitle=7),
        with_snippet(thumbnails=["not", "an", "object"]),
        with_snippet(description="x" * 10 * 1024 * 1024),
        with_snippet(publishedAt="9999-12-31T23:59:59Z"),
        with_snippet(publishedAt="1970-01-01T00:00:00Z"),
        with_snippet(publishedAt="2026-02-30T25:61:00Z"),
    ],
    ids=[
        "title-number",
        "title-null",
        "channel-object",
        "channel-list",
        "description-list",
        "channel-title-number",
        "thumbnails-list",
        "description-10-MB",
        "year-9999",
        "epoch",
        "february-30th",
    ],
)
def test_wrong_types_and_absurd_values_are_refused_never_coerced(item: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # the poller logs it with the query and skips the item
        event_from_search_item(item, "cricket", FETCHED)


@pytest.fixture
async def upstream() -> AsyncIterator[str]:
    async def search(request: web.Request) -> web.StreamResponse:
        size = int(request.query["size"])
        if request.query.get("chunked"):
            # No Content-Length: the client must stop reading by itself.
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            response.enable_chunked_encoding()
            await response.prepare(request)
            await response.write(b'{"items": [], "pad": "')
            for _ in range(size // (1 << 20)):
                await response.write(b"x" * (1 << 20))
            await response.write(b'"}')
            return response
        return web.Response(body=b'{"items": [], "pad": "' + b"x" * size + b'"}', content_type="application/json")

    app = web.Application()
    app.router.add_get("/youtube/v3/search", search)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("/youtube/v3"))
    await server.close()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_body_over_the_limit_is_refused_a_big_one_under_it_read(upstream: str, chunked: bool) -> None:
    key = parse_key_entries(["AIzaFAKEunitunitunitunitunitunitunitun"])[0]
    flag = {"chunked": "1"} if chunked else {}
    async with aiohttp.ClientSession() as session:
        client = YouTubeClient(session, upstream, timeout_seconds=30)
        page = await client.search(key, {"size": str(10 * 1024 * 1024)} | flag)
        assert len(page["pad"]) == 10 * 1024 * 1024
        with pytest.raises(YouTubeTransportError, match="body over") as caught:
            await client.search(key, {"size": str(MAX_BODY_BYTES + (1 << 20))} | flag)
        assert key.secret not in str(caught.value)


def test_an_impossibly_long_description_from_videos_list_is_refused_not_cut() -> None:
    event = event_from_search_item(ITEM, "cricket", FETCHED)
    resource = {
        "id": "aB3dE5fG7hI",
        "snippet": {"description": "x" * 10 * 1024 * 1024},
        "statistics": {"viewCount": "7"},
    }
    enriched = enrich_event(event, resource)
    assert enriched.description == "Full highlights."  # the search snippet's, not 10,000 x's
    assert enriched.view_count == 7  # the rest of the resource still counts
    assert enrich_event(event, {"snippet": {"description": "The whole story."}}).description == "The whole story."
