"""channels.list and playlistItems.list over HTTP: YouTube's shapes, pages, errors and what they cost."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from services.youtube_emulator.hostile import ABSURD_DATES
from services.youtube_emulator.testing import emulator_client, quiet_settings
from services.youtube_emulator.timestamps import format_timestamp, parse_rfc3339

Client = TestClient[web.Request, web.Application]

NOW = "2026-11-24T12:00:00Z"
UNKNOWN_CHANNEL = "UC" + "Z" * 22
ITEM_SNIPPET_KEYS = {
    "publishedAt",
    "channelId",
    "title",
    "description",
    "thumbnails",
    "channelTitle",
    "playlistId",
    "position",
    "resourceId",
    "videoOwnerChannelTitle",
    "videoOwnerChannelId",
}


def at(text: str, seconds: float = 0) -> str:
    moment = parse_rfc3339(text)
    assert moment is not None
    return format_timestamp(moment + seconds)


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    settings = quiet_settings(search_queries=["cricket", "chess"], emulator_channels=30, emulator_backfill_seconds=7200)
    async with emulator_client(settings, now=NOW) as c:
        yield c


async def call(client: Client, path: str, **params: Any) -> tuple[int, dict[str, Any]]:
    query = {"key": "k", **{name: str(value) for name, value in params.items()}}
    response = await client.get(f"/youtube/v3/{path}", params=query)
    assert response.headers["Content-Type"] == "application/json; charset=UTF-8"
    body: dict[str, Any] = await response.json()
    return response.status, body


async def world_channels(client: Client) -> list[dict[str, Any]]:
    channels: list[dict[str, Any]] = (await (await client.get("/admin/world")).json())["channels"]
    return channels


async def items_page(client: Client, playlist_id: str, **params: Any) -> dict[str, Any]:
    status, body = await call(client, "playlistItems", part="snippet,contentDetails", playlistId=playlist_id, **params)
    assert status == 200, body
    return body


async def walk(client: Client, playlist_id: str, max_results: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    token: str | None = None
    for _ in range(200):
        page = await items_page(client, playlist_id, maxResults=max_results, **({"pageToken": token} if token else {}))
        items.extend(page["items"])
        token = page.get("nextPageToken")
        if token is None:
            return items
    raise AssertionError("the walk did not end")


async def inject(client: Client, **body: Any) -> dict[str, Any]:
    response = await client.post("/admin/videos", json=body)
    assert response.status == 201, await response.text()
    record: dict[str, Any] = await response.json()
    return record


# channels.list ----------------------------------------------------------------------------------


async def test_channels_list_names_each_known_channels_uploads_playlist(client: Client) -> None:
    first, second = (c["channelId"] for c in (await world_channels(client))[:2])
    status, body = await call(client, "channels", part="contentDetails", id=f"{first},{UNKNOWN_CHANNEL},{second}")
    assert status == 200
    assert body["kind"] == "youtube#channelListResponse"
    assert len(body["etag"]) == 27
    assert body["pageInfo"] == {"totalResults": 2, "resultsPerPage": 2}
    assert [item["id"] for item in body["items"]] == [first, second]
    for item in body["items"]:
        assert item["kind"] == "youtube#channel"
        assert item["contentDetails"]["relatedPlaylists"]["uploads"] == "UU" + item["id"][2:]
        assert "snippet" not in item
    status, body = await call(client, "channels", part="snippet", id=first)
    snippet = body["items"][0]["snippet"]
    assert snippet["title"] == (await world_channels(client))[0]["title"]
    assert snippet["customUrl"].startswith("@")


async def test_an_unknown_channel_is_an_empty_200(client: Client) -> None:
    status, body = await call(client, "channels", part="contentDetails", id=UNKNOWN_CHANNEL)
    assert status == 200
    assert body["items"] == []
    assert body["pageInfo"]["totalResults"] == 0


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"id": UNKNOWN_CHANNEL}, "missingRequiredParameter"),
        ({"part": "contentDetails"}, "missingRequiredParameter"),
        ({"part": "brandingFoo", "id": UNKNOWN_CHANNEL}, "unknownPart"),
        ({"part": "contentDetails", "id": ",".join(f"UC{i:022d}" for i in range(51))}, "invalidFilters"),
    ],
)
async def test_bad_channels_requests_answer_like_youtube(client: Client, params: dict[str, str], reason: str) -> None:
    status, body = await call(client, "channels", **params)
    assert status == 400
    assert body["error"]["errors"][0]["reason"] == reason


# playlistItems.list -----------------------------------------------------------------------------


async def test_a_playlist_item_has_youtubes_shape(client: Client) -> None:
    channel = (await world_channels(client))[0]
    page = await items_page(client, channel["uploadsPlaylistId"], maxResults=3)
    assert page["kind"] == "youtube#playlistItemListResponse"
    assert len(page["etag"]) == 27
    assert page["nextPageToken"].startswith("EAAa")
    assert page["pageInfo"]["resultsPerPage"] == 3
    assert len(page["items"]) == 3
    item = page["items"][0]
    assert set(item) == {"kind", "etag", "id", "snippet", "contentDetails"}
    assert item["kind"] == "youtube#playlistItem"
    snippet, details = item["snippet"], item["contentDetails"]
    assert set(snippet) == ITEM_SNIPPET_KEYS
    assert snippet["channelId"] == snippet["videoOwnerChannelId"] == channel["channelId"]
    assert snippet["playlistId"] == channel["uploadsPlaylistId"]
    assert snippet["position"] == 0
    assert snippet["resourceId"] == {"kind": "youtube#video", "videoId": details["videoId"]}
    assert set(details) == {"videoId", "videoPublishedAt"}
    assert set(snippet["thumbnails"]) >= {"default", "medium", "high", "standard"}
    # the same video through videos.list: same publish time, same raw title
    _, videos = await call(client, "videos", part="snippet", id=details["videoId"])
    assert videos["items"][0]["snippet"]["publishedAt"] == details["videoPublishedAt"]
    assert videos["items"][0]["snippet"]["title"] == snippet["title"]


async def test_pages_walk_the_whole_playlist_newest_upload_first(client: Client) -> None:
    channel = (await world_channels(client))[0]
    truth = await (await client.get("/admin/uploads", params={"channel_id": channel["channelId"]})).json()
    assert truth["count"] > 12
    items = await walk(client, channel["uploadsPlaylistId"], 5)
    assert [i["contentDetails"]["videoId"] for i in items] == [v["videoId"] for v in truth["videos"]]
    assert [i["snippet"]["position"] for i in items] == list(range(truth["count"]))
    uploads = [i["snippet"]["publishedAt"] for i in items]
    assert uploads == sorted(uploads, reverse=True)
    # both queries' videos are in a channel's uploads
    assert {v["query"] for v in truth["videos"]} == {"cricket", "chess"}
    default = await items_page(client, channel["uploadsPlaylistId"])
    assert len(default["items"]) == 5
    assert default["pageInfo"]["totalResults"] == truth["count"]
    empty = await items_page(client, channel["uploadsPlaylistId"], maxResults=0)
    assert empty["items"] == [] and "nextPageToken" not in empty
    full = await items_page(client, channel["uploadsPlaylistId"], maxResults=50)
    assert len(full["items"]) == min(50, truth["count"])


async def test_a_new_upload_is_in_the_playlist_at_once_and_in_search_after_the_lag() -> None:
    settings = quiet_settings(emulator_search_lag_seconds=300)
    async with emulator_client(settings, now=NOW) as client:
        channel = (await world_channels(client))[3]
        video = await inject(client, title="cricket lag test", channel_id=channel["channelId"], published_at=NOW)
        top = (await items_page(client, channel["uploadsPlaylistId"], maxResults=1))["items"][0]
        assert top["contentDetails"] == {"videoId": video["videoId"], "videoPublishedAt": NOW}
        search = {"part": "snippet", "q": "cricket", "type": "video", "order": "date", "maxResults": 1}
        _, found = await call(client, "search", **search)
        assert found["items"][0]["id"]["videoId"] != video["videoId"]
        await client.post("/admin/clock", json={"advance_seconds": 300})
        _, found = await call(client, "search", **search)
        assert found["items"][0]["id"]["videoId"] == video["videoId"]


async def test_a_scheduled_video_sits_below_newer_uploads_and_shows_its_publish_time_once_out(
    client: Client,
) -> None:
    channel = (await world_channels(client))[5]
    cid, playlist = channel["channelId"], channel["uploadsPlaylistId"]
    scheduled = await inject(
        client, title="cricket premiere", channel_id=cid, uploaded_at=at(NOW, 1), published_at=at(NOW, 3600)
    )
    newer = [
        await inject(client, title=f"cricket clip {n}", channel_id=cid, published_at=at(NOW, 10 + n)) for n in range(3)
    ]
    await client.post("/admin/clock", json={"advance_seconds": 60})
    items = (await items_page(client, playlist, maxResults=5))["items"]
    assert [i["contentDetails"]["videoId"] for i in items[:4]] == [
        *(v["videoId"] for v in reversed(newer)),
        scheduled["videoId"],
    ]
    waiting = items[3]
    assert waiting["snippet"]["title"] == "Private video"
    assert waiting["snippet"]["publishedAt"] == at(NOW, 1)
    assert waiting["contentDetails"] == {"videoId": scheduled["videoId"]}
    assert "videoOwnerChannelId" not in waiting["snippet"]
    _, videos = await call(client, "videos", part="snippet", id=scheduled["videoId"])
    assert videos["items"] == []

    await client.post("/admin/clock", json={"now": at(NOW, 3600)})
    items = (await items_page(client, playlist, maxResults=50))["items"]
    position = {i["contentDetails"]["videoId"]: i["snippet"]["position"] for i in items}
    # published after them, still below them: the playlist is ordered by upload
    assert all(position[v["videoId"]] < position[scheduled["videoId"]] for v in newer)
    out = items[position[scheduled["videoId"]]]
    assert out["contentDetails"] == {"videoId": scheduled["videoId"], "videoPublishedAt": at(NOW, 3600)}
    assert out["snippet"]["title"] == "cricket premiere"
    assert out["snippet"]["publishedAt"] == at(NOW, 1)
    _, videos = await call(client, "videos", part="snippet", id=scheduled["videoId"])
    assert videos["items"][0]["snippet"]["publishedAt"] == at(NOW, 3600)


async def test_private_and_deleted_items_have_no_publish_time_and_are_never_published(client: Client) -> None:
    channel = (await world_channels(client))[6]
    private = await inject(
        client, title="cricket secret", channel_id=channel["channelId"], published_at=NOW, privacy="private"
    )
    deleted = await inject(
        client, title="cricket gone", channel_id=channel["channelId"], published_at=NOW, privacy="deleted"
    )
    status, page = await call(
        client, "playlistItems", part="snippet,contentDetails,status", playlistId=channel["uploadsPlaylistId"]
    )
    assert status == 200
    by_id = {i["contentDetails"]["videoId"]: i for i in page["items"]}
    assert by_id[private["videoId"]]["snippet"]["title"] == "Private video"
    assert by_id[private["videoId"]]["status"] == {"privacyStatus": "private"}
    assert by_id[deleted["videoId"]]["snippet"]["title"] == "Deleted video"
    assert by_id[deleted["videoId"]]["snippet"]["thumbnails"] == {}
    for hidden in (private, deleted):
        assert "videoPublishedAt" not in by_id[hidden["videoId"]]["contentDetails"]
    _, videos = await call(client, "videos", part="id", id=f"{private['videoId']},{deleted['videoId']}")
    assert videos["items"] == []
    _, found = await call(client, "search", part="snippet", q="cricket", type="video", order="date", maxResults=50)
    assert not {private["videoId"], deleted["videoId"]} & {i["id"]["videoId"] for i in found["items"]}


async def test_an_unknown_playlist_is_a_404_playlist_not_found(client: Client) -> None:
    for playlist in ("UU" + "Z" * 22, "PLnotanuploadsplaylist"):
        status, body = await call(client, "playlistItems", part="snippet", playlistId=playlist)
        assert status == 404
        assert body == {
            "error": {
                "code": 404,
                "message": "The playlist identified with the request's <code>playlistId</code> parameter cannot "
                "be found.",
                "errors": [
                    {
                        "message": "The playlist identified with the request's <code>playlistId</code> parameter "
                        "cannot be found.",
                        "domain": "youtube.playlistItem",
                        "reason": "playlistNotFound",
                        "location": "playlistId",
                        "locationType": "parameter",
                    }
                ],
            }
        }
    raw = await (
        await client.get("/youtube/v3/playlistItems", params={"part": "id", "playlistId": "UUx", "key": "k"})
    ).text()
    assert "\\u003ccode\\u003eplaylistId\\u003c/code\\u003e" in raw


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"playlistId": "UUx"}, "missingRequiredParameter"),
        ({"part": "snippet"}, "missingRequiredParameter"),
        ({"part": "statistics", "playlistId": "UUx"}, "unknownPart"),
        ({"part": "snippet", "playlistId": "UUx", "maxResults": "51"}, "invalidParameter"),
        ({"part": "snippet", "playlistId": "UUx", "pageToken": "CAEQAA"}, "invalidPageToken"),
    ],
)
async def test_bad_playlist_items_requests_answer_like_youtube(
    client: Client, params: dict[str, str], reason: str
) -> None:
    status, body = await call(client, "playlistItems", **params)
    assert status == 400
    assert body["error"]["errors"][0]["reason"] == reason


async def test_absurd_dates_reach_a_playlist_items_publish_time() -> None:
    async with emulator_client(quiet_settings(emulator_hostile_absurd_dates=1.0), now=NOW) as client:
        channel = (await world_channels(client))[0]
        page = await items_page(client, channel["uploadsPlaylistId"], maxResults=50)
        mangled = [i for i in page["items"] if i["contentDetails"].get("videoPublishedAt") in ABSURD_DATES]
        assert len(mangled) == 1
        assert mangled[0]["snippet"]["publishedAt"] == mangled[0]["contentDetails"]["videoPublishedAt"]
