"""search.list happy path: shape, order, bounds, paging, escaping, clock and ground truth."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from services.youtube_emulator.testing import emulator_client, quiet_settings
from services.youtube_emulator.timestamps import format_timestamp, parse_rfc3339

Client = TestClient[web.Request, web.Application]

NOW = "2026-11-24T12:00:00Z"
TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
VIDEO_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")
CHANNEL_ID = re.compile(r"^UC[A-Za-z0-9_-]{22}$")
ETAG = re.compile(r"^[A-Za-z0-9_-]{27}$")


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    async with emulator_client(quiet_settings(search_queries=["cricket", "football"]), now=NOW) as c:
        yield c


def shift(timestamp: str, seconds: float) -> str:
    moment = parse_rfc3339(timestamp)
    assert moment is not None
    return format_timestamp(moment + seconds)


async def search(client: Client, **params: Any) -> dict[str, Any]:
    query = {"part": "snippet", "q": "cricket", "type": "video", "order": "date", "key": "k", **params}
    response = await client.get("/youtube/v3/search", params={k: str(v) for k, v in query.items()})
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"] == "application/json; charset=UTF-8"
    body: dict[str, Any] = await response.json()
    return body


async def walk(client: Client, **params: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Follow nextPageToken to the end; return (items, pages)."""
    items: list[dict[str, Any]] = []
    pages: list[dict[str, Any]] = []
    token: str | None = None
    for _ in range(100):
        page = await search(client, **params, **({"pageToken": token} if token else {}))
        pages.append(page)
        items.extend(page["items"])
        token = page.get("nextPageToken")
        if token is None:
            return items, pages
    raise AssertionError("walk did not end")


async def ground_truth(client: Client, query: str = "cricket") -> dict[str, Any]:
    response = await client.get("/admin/visible", params={"query": query})
    assert response.status == 200
    body: dict[str, Any] = await response.json()
    return body


async def test_response_shape(client: Client) -> None:
    body = await search(client, maxResults=3)
    assert list(body) == ["kind", "etag", "nextPageToken", "regionCode", "pageInfo", "items"]
    assert body["kind"] == "youtube#searchListResponse"
    assert ETAG.match(body["etag"])
    assert body["nextPageToken"] == "CAMQAA"
    assert body["regionCode"] == "US"
    assert body["pageInfo"] == {"totalResults": 360, "resultsPerPage": 3}
    for item in body["items"]:
        assert list(item) == ["kind", "etag", "id", "snippet"]
        assert item["kind"] == "youtube#searchResult"
        assert ETAG.match(item["etag"])
        assert item["id"]["kind"] == "youtube#video"
        video_id = item["id"]["videoId"]
        assert VIDEO_ID.match(video_id)
        snippet = item["snippet"]
        assert list(snippet) == [
            "publishedAt",
            "channelId",
            "title",
            "description",
            "thumbnails",
            "channelTitle",
            "liveBroadcastContent",
            "publishTime",
        ]
        assert TS.match(snippet["publishedAt"])
        assert snippet["publishTime"] == snippet["publishedAt"]
        assert CHANNEL_ID.match(snippet["channelId"])
        assert "cricket" in html.unescape(snippet["title"]).casefold()
        assert "cricket" in html.unescape(snippet["description"]).casefold()
        assert snippet["liveBroadcastContent"] == "none"
        assert snippet["thumbnails"] == {
            "default": {"url": f"https://i.ytimg.com/vi/{video_id}/default.jpg", "width": 120, "height": 90},
            "medium": {"url": f"https://i.ytimg.com/vi/{video_id}/mqdefault.jpg", "width": 320, "height": 180},
            "high": {"url": f"https://i.ytimg.com/vi/{video_id}/hqdefault.jpg", "width": 480, "height": 360},
        }


async def test_default_page_size_and_first_token(client: Client) -> None:
    body = await search(client)
    assert body["pageInfo"]["resultsPerPage"] == 5
    one = await search(client, maxResults=1)
    assert one["nextPageToken"] == "CAEQAA"
    assert "prevPageToken" not in one


async def test_part_id_only_omits_snippet(client: Client) -> None:
    body = await search(client, part="id", maxResults=2)
    assert all(list(item) == ["kind", "etag", "id"] for item in body["items"])


async def test_order_date_is_newest_first_and_not_after_clock(client: Client) -> None:
    items, _ = await walk(client, maxResults=50)
    published = [item["snippet"]["publishedAt"] for item in items]
    assert published == sorted(published, reverse=True)
    assert published[0] <= NOW
    # the backfill: one hour of history before the start at 6 a minute
    assert len(items) == 360
    assert published[-1] >= "2026-11-24T11:00:00Z"


