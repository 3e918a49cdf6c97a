"""found_by over real stores filled by the indexer's writer: each video says how it was found (search
only, channel only, channel first then search, two queries, and a video stored before found_by
existed), the found_by filter of the list, cursor walks, histogram and feed, the same answers from
MongoDB, and the parameter refused by name."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import feedparser  # type: ignore[import-untyped]
import pytest
from aiohttp.test_utils import TestClient, TestServer
from elasticsearch import AsyncElasticsearch
from pymongo.asynchronous.database import AsyncDatabase

from services.api.app import create_app
from services.api.models import Video, VideoPage
from services.common.catalogue import VIDEOS_COLLECTION
from services.common.events import FoundBy, VideoEvent
from services.common.settings import StackSettings
from services.common.timefmt import utc_now
from tests.factories import make_event
from tests.integration.api_support import Client, api_settings, get_page, newest_first, prepare_stores, walk, write

CHANNEL = "UC" + "c" * 22
OTHER_CHANNEL = "UC" + "d" * 22


def channel_find(event: VideoEvent, channel_id: str = CHANNEL) -> VideoEvent:
    """The same video as found in ``channel_id``'s uploads (a version 2 event without a query)."""
    fields = event.model_dump() | {"query": None, "found_by": FoundBy.channel(channel_id).as_document()}
    return VideoEvent.model_validate(fields)


@dataclass
class Catalogue:
    search_only: list[VideoEvent]
    channel_only: list[VideoEvent]
    channel_then_search: VideoEvent
    two_queries: VideoEvent
    legacy: VideoEvent  # stored before found_by existed: queries alone

    @property
    def found_by_search(self) -> list[VideoEvent]:
        return [*self.search_only, self.channel_then_search, self.two_queries, self.legacy]

    @property
    def found_by_channel(self) -> list[VideoEvent]:
        return [*self.channel_only, self.channel_then_search]

    @property
    def every_video(self) -> list[VideoEvent]:
        return [*self.search_only, *self.channel_only, self.channel_then_search, self.two_queries, self.legacy]


@pytest.fixture
async def catalogue(mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str) -> Catalogue:
    rng = random.Random(15)
    now = utc_now()

    def at(minutes: int, **kwargs: Any) -> VideoEvent:
        return make_event(rng, published_at=now - timedelta(minutes=minutes), fetched_at=now, **kwargs)

    catalogue = Catalogue(
        search_only=[at(10 + 2 * i) for i in range(30)],
        channel_only=[channel_find(at(11 + 2 * i)) for i in range(25)],
        channel_then_search=at(5),
        two_queries=at(6),
        legacy=at(7, query="football"),
    )
    writer = await prepare_stores(mongo_db, es, es_alias)
    both = catalogue.channel_then_search
    await write(writer, es, es_alias, [*catalogue.search_only, *catalogue.channel_only, channel_find(both)])
    # Later snapshots: search finds the channel's video, a second query finds a video again.
    again = catalogue.two_queries.model_copy(update={"query": "football", "found_by": FoundBy.search("football")})
    await write(writer, es, es_alias, [both, catalogue.two_queries, again, catalogue.legacy])
    # A video an indexer stored before found_by existed: no found_by in either store.
    legacy_id = catalogue.legacy.video_id
    await mongo_db[VIDEOS_COLLECTION].update_one({"video_id": legacy_id}, {"$unset": {"found_by": ""}})
    await es.update(index=es_alias, id=legacy_id, script={"source": "ctx._source.remove('found_by')"}, refresh=True)
    return catalogue


def _settings(stack: StackSettings, mongo_db: AsyncDatabase[dict[str, Any]], alias: str) -> Any:
    return api_settings(
        mongodb_url=stack.mongodb_url,
        mongodb_database=mongo_db.name,
        elasticsearch_url=stack.elasticsearch_url,
        elasticsearch_index=alias,
    )


@pytest.fixture
async def api(stack: StackSettings, mongo_db: AsyncDatabase[dict[str, Any]], es_alias: str) -> AsyncIterator[Client]:
    async with TestClient(TestServer(create_app(_settings(stack, mongo_db, es_alias)))) as client:
        yield client


@pytest.fixture
async def degraded(
    stack: StackSettings, mongo_db: AsyncDatabase[dict[str, Any]], es_alias: str
) -> AsyncIterator[Client]:
    """The API with its alias missing: every listing comes from MongoDB."""
    async with TestClient(TestServer(create_app(_settings(stack, mongo_db, f"{es_alias}-absent")))) as client:
        yield client


SEARCH = {"source": "search", "query": "cricket"}
FOOTBALL = {"source": "search", "query": "football"}
POLL = {"source": "channel", "channel_id": CHANNEL, "via": "poll"}


def _expected_found_by(catalogue: Catalogue) -> dict[str, list[dict[str, str]]]:
    expected = {e.video_id: [SEARCH] for e in catalogue.search_only}
    expected |= {e.video_id: [POLL] for e in catalogue.channel_only}
    expected[catalogue.channel_then_search.video_id] = [POLL, SEARCH]
    expected[catalogue.two_queries.video_id] = [SEARCH, FOOTBALL]
    expected[catalogue.legacy.video_id] = [FOOTBALL]
    return expected


