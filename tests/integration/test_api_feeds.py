"""GET /api/v1/feeds/videos.atom over real stores filled by the indexer's writer: the feed is a valid
Atom document (feedparser, RFC 4287's RELAX NG schema) of the list's newest 50, text stays text, the
validators answer 304s, and parameters are refused as the list refuses them."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from typing import Any

import feedparser  # type: ignore[import-untyped]
import pytest
from aiohttp.test_utils import TestClient, TestServer
from elasticsearch import AsyncElasticsearch
from pymongo.asynchronous.database import AsyncDatabase

from services.api.app import create_app
from services.api.appkeys import PAGE_CACHE
from services.api.atom import ATOM_NS, MEDIA_NS
from services.common.events import VideoEvent
from services.common.settings import StackSettings
from services.common.timefmt import utc_now
from services.indexer.store import VideoWriter
from tests.atom_schema import atom_validator
from tests.factories import make_event
from tests.integration.api_support import Client, api_settings, get_page, prepare_stores, spread_events, write

FEED = "/api/v1/feeds/videos.atom"
HOSTILE_TITLE = "<img src=x onerror=alert(1)>"
HOSTILE_CHANNEL = 7


@pytest.fixture
async def writer(mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str) -> VideoWriter:
    return await prepare_stores(mongo_db, es, es_alias)


@pytest.fixture
async def catalogue(writer: VideoWriter, es: AsyncElasticsearch, es_alias: str) -> list[VideoEvent]:
    rng = random.Random(19)
    now = utc_now()
    # 120 videos a minute apart up to now (some sharing a second), 30 found by "football" 1, 4, 7...
    # hours ago, and one with a title made of markup.
    events = spread_events(rng, 120, start=now - timedelta(minutes=1), fetched_at=now)
    events += [
        make_event(rng, query="football", published_at=now - timedelta(hours=1 + i * 3), fetched_at=now)
        for i in range(30)
    ]
    events.append(
        make_event(
            rng, title=HOSTILE_TITLE, channel=HOSTILE_CHANNEL, published_at=now - timedelta(days=3), fetched_at=now
        )
    )
    await write(writer, es, es_alias, events)
    return events


ApiFactory = Callable[..., AbstractAsyncContextManager[Client]]


@pytest.fixture
def make_api(stack: StackSettings, mongo_db: AsyncDatabase[dict[str, Any]], es_alias: str) -> ApiFactory:
    @asynccontextmanager
    async def api(**overrides: Any) -> AsyncIterator[Client]:
        settings = api_settings(
            mongodb_url=stack.mongodb_url,
            mongodb_database=mongo_db.name,
            elasticsearch_url=stack.elasticsearch_url,
            elasticsearch_index=es_alias,
            **overrides,
        )
        async with TestClient(TestServer(create_app(settings))) as client:
            yield client

    return api


@pytest.fixture
async def api(make_api: ApiFactory) -> AsyncIterator[Client]:
    async with make_api(api_page_cache_seconds=0) as client:
        yield client


async def _feed(api: Client, params: dict[str, Any] | list[tuple[str, str]], **headers: str) -> tuple[bytes, Any]:
    response = await api.get(FEED, params=params, headers=headers)
    body = await response.read()
    assert response.status == 200, body[:500]
    return body, response


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"q": "highlights"},
        {"query": "football"},
        {"published_within": "PT2H"},
        [("channel_id", "UC0000000000000000000003"), ("channel_id", "UC0000000000000000000005")],
        {"q": "cricket", "published_within": "P1D", "query": "cricket"},
    ],
)
async def test_a_feed_is_valid_atom_of_the_lists_newest_50(
    api: Client, catalogue: list[VideoEvent], params: dict[str, Any] | list[tuple[str, str]]
) -> None:
    body, response = await _feed(api, params)
    assert response.headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    assert response.headers["X-Served-By"] == "elasticsearch"
    assert response.headers["Cache-Control"] == "public, max-age=1"
    parsed = feedparser.parse(body)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    validator = atom_validator()
    assert validator.validate(validator.parse(body)), validator.error_log
    pairs = [*params.items()] if isinstance(params, dict) else params
    listed = await (await api.get("/api/v1/videos", params=[*pairs, ("limit", "50")])).json()
    assert listed["items"], "the filters should match something"
    assert [entry.id for entry in parsed.entries] == [f"yt:video:{item['video_id']}" for item in listed["items"]]
    assert [entry.title for entry in parsed.entries] == [item["title"] for item in listed["items"]]
    assert [entry.link for entry in parsed.entries] == [item["url"] for item in listed["items"]]
    assert parsed.feed.updated == listed["items"][0]["published_at"]
    links = {link.rel: link.href for link in parsed.feed.links}
    assert links["self"].startswith(f"http://{response.url.host}:{response.url.port}{FEED}")
    assert links["alternate"].startswith(f"http://{response.url.host}:{response.url.port}/")


async def test_the_feed_holds_at_most_50_and_says_what_it_filters(api: Client, catalogue: list[VideoEvent]) -> None:
    body, _ = await _feed(api, {"q": "highlights", "query": "cricket"})
    parsed = feedparser.parse(body)
    assert len(parsed.entries) == 50
    assert parsed.feed.title == "tubewatch: newest videos matching “highlights”, found by the search query “cricket”"
    assert parsed.feed.id.startswith("tag:tubewatch,2026:feeds/videos/")
    again, _ = await _feed(api, [("query", "cricket"), ("q", "highlights")])
    assert feedparser.parse(again).feed.id == parsed.feed.id  # the same filters, the same id


async def test_a_hostile_title_is_literal_text(api: Client, catalogue: list[VideoEvent]) -> None:
    body, _ = await _feed(api, {"channel_id": f"UC{HOSTILE_CHANNEL:022d}"})
    parsed = feedparser.parse(body)
    assert not parsed.bozo
    hostile = [entry for entry in parsed.entries if entry.title == HOSTILE_TITLE]
    assert len(hostile) == 1
    assert hostile[0].title_detail.type == "text/plain"
    tree = atom_validator().parse(body)
    for title in tree.iter(f"{{{ATOM_NS}}}title"):
        assert len(title) == 0  # no element of any namespace inside a title: only text
    assert tree.find(f".//{{{ATOM_NS}}}entry/{{{MEDIA_NS}}}thumbnail") is not None


async def test_validators_answer_304_and_a_new_video_changes_the_etag(
    api: Client, catalogue: list[VideoEvent], writer: VideoWriter, es: AsyncElasticsearch, es_alias: str
) -> None:
    params = {"query": "football"}
    body, first = await _feed(api, params)
    etag, last_modified = first.headers["ETag"], first.headers["Last-Modified"]
    for headers in ({"If-None-Match": etag}, {"If-Modified-Since": last_modified}):
        unchanged = await api.get(FEED, params=params, headers=headers)
        assert unchanged.status == 304, headers
        assert await unchanged.read() == b""
        assert unchanged.headers["ETag"] == etag
        assert unchanged.headers["Last-Modified"] == last_modified
    _, other = await _feed(api, params, **{"If-None-Match": '"something-else"'})
    assert await other.read() == body
    await write(
        writer,
        es,
        es_alias,
        [make_event(random.Random(5), query="football", published_at=utc_now(), fetched_at=utc_now())],
    )
    changed = await api.get(FEED, params=params, headers={"If-None-Match": etag})
    assert changed.status == 200
    assert changed.headers["ETag"] != etag
    assert (await api.get(FEED, params=params, headers={"If-Modified-Since": last_modified})).status == 200
    assert (await api.get(FEED, params=params, headers={"If-None-Match": changed.headers["ETag"]})).status == 304


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("sort=published_at", "sort"),
        ("cursor=abc", "cursor"),
        ("limit=10", "limit"),
        ("q=x&interval=day", "interval"),
        ("nope=1", "nope"),
        ("published_within=P1M", "published_within"),
        ("published_after=2026-13-01", "published_after"),
        ("q=%20", "q"),
    ],
)
async def test_unknown_and_list_only_parameters_are_400s_naming_them(api: Client, query: str, parameter: str) -> None:
    response = await api.get(f"{FEED}?{query}")
    assert response.status == 400
    error = (await response.json())["error"]
    assert (error["code"], error["parameter"]) == ("invalid_parameter", parameter)


async def test_published_within_narrows_the_list_and_stays_fixed_along_a_walk(
    api: Client, catalogue: list[VideoEvent]
) -> None:
    now = utc_now()
    recent = sorted(
        (e for e in catalogue if e.published_at >= now - timedelta(hours=6)),
        key=lambda e: (e.published_at, e.video_id),
        reverse=True,
    )
    ids: list[str] = []
    params: dict[str, Any] = {"query": "football", "published_within": "PT6H", "limit": "1"}
    while True:
        body, _ = await get_page(api, params)
        ids += [item["video_id"] for item in body["items"]]
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    # The footballs 1 and 4 hours old; the one 7 hours old is out.
    assert ids == [e.video_id for e in recent if e.query == "football"]
    assert len(ids) == 2


async def test_the_micro_cache_serves_feeds_and_api_public_url_makes_the_links(
    make_api: ApiFactory, catalogue: list[VideoEvent]
) -> None:
    async with make_api(api_page_cache_seconds=60, api_public_url="https://tubewatch.example/watch/") as api:
        body, first = await _feed(api, {"q": "highlights"})
        assert len(api.app[PAGE_CACHE]) == 1
        again, second = await _feed(api, {"q": "highlights"})
        assert (again, second.headers["ETag"]) == (body, first.headers["ETag"])
        assert len(api.app[PAGE_CACHE]) == 1
        links = {link.rel: link.href for link in feedparser.parse(body).feed.links}
        assert links == {
            "self": f"https://tubewatch.example/watch{FEED}?q=highlights",
            "alternate": "https://tubewatch.example/watch/?q=highlights",
        }