async def test_published_bounds_are_inclusive(client: Client) -> None:
    items = (await search(client, maxResults=20))["items"]
    target = items[10]["snippet"]["publishedAt"]
    target_id = items[10]["id"]["videoId"]

    def ids(body: dict[str, Any]) -> list[str]:
        return [item["id"]["videoId"] for item in body["items"]]

    assert target_id in ids(await search(client, maxResults=50, publishedAfter=target))
    assert target_id in ids(await search(client, maxResults=50, publishedBefore=target))
    exact = await search(client, maxResults=50, publishedAfter=target, publishedBefore=target)
    assert target_id in ids(exact)
    assert all(item["snippet"]["publishedAt"] == target for item in exact["items"])
    later = shift(target, 1)
    assert target_id not in ids(await search(client, maxResults=50, publishedAfter=later))
    # the same instant written with an offset and with fractional digits
    with_offset = shift(target, 3600).replace("Z", "+01:00")
    assert target_id in ids(await search(client, maxResults=50, publishedAfter=with_offset))
    fractional = target.replace("Z", ".000000000Z")
    assert target_id in ids(await search(client, maxResults=50, publishedBefore=fractional))
    just_after = target.replace("Z", ".5Z")
    assert target_id not in ids(await search(client, maxResults=50, publishedAfter=just_after))


async def test_published_after_window_counts(client: Client) -> None:
    body = await search(client, maxResults=50, publishedAfter="2026-11-24T11:55:00Z")
    truth = [v for v in (await ground_truth(client))["videos"] if v["publishedAt"] >= "2026-11-24T11:55:00Z"]
    assert body["pageInfo"]["totalResults"] == len(truth)
    assert [i["id"]["videoId"] for i in body["items"]] == [v["videoId"] for v in truth]
    assert "nextPageToken" not in body


async def test_paging_walk_matches_ground_truth(client: Client) -> None:
    items, pages = await walk(client, maxResults=7)
    ids = [item["id"]["videoId"] for item in items]
    assert len(ids) == len(set(ids))
    truth = await ground_truth(client)
    assert ids == [v["videoId"] for v in truth["videos"]]
    assert "prevPageToken" not in pages[0]
    assert all("prevPageToken" in page for page in pages[1:])
    assert "nextPageToken" not in pages[-1]
    assert all(page["pageInfo"]["totalResults"] == 360 for page in pages)


async def test_prev_page_token_returns_the_previous_page(client: Client) -> None:
    first = await search(client, maxResults=10)
    second = await search(client, maxResults=10, pageToken=first["nextPageToken"])
    assert second["prevPageToken"] == "CAoQAQ"
    back = await search(client, maxResults=10, pageToken=second["prevPageToken"])
    assert back["items"] == first["items"]
    assert "prevPageToken" not in back


async def test_new_videos_between_pages_repeat_an_item() -> None:
    async with emulator_client(quiet_settings(), now=NOW) as client:
        first = await search(client, maxResults=10)
        await client.post("/admin/clock", json={"advance_seconds": 30})
        second = await search(client, maxResults=10, pageToken=first["nextPageToken"])
        first_ids = {i["id"]["videoId"] for i in first["items"]}
        assert first_ids & {i["id"]["videoId"] for i in second["items"]}


async def test_result_cap_at_500() -> None:
    settings = quiet_settings(emulator_videos_per_minute=60.0)
    async with emulator_client(settings, now=NOW) as client:
        items, pages = await walk(client, maxResults=50)
        assert len(items) == 500
        assert pages[-1]["items"] == []
        assert pages[-1]["prevPageToken"] == "CPQDEAE"
        assert pages[-2]["nextPageToken"] == "CPQDEAA"
        at_cap = await search(client, maxResults=50, pageToken="CPQDEAA")
        assert at_cap["items"] == []
        # the backfill window [start - 1h, start] holds both ends: 3601 one-second slots
        assert at_cap["pageInfo"] == {"totalResults": 3601, "resultsPerPage": 0}
        assert "nextPageToken" not in at_cap
        past = await search(client, maxResults=50, pageToken="CMgDEAA")  # offset 456
        assert len(past["items"]) == 44
        assert "nextPageToken" not in past


async def test_nothing_found_is_an_empty_response(client: Client) -> None:
    body = await search(client, q="cricket", publishedBefore="2026-11-24T10:00:00Z")
    assert list(body) == ["kind", "etag", "regionCode", "pageInfo", "items"]
    assert body["pageInfo"] == {"totalResults": 0, "resultsPerPage": 0}
    assert body["items"] == []