def _as_set(entries: list[dict[str, str]]) -> set[tuple[tuple[str, str], ...]]:
    return {tuple(sorted(entry.items())) for entry in entries}


@pytest.mark.parametrize("served_by", ["elasticsearch", "mongodb"])
async def test_every_video_says_how_it_was_found(
    api: Client, degraded: Client, catalogue: Catalogue, served_by: str
) -> None:
    client = api if served_by == "elasticsearch" else degraded
    body, served = await get_page(client, {"limit": "100"})
    assert served == served_by
    VideoPage.model_validate(body)
    got = {item["video_id"]: item["found_by"] for item in body["items"]}
    expected = _expected_found_by(catalogue)
    assert set(got) == set(expected)
    for video_id, entries in expected.items():
        assert len(got[video_id]) == len(entries), (video_id, got[video_id])
        assert _as_set(got[video_id]) == _as_set(entries), video_id


async def test_one_video_says_how_it_was_found_from_either_store(
    api: Client, mongo_db: AsyncDatabase[dict[str, Any]], catalogue: Catalogue
) -> None:
    both = catalogue.channel_then_search.video_id
    response = await api.get(f"/api/v1/videos/{both}")
    assert response.headers["X-Served-By"] == "mongodb"
    assert _as_set(Video.model_validate(await response.json()).model_dump()["found_by"]) == _as_set([POLL, SEARCH])
    legacy = await (await api.get(f"/api/v1/videos/{catalogue.legacy.video_id}")).json()
    assert legacy["found_by"] == [FOOTBALL]


@pytest.mark.parametrize("served_by", ["elasticsearch", "mongodb"])
@pytest.mark.parametrize("source", ["search", "channel"])
async def test_the_found_by_filter_walks_the_videos_with_a_find_of_that_source(
    api: Client, degraded: Client, catalogue: Catalogue, source: str, served_by: str
) -> None:
    client = api if served_by == "elasticsearch" else degraded
    wanted = catalogue.found_by_search if source == "search" else catalogue.found_by_channel
    ids, served = await walk(client, {"limit": "7", "found_by": source})
    assert served == {served_by}
    assert ids == newest_first(wanted)
    body, _ = await get_page(client, {"limit": "1", "found_by": source})
    assert body["total"] == {"value": len(wanted), "relation": "eq"}


async def test_found_by_combines_with_the_other_filters(api: Client, degraded: Client, catalogue: Catalogue) -> None:
    for client in (api, degraded):
        body, _ = await get_page(client, {"limit": "100", "found_by": "search", "query": "football"})
        assert [v["video_id"] for v in body["items"]] == newest_first([catalogue.two_queries, catalogue.legacy])
        body, _ = await get_page(client, {"limit": "100", "found_by": "channel", "channel_id": OTHER_CHANNEL})
        assert body["items"] == []
        # Every title but the football video's says cricket; q is MongoDB's text search in the fallback.
        body, _ = await get_page(client, {"limit": "100", "found_by": "search", "q": "cricket"})
        assert [v["video_id"] for v in body["items"]] == newest_first(catalogue.found_by_search[:-1])


async def test_a_cursor_belongs_to_its_found_by(api: Client, catalogue: Catalogue) -> None:
    body, _ = await get_page(api, {"limit": "3", "found_by": "channel"})
    for other in ({"found_by": "search"}, {}):
        response = await api.get("/api/v1/videos", params={"limit": "3", "cursor": body["next_cursor"]} | other)
        assert response.status == 400
        assert (await response.json())["error"]["parameter"] == "cursor"


async def test_the_histogram_counts_with_the_found_by_filter(
    api: Client, degraded: Client, catalogue: Catalogue
) -> None:
    for client in (api, degraded):
        response = await client.get("/api/v1/histogram", params={"interval": "hour", "found_by": "channel"})
        assert response.status == 200
        assert sum(b["count"] for b in (await response.json())["buckets"]) == len(catalogue.found_by_channel)


async def test_the_feed_of_a_found_by_says_so_and_holds_its_videos(api: Client, catalogue: Catalogue) -> None:
    response = await api.get("/api/v1/feeds/videos.atom", params={"found_by": "channel"})
    assert response.status == 200
    parsed = feedparser.parse(await response.read())
    assert parsed.feed.title == "tubewatch: newest videos found in followed channels' uploads"
    links = {link.rel: link.href for link in parsed.feed.links}
    assert links["self"].endswith("/api/v1/feeds/videos.atom?found_by=channel")
    assert links["alternate"].endswith("/?found_by=channel")
    assert [e.id.removeprefix("yt:video:") for e in parsed.entries] == newest_first(catalogue.found_by_channel)


@pytest.mark.parametrize("path", ["/api/v1/videos", "/api/v1/histogram", "/api/v1/feeds/videos.atom"])
async def test_an_unknown_source_is_refused_by_name(api: Client, path: str) -> None:
    response = await api.get(path, params={"found_by": "push"})
    assert response.status == 400
    error = (await response.json())["error"]
    assert (error["code"], error["parameter"]) == ("invalid_parameter", "found_by")
    assert "'search' or 'channel'" in error["message"]
