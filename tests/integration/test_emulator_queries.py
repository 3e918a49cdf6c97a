"""Queries first asked at run time: the emulator makes a stream for them on first use, like a configured one."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from services.youtube_emulator.testing import emulator_client, quiet_settings

Client = TestClient[web.Request, web.Application]

NOW = "2026-11-24T12:00:00Z"


async def search(client: Client, q: str, **params: Any) -> dict[str, Any]:
    query = {"part": "snippet", "type": "video", "order": "date", "maxResults": "50", "key": "k", "q": q}
    response = await client.get("/youtube/v3/search", params={**query, **{k: str(v) for k, v in params.items()}})
    assert response.status == 200
    body: dict[str, Any] = await response.json()
    return body


def ids(page: dict[str, Any]) -> list[str]:
    return [item["id"]["videoId"] for item in page["items"]]


async def test_a_query_never_configured_gets_a_stream_of_its_own_on_first_use() -> None:
    settings = quiet_settings(emulator_videos_per_minute=3.0)
    async with emulator_client(settings, now=NOW) as client:
        world = await (await client.get("/admin/world")).json()
        assert world["queries"] == ["cricket"] and world["runtime_queries"] == []
        page = await search(client, "World  Cup")
        # an hour of backfill at the default rate, like a configured query
        assert page["pageInfo"]["totalResults"] == 180
        assert len(page["items"]) == 50
        assert all("world cup" in item["snippet"]["title"].casefold() for item in page["items"])
        assert set(ids(page)).isdisjoint(ids(await search(client, "cricket")))
        # the same query however it is spelt, and it is now part of the world
        assert ids(await search(client, "world cup")) == ids(page)
        world = await (await client.get("/admin/world")).json()
        assert world["runtime_queries"] == ["world cup"]
        # its videos are real videos: videos.list knows them, their channels' playlists hold them
        first = page["items"][0]
        listed = await (
            await client.get("/youtube/v3/videos", params={"part": "snippet", "id": first["id"]["videoId"], "key": "k"})
        ).json()
        assert [v["id"] for v in listed["items"]] == [first["id"]["videoId"]]
        channel = first["snippet"]["channelId"]
        uploads = await (await client.get("/admin/uploads", params={"channel_id": channel})).json()
        assert first["id"]["videoId"] in {v["videoId"] for v in uploads["videos"]}
        # and new ones keep coming as the clock runs
        await client.post("/admin/clock", json={"advance_seconds": 600})
        later = await search(client, "world cup", publishedAfter=NOW)
        assert later["pageInfo"]["totalResults"] == 30


async def test_the_same_run_time_query_gives_the_same_videos_after_a_restart() -> None:
    settings = quiet_settings(emulator_seed=41)
    async with emulator_client(settings, now=NOW) as first:
        await search(first, "chess")  # another run-time query first, which must not change the next
        before = await search(first, "formula one")
    async with emulator_client(settings, now=NOW) as second:
        after = await search(second, "formula one")
    assert ids(after) == ids(before)
    assert [i["snippet"]["title"] for i in after["items"]] == [i["snippet"]["title"] for i in before["items"]]
    async with emulator_client(quiet_settings(emulator_seed=42), now=NOW) as other_seed:
        assert set(ids(await search(other_seed, "formula one"))).isdisjoint(ids(before))