async def test_query_match_is_case_insensitive_and_per_stream(client: Client) -> None:
    lower = await search(client, q="cricket", maxResults=10)
    upper = await search(client, q="  CRICKET ", maxResults=10)
    assert lower["items"] == upper["items"]
    football = await search(client, q="football", maxResults=10)
    assert {i["id"]["videoId"] for i in football["items"]}.isdisjoint(i["id"]["videoId"] for i in lower["items"])
    assert all("football" in html.unescape(i["snippet"]["title"]).casefold() for i in football["items"])
    both = await search(client, q="cricket|football", maxResults=50)
    assert both["pageInfo"]["totalResults"] == 720


async def test_region_code_echoed(client: Client) -> None:
    assert (await search(client, regionCode="in"))["regionCode"] == "IN"


async def test_html_escaping_exactly_once(client: Client) -> None:
    raw_title = 'Kohli\'s 50th & "that" catch <wow> &amp; cricket'
    response = await client.post(
        "/admin/videos",
        json={
            "title": raw_title,
            "description": "Fans' verdict & more",
            "channel": "Tom & Jerry's",
            "published_at": "2026-11-24T11:59:59Z",
            "query": "cricket",
        },
    )
    assert response.status == 201
    video_id = (await response.json())["videoId"]
    body = await search(client, maxResults=1)
    item = body["items"][0]
    assert item["id"]["videoId"] == video_id
    snippet = item["snippet"]
    assert snippet["title"] == ("Kohli&#39;s 50th &amp; &quot;that&quot; catch &lt;wow&gt; &amp;amp; cricket")
    assert snippet["description"] == "Fans&#39; verdict &amp; more"
    assert snippet["channelTitle"] == "Tom &amp; Jerry&#39;s"
    # videos.list and the ground truth carry the raw text
    videos = await client.get("/youtube/v3/videos", params={"part": "snippet", "id": video_id, "key": "k"})
    assert (await videos.json())["items"][0]["snippet"]["title"] == raw_title
    truth = await ground_truth(client)
    assert truth["videos"][0]["title"] == raw_title


async def test_generated_text_needs_escaping_and_is_escaped_once(client: Client) -> None:
    items, _ = await walk(client, maxResults=50)
    truth = {v["videoId"]: v for v in (await ground_truth(client))["videos"]}
    escaped = 0
    for item in items:
        raw = truth[item["id"]["videoId"]]["title"]
        assert html.unescape(item["snippet"]["title"]) == raw
        escaped += item["snippet"]["title"] != raw
    # the generator produces ', & and " often enough for consumers to meet the escaping
    assert escaped > 30
    titles = "".join(truth[i["id"]["videoId"]]["title"] for i in items)
    assert {"'", "&", '"'} <= set(titles)


async def test_search_description_is_a_truncated_single_line(client: Client) -> None:
    item = (await search(client, maxResults=1))["items"][0]
    video_id = item["id"]["videoId"]
    videos = await client.get("/youtube/v3/videos", params={"part": "snippet", "id": video_id, "key": "k"})
    full = (await videos.json())["items"][0]["snippet"]["description"]
    short = html.unescape(item["snippet"]["description"])
    assert "\n" not in short
    assert len(full) > len(short) - 4
    if short.endswith(" ..."):
        assert " ".join(full.split()).startswith(short[:-4])


async def test_clock_advance_reveals_new_videos(client: Client) -> None:
    before = await search(client, maxResults=1)
    newest = before["items"][0]["snippet"]["publishedAt"]
    response = await client.post("/admin/clock", json={"advance_seconds": 120})
    assert (await response.json())["now"] == "2026-11-24T12:02:00.000000Z"
    after = await search(client, maxResults=50, publishedAfter=shift(newest, 1))
    assert 11 <= len(after["items"]) <= 13
    assert all(i["snippet"]["publishedAt"] <= "2026-11-24T12:02:00Z" for i in after["items"])
    # jumping the clock to a given instant works too, and the world keeps its history
    response = await client.post("/admin/clock", json={"now": "2026-11-25T08:30:00Z"})
    assert (await response.json())["now"] == "2026-11-25T08:30:00.000000Z"
    latest = await search(client, maxResults=1)
    assert latest["items"][0]["snippet"]["publishedAt"] > "2026-11-25T08:29:00Z"


async def test_running_clock_moves_with_real_time() -> None:
    async with emulator_client(quiet_settings(), now=NOW, frozen=False) as client:
        clock = await (await client.get("/admin/clock")).json()
        assert clock["frozen"] is False
        assert clock["now"] >= "2026-11-24T12:00:00"


