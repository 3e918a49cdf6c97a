"""videos.list: shape, raw text, durations, statistics, omitted ids, id limit, cost."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from services.youtube_emulator.testing import emulator_client, quiet_settings

Client = TestClient[web.Request, web.Application]

NOW = "2026-11-24T12:00:00Z"
DURATION = re.compile(r"^(P0D|PT(\d+H)?(\d+M)?(\d+S)?)$")


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    async with emulator_client(quiet_settings(emulator_live_fraction=0.2), now=NOW) as c:
        yield c


async def list_videos(client: Client, ids: list[str], part: str = "snippet,contentDetails,statistics") -> Any:
    response = await client.get("/youtube/v3/videos", params={"part": part, "id": ",".join(ids), "key": "k"})
    assert response.headers["Content-Type"] == "application/json; charset=UTF-8"
    return response.status, await response.json()


async def search_ids(client: Client, n: int = 10) -> list[str]:
    response = await client.get(
        "/youtube/v3/search", params={"part": "snippet", "q": "cricket", "order": "date", "maxResults": n, "key": "k"}
    )
    return [item["id"]["videoId"] for item in (await response.json())["items"]]


async def test_shape(client: Client) -> None:
    ids = await search_ids(client, 3)
    status, body = await list_videos(client, [*ids, "xxxxxxxxxxx"])
    assert status == 200
    assert list(body) == ["kind", "etag", "items", "pageInfo"]
    assert body["kind"] == "youtube#videoListResponse"
    assert len(body["etag"]) == 27
    assert body["pageInfo"] == {"totalResults": 3, "resultsPerPage": 3}
    assert [item["id"] for item in body["items"]] == ids
    for item in body["items"]:
        assert list(item) == ["kind", "etag", "id", "snippet", "contentDetails", "statistics"]
        assert item["kind"] == "youtube#video"
        snippet = item["snippet"]
        assert {"publishedAt", "channelId", "title", "description", "thumbnails", "channelTitle", "categoryId"} <= set(
            snippet
        )
        assert snippet["liveBroadcastContent"] in ("none", "upcoming", "live")
        assert snippet["localized"] == {"title": snippet["title"], "description": snippet["description"]}
        assert {"default", "medium", "high", "standard"} <= set(snippet["thumbnails"])
        assert snippet["thumbnails"]["standard"]["width"] == 640
        if "tags" in snippet:
            assert snippet["tags"]
        details = item["contentDetails"]
        assert DURATION.match(details["duration"])
        assert details["dimension"] == "2d"
        assert details["caption"] in ("true", "false")
        assert isinstance(details["licensedContent"], bool)
        assert details["contentRating"] == {}
        stats = item["statistics"]
        assert all(isinstance(v, str) and v.isdigit() for v in stats.values())
        assert {"viewCount", "favoriteCount", "commentCount"} <= set(stats)


async def test_raw_full_description(client: Client) -> None:
    ids = await search_ids(client, 20)
    _, body = await list_videos(client, ids, part="snippet")
    descriptions = [item["snippet"]["description"] for item in body["items"]]
    assert any("\n\n#" in d for d in descriptions)
    assert not any("&amp;" in d or "&#39;" in d for d in descriptions)
    assert any("&" in d or "'" in d for d in descriptions)


async def test_part_id_only(client: Client) -> None:
    ids = await search_ids(client, 2)
    _, body = await list_videos(client, ids, part="id")
    assert all(list(item) == ["kind", "etag", "id"] for item in body["items"])


async def test_status_and_live_details(client: Client) -> None:
    response = await client.get(
        "/youtube/v3/search",
        params={"part": "id", "q": "cricket", "type": "video", "eventType": "live", "maxResults": 5, "key": "k"},
    )
    live_ids = [i["id"]["videoId"] for i in (await response.json())["items"]]
    assert live_ids
    _, body = await list_videos(client, live_ids, part="snippet,status,liveStreamingDetails,contentDetails")
    for item in body["items"]:
        assert item["snippet"]["liveBroadcastContent"] == "live"
        assert item["status"]["privacyStatus"] == "public"
        assert "actualStartTime" in item["liveStreamingDetails"]
        assert "concurrentViewers" in item["liveStreamingDetails"]
        assert item["contentDetails"]["duration"] == "P0D"
        assert item["snippet"]["thumbnails"]["default"]["url"].endswith("default_live.jpg")


async def test_unknown_ids_omitted_and_duplicates_once(client: Client) -> None:
    ids = await search_ids(client, 2)
    status, body = await list_videos(client, ["nope", "AAAAAAAAAAA", ids[0], ids[0], ids[1]])
    assert status == 200
    assert [item["id"] for item in body["items"]] == ids
    _, empty = await list_videos(client, ["AAAAAAAAAAB"])
    assert empty["items"] == []
    assert empty["pageInfo"] == {"totalResults": 0, "resultsPerPage": 0}


async def test_more_than_50_ids(client: Client) -> None:
    ids = await search_ids(client, 50)
    status, _ = await list_videos(client, ids)
    assert status == 200
    status, body = await list_videos(client, [*ids, "AAAAAAAAAAA"])
    assert status == 400
    assert body["error"]["code"] == 400
    assert body["error"]["errors"][0]["location"] == "id"


async def test_missing_id_and_bad_part(client: Client) -> None:
    response = await client.get("/youtube/v3/videos", params={"part": "snippet", "key": "k"})
    assert response.status == 400
    assert (await response.json())["error"]["errors"][0]["reason"] == "missingRequiredParameter"
    status, body = await list_videos(client, ["AAAAAAAAAAA"], part="snippet,fileDetailz")
    assert status == 400
    assert body["error"]["message"] == "fileDetailz"


async def test_costs_one_unit() -> None:
    settings = quiet_settings(emulator_quota_model="units")
    async with emulator_client(settings, now=NOW) as client:
        await list_videos(client, ["AAAAAAAAAAA"])
        await client.get("/youtube/v3/search", params={"part": "snippet", "q": "cricket", "key": "k"})
        spend = await (await client.get("/admin/spend")).json()
        assert spend["keys"]["k"]["units"] == 101


async def test_published_but_not_yet_searchable_video_is_listed() -> None:
    settings = quiet_settings(emulator_late_fraction=1.0, emulator_late_max_seconds=600)
    async with emulator_client(settings, now=NOW) as client:
        await client.post(
            "/admin/videos",
            json={
                "title": "cricket late",
                "videoId": "LateLateLat",
                "publishedAt": "2026-11-24T11:59:00Z",
                "visibleAt": "2026-11-24T12:10:00Z",
            },
        )
        _, body = await list_videos(client, ["LateLateLat"])
        assert [i["id"] for i in body["items"]] == ["LateLateLat"]
        assert "LateLateLat" not in await search_ids(client, 50)


async def test_future_and_pre_backfill_videos_are_omitted(client: Client) -> None:
    ids = await search_ids(client, 1)
    await client.post("/admin/reset", json={"now": "2026-11-24T11:00:00Z", "frozen": True})
    _, body = await list_videos(client, ids)
    assert body["items"] == []  # published after the (new) clock
    await client.post("/admin/reset", json={"now": "2026-11-24T14:00:00Z", "frozen": True})
    _, body = await list_videos(client, ids)
    assert body["items"] == []  # before the new world's backfill floor


async def test_views_grow_with_time(client: Client) -> None:
    ids = await search_ids(client, 50)
    _, before = await list_videos(client, ids, part="statistics")
    await client.post("/admin/clock", json={"advance_seconds": 86400})
    _, after = await list_videos(client, ids, part="statistics")
    total_before = sum(int(i["statistics"]["viewCount"]) for i in before["items"])
    total_after = sum(int(i["statistics"]["viewCount"]) for i in after["items"])
    assert total_after > total_before