async def test_same_seed_same_world_other_seed_other_world() -> None:
    async with emulator_client(quiet_settings(), now=NOW) as a, emulator_client(quiet_settings(), now=NOW) as b:
        assert await search(a, maxResults=50) == await search(b, maxResults=50)
        assert await ground_truth(a) == await ground_truth(b)
    async with emulator_client(quiet_settings(emulator_seed=8), now=NOW) as c:
        other = await search(c, maxResults=50)
    async with emulator_client(quiet_settings(), now=NOW) as d:
        mine = await search(d, maxResults=50)
    assert {i["id"]["videoId"] for i in other["items"]}.isdisjoint(i["id"]["videoId"] for i in mine["items"])


async def test_world_is_stable_across_restarts_at_other_times() -> None:
    """A video's identity depends on (seed, query, index), not on when the emulator started."""
    async with emulator_client(quiet_settings(), now=NOW) as a:
        early = await search(a, maxResults=50, publishedBefore="2026-11-24T11:30:00Z")
    async with emulator_client(quiet_settings(), now="2026-11-24T11:45:00Z") as b:
        later = await search(b, maxResults=50, publishedBefore="2026-11-24T11:30:00Z")
    assert early["items"][:20] == later["items"][:20]


async def test_ground_truth_endpoint(client: Client) -> None:
    truth = await ground_truth(client)
    assert truth["query"] == "cricket"
    assert truth["count"] == 360 == len(truth["videos"])
    first = truth["videos"][0]
    assert set(first) >= {"videoId", "publishedAt", "visibleAt", "title", "channelId", "channelTitle"}
    assert first["injected"] is False
    before_floor = await client.get("/admin/visible", params={"published_before": "2026-11-24T10:59:59Z"})
    assert (await before_floor.json())["count"] == 0
    window = await client.get("/admin/visible", params={"query": "cricket", "published_after": "2026-11-24T11:59:00Z"})
    assert (await window.json())["count"] == 6
    # moving the clock back does not shrink what has been visible "so far"
    await client.post("/admin/clock", json={"advance_seconds": 600})
    grown = (await ground_truth(client))["count"]
    await client.post("/admin/clock", json={"advance_seconds": -600})
    assert (await ground_truth(client))["count"] == grown
    assert (await search(client))["pageInfo"]["totalResults"] == 360


async def test_injected_video_matches_other_queries_by_title_word(client: Client) -> None:
    await client.post(
        "/admin/videos",
        json={"title": "Football meets cricket", "published_at": "2026-11-24T11:59:30Z", "query": "football"},
    )
    await client.post(
        "/admin/videos", json={"title": "Crickets chirping at night", "published_at": "2026-11-24T11:59:31Z"}
    )
    titles = [html.unescape(i["snippet"]["title"]) for i in (await search(client, maxResults=10))["items"]]
    assert "Football meets cricket" in titles
    assert "Crickets chirping at night" not in titles
    football = (await search(client, q="football", maxResults=10))["items"]
    assert "Football meets cricket" in [html.unescape(i["snippet"]["title"]) for i in football]


async def test_injected_video_visible_at_and_future_publish(client: Client) -> None:
    response = await client.post(
        "/admin/videos",
        json={
            "title": "Late cricket upload",
            "publishedAt": "2026-11-24T11:58:00Z",
            "visibleAt": "2026-11-24T12:05:00Z",
            "query": "cricket",
            "videoId": "AAAAAAAAAAA",
        },
    )
    assert (await response.json())["videoId"] == "AAAAAAAAAAA"
    ids = [i["id"]["videoId"] for i in (await search(client, maxResults=50))["items"]]
    assert "AAAAAAAAAAA" not in ids
    assert "AAAAAAAAAAA" not in [v["videoId"] for v in (await ground_truth(client))["videos"]]
    await client.post("/admin/clock", json={"advance_seconds": 300})
    body = await search(client, maxResults=50)
    ids = [i["id"]["videoId"] for i in body["items"]]
    assert "AAAAAAAAAAA" in ids
    # listed by its publishedAt, below newer videos
    assert ids.index("AAAAAAAAAAA") > 25
    duplicate = await client.post("/admin/videos", json={"title": "again", "videoId": "AAAAAAAAAAA"})
    assert duplicate.status == 400


async def test_late_arrivals() -> None:
    settings = quiet_settings(emulator_late_fraction=1.0, emulator_late_max_seconds=600)
    async with emulator_client(settings, now=NOW) as client:
        truth = (await ground_truth(client))["videos"]
        assert all(v["visibleAt"] > v["publishedAt"] for v in truth)
        assert all(v["visibleAt"] <= "2026-11-24T12:00:00Z" for v in truth)
        body = await search(client, maxResults=50)
        assert body["pageInfo"]["totalResults"] == len(truth) < 360
        newest = body["items"][0]["snippet"]["publishedAt"]
        assert newest < "2026-11-24T11:59:00Z"
        await client.post("/admin/clock", json={"advance_seconds": 600})
        later = await search(client, maxResults=50, publishedAfter=shift(newest, 1))
        # videos published before the old newest arrived late too
        later_truth = (await ground_truth(client))["videos"]
        assert len(later_truth) > len(truth)
        assert later["items"]


async def test_live_and_upcoming_broadcasts() -> None:
    async with emulator_client(quiet_settings(emulator_live_fraction=1.0), now=NOW) as client:
        items, _ = await walk(client, maxResults=50)
        states = {i["snippet"]["liveBroadcastContent"] for i in items}
        assert states == {"none", "upcoming", "live"}
        for item in items:
            url = item["snippet"]["thumbnails"]["high"]["url"]
            assert url.endswith("_live.jpg") == (item["snippet"]["liveBroadcastContent"] != "none")
        upcoming = await search(client, maxResults=50, eventType="upcoming")
        assert upcoming["items"]
        assert all(i["snippet"]["liveBroadcastContent"] == "upcoming" for i in upcoming["items"])
        completed = await search(client, maxResults=50, eventType="completed")
        assert all(i["snippet"]["liveBroadcastContent"] == "none" for i in completed["items"])


async def test_channels_are_shared_across_queries_and_filterable(client: Client) -> None:
    world = await (await client.get("/admin/world")).json()
    assert len(world["channels"]) == 20
    cricket, _ = await walk(client, maxResults=50)
    football, _ = await walk(client, q="football", maxResults=50)
    shared = {i["snippet"]["channelId"] for i in cricket} & {i["snippet"]["channelId"] for i in football}
    assert len(shared) >= 10
    channel = sorted(shared)[0]
    filtered, _ = await walk(client, maxResults=50, channelId=channel)
    assert filtered
    assert all(i["snippet"]["channelId"] == channel for i in filtered)
    assert len(filtered) == sum(i["snippet"]["channelId"] == channel for i in cricket)


async def test_other_orders_rank_the_same_set(client: Client) -> None:
    by_date, _ = await walk(client, maxResults=50)
    by_title, _ = await walk(client, maxResults=50, order="title")
    assert {i["id"]["videoId"] for i in by_date} == {i["id"]["videoId"] for i in by_title}
    titles = [html.unescape(i["snippet"]["title"]).casefold() for i in by_title]
    assert titles == sorted(titles)
    relevance = await search(client, maxResults=50, order="relevance")
    assert relevance["items"] != (await search(client, maxResults=50))["items"]


async def test_reset_restores_a_fresh_world(client: Client) -> None:
    await client.post("/admin/videos", json={"title": "cricket extra", "query": "cricket"})
    await client.get("/youtube/v3/search", params={"part": "snippet", "q": "cricket", "key": "k"})
    response = await client.post(
        "/admin/reset", json={"now": "2026-11-24T12:00:00Z", "frozen": True, "queries": ["tennis"], "seed": 9}
    )
    assert response.status == 200
    reset = await response.json()
    assert reset["world"]["queries"] == ["tennis"]
    assert reset["world"]["floor"] == "2026-11-24T11:00:00Z"
    # cricket is no configured query any more: its stream is made afresh on first use, without the
    # video injected before the reset
    assert reset["world"]["runtime_queries"] == []
    assert (await search(client))["pageInfo"]["totalResults"] == 360
    truth = await ground_truth(client, "cricket")
    assert truth["count"] == 360
    assert not any(v["injected"] for v in truth["videos"])
    assert (await search(client, q="tennis"))["pageInfo"]["totalResults"] == 360
    spend = await (await client.get("/admin/spend")).json()
    assert spend["keys"]["k"]["search_calls"] == 2
    bad = await client.post("/admin/reset", json={"videos_per_minute": -1})
    assert bad.status == 400


async def test_service_routes(client: Client) -> None:
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status == 200
    await search(client)
    await client.get("/youtube/v3/search", params={"part": "snippet"})
    metrics = await (await client.get("/metrics")).text()
    assert 'emulator_api_calls_total{endpoint="search",outcome="ok"} 1.0' in metrics
    assert 'emulator_api_calls_total{endpoint="search",outcome="missing_key"} 1.0' in metrics
