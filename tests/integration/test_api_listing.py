"""GET /api/v1/videos and friends over real stores filled by the indexer's writer: filters, sorts, q."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from elasticsearch import AsyncElasticsearch
from pymongo.asynchronous.database import AsyncDatabase

from services.api.app import create_app
from services.api.models import ChannelList, Histogram, Video, VideoPage
from services.common.events import VideoEvent
from services.common.settings import StackSettings
from tests.factories import BASE_TIME, make_event
from tests.integration.api_support import (
    Client,
    api_settings,
    get_page,
    newest_first,
    oldest_first,
    prepare_stores,
    spread_events,
    walk,
    write,
)


@dataclass
class Catalogue:
    events: list[VideoEvent]
    texts: dict[str, VideoEvent]  # special videos by name


@pytest.fixture
async def catalogue(mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str) -> Catalogue:
    rng = random.Random(11)
    # 240 plain videos an hour apart over 10 days, a few sharing a second (the video_id tie-breaker).
    events = spread_events(rng, 240, step_seconds=3600)
    events += [make_event(rng, query="football", published_at=BASE_TIME - timedelta(hours=i * 7)) for i in range(12)]
    texts = {
        "running": make_event(
            rng, title="Morning running drills at the nets", published_at=BASE_TIME - timedelta(days=2)
        ),
        "phrase": make_event(rng, title="Umpire makes a bold call", published_at=BASE_TIME - timedelta(days=3)),
        "reversed": make_event(
            rng, title="A call makes bold umpire history", published_at=BASE_TIME - timedelta(days=4)
        ),
        "quetzal": make_event(rng, title="Quetzalcoatl bowling spell", published_at=BASE_TIME - timedelta(days=5)),
        "described": make_event(rng, title="Evening session", published_at=BASE_TIME - timedelta(days=6)).model_copy(
            update={"description": "Xylophone finale tonight"}
        ),
    }
    events += texts.values()
    writer = await prepare_stores(mongo_db, es, es_alias)
    await write(writer, es, es_alias, events)
    return Catalogue(events, texts)


@pytest.fixture
async def api(
    stack: StackSettings, mongo_db: AsyncDatabase[dict[str, Any]], es_alias: str
) -> AsyncIterator[TestClient[Any, Any]]:
    settings = api_settings(
        mongodb_url=stack.mongodb_url,
        mongodb_database=mongo_db.name,
        elasticsearch_url=stack.elasticsearch_url,
        elasticsearch_index=es_alias,
    )
    async with TestClient(TestServer(create_app(settings))) as client:
        yield client


async def _ids(api: Client, **params: Any) -> list[str]:
    body, _ = await get_page(api, {"limit": "100"} | params)
    return [item["video_id"] for item in body["items"]]


async def test_first_page_is_newest_first_in_the_public_shape(api: Client, catalogue: Catalogue) -> None:
    response = await api.get("/api/v1/videos", params={"limit": "5"})
    assert response.status == 200
    assert response.headers["X-Served-By"] == "elasticsearch"
    assert response.headers["X-Request-Id"]
    body = await response.json()
    VideoPage.model_validate(body)
    assert [v["video_id"] for v in body["items"]] == newest_first(catalogue.events)[:5]
    first = body["items"][0]
    assert set(first) == set(Video.model_fields)
    assert first["published_at"].endswith("Z")
    assert first["url"] == f"https://www.youtube.com/watch?v={first['video_id']}"
    assert first["thumbnails"]["default"]["width"] == 120
    assert body["total"] == {"value": len(catalogue.events), "relation": "eq"}
    assert body["next_cursor"]


@pytest.mark.parametrize(("sort", "order"), [("-published_at", newest_first), ("published_at", oldest_first)])
async def test_a_cursor_walk_returns_every_video_once_in_order(
    api: Client, catalogue: Catalogue, sort: str, order: Any
) -> None:
    ids, served = await walk(api, {"limit": "40", "sort": sort})
    assert ids == order(catalogue.events)
    assert served == {"elasticsearch"}


async def test_channel_filter_is_repeatable(api: Client, catalogue: Catalogue) -> None:
    wanted = {catalogue.events[0].channel_id, catalogue.events[1].channel_id}
    ids, _ = await walk(api, {"limit": "100", "channel_id": sorted(wanted)})
    assert ids == newest_first([e for e in catalogue.events if e.channel_id in wanted])


async def test_published_between_is_inclusive_and_a_date_means_midnight_utc(api: Client, catalogue: Catalogue) -> None:
    after, before = BASE_TIME - timedelta(days=2), BASE_TIME - timedelta(days=1)
    ids = await _ids(api, published_after=after.isoformat(), published_before=before.isoformat().replace("+00:00", "Z"))
    assert ids == newest_first([e for e in catalogue.events if after <= e.published_at <= before])
    day = (BASE_TIME - timedelta(days=3)).date()
    midnight = BASE_TIME.replace(hour=0) - timedelta(days=3)
    ids = await _ids(api, published_before=day.isoformat(), published_after=(midnight - timedelta(hours=5)).isoformat())
    assert ids == newest_first(
        [e for e in catalogue.events if midnight - timedelta(hours=5) <= e.published_at <= midnight]
    )
    # An offset is a zone like any other.
    ids = await _ids(api, published_after="2026-11-24T13:00:00+02:00")
    assert ids == newest_first([e for e in catalogue.events if e.published_at >= BASE_TIME - timedelta(hours=1)])


async def test_query_filter_keeps_the_videos_of_one_configured_query(api: Client, catalogue: Catalogue) -> None:
    ids = await _ids(api, query="football")
    assert ids == newest_first([e for e in catalogue.events if e.query == "football"])
    assert await _ids(api, query="tennis") == []


async def test_q_stems_words(api: Client, catalogue: Catalogue) -> None:
    assert await _ids(api, q="run ") == [catalogue.texts["running"].video_id]
    assert await _ids(api, q="drill ") == [catalogue.texts["running"].video_id]


async def test_q_matches_the_last_word_as_a_prefix_while_typing(api: Client, catalogue: Catalogue) -> None:
    assert await _ids(api, q="quetz") == [catalogue.texts["quetzal"].video_id]
    assert await _ids(api, q="bowling quetzalc") == [catalogue.texts["quetzal"].video_id]
    assert await _ids(api, q="the quetz") == [catalogue.texts["quetzal"].video_id]  # stop words never block
    # A finished word (followed by a space) is a whole word, not a prefix.
    assert await _ids(api, q="quetz ") == []


async def test_the_word_being_typed_matches_a_prefix_of_description_words_too(
    api: Client, catalogue: Catalogue
) -> None:
    described = catalogue.texts["described"].video_id
    assert await _ids(api, q="xyloph") == [described]
    assert await _ids(api, q="evening xyloph") == [described]  # the head in the title, the prefix in the description
    assert await _ids(api, q="xyloph", sort="relevance") == [described]
    assert await _ids(api, q="xyloph ") == []


async def test_q_phrases_exclusions_and_all_words_required(api: Client, catalogue: Catalogue) -> None:
    phrase, reversed_ = catalogue.texts["phrase"].video_id, catalogue.texts["reversed"].video_id
    assert set(await _ids(api, q="umpire bold call")) == {phrase, reversed_}
    assert await _ids(api, q='"makes a bold call"') == [phrase]
    assert await _ids(api, q="umpire bold -history") == [phrase]
    # Query syntax of other kinds is plain text here: it neither fails nor reaches other fields.
    for text in ("video_id:x", "title:(umpire", "umpire~2 AND [", "*", "channel_id:UC*", "\\", '"'):
        response = await api.get("/api/v1/videos", params={"q": text})
        assert response.status == 200, await response.text()
    assert await _ids(api, q="channel_id:" + catalogue.events[0].channel_id) == []


async def test_relevance_ranks_the_best_match_first(api: Client, catalogue: Catalogue) -> None:
    ids = await _ids(api, q="quetzalcoatl bowling", sort="relevance")
    assert ids == [catalogue.texts["quetzal"].video_id]
    body, _ = await get_page(api, {"q": "bold umpire call", "sort": "relevance", "limit": "1"})
    assert body["items"][0]["video_id"] in {catalogue.texts["phrase"].video_id, catalogue.texts["reversed"].video_id}
    assert body["next_cursor"]


async def test_total_counts_matches_exactly_up_to_a_limit(api: Client, catalogue: Catalogue) -> None:
    body, _ = await get_page(api, {"query": "football", "limit": "1"})
    assert body["total"] == {"value": 12, "relation": "eq"}


async def test_one_video_comes_from_the_system_of_record(api: Client, catalogue: Catalogue) -> None:
    event = catalogue.texts["phrase"]
    response = await api.get(f"/api/v1/videos/{event.video_id}")
    assert response.status == 200
    assert response.headers["X-Served-By"] == "mongodb"
    video = Video.model_validate(await response.json())
    assert video.title == event.title
    assert video.published_at == event.published_at


async def test_channels_with_counts_most_videos_first(api: Client, catalogue: Catalogue) -> None:
    response = await api.get("/api/v1/channels", params={"limit": "100"})
    assert response.status == 200
    channels = ChannelList.model_validate(await response.json()).items
    expected: dict[str, int] = {}
    for event in catalogue.events:
        expected[event.channel_id] = expected.get(event.channel_id, 0) + 1
    assert {c.channel_id: c.video_count for c in channels} == expected
    assert [c.video_count for c in channels] == sorted(expected.values(), reverse=True)
    one = (await (await api.get("/api/v1/channels", params={"q": "channel 1", "limit": "100"})).json())["items"]
    assert {c["channel_title"] for c in one} <= {f"Channel {n}" for n in (1, *range(10, 20))}
    assert "Channel 1" in {c["channel_title"] for c in one}


async def test_histogram_counts_uploads_per_utc_bucket_with_the_list_filters(api: Client, catalogue: Catalogue) -> None:
    response = await api.get(
        "/api/v1/histogram",
        params={"interval": "day", "published_after": "2026-11-20", "published_before": "2026-11-24T23:59:59Z"},
    )
    assert response.status == 200
    assert response.headers["X-Served-By"] == "elasticsearch"
    histogram = Histogram.model_validate(await response.json())
    assert [b.start.day for b in histogram.buckets] == [20, 21, 22, 23, 24]
    for bucket in histogram.buckets:
        assert bucket.count == sum(1 for e in catalogue.events if e.published_at.date() == bucket.start.date())
    hourly = (await (await api.get("/api/v1/histogram", params={"interval": "hour", "query": "football"})).json())[
        "buckets"
    ]
    assert sum(b["count"] for b in hourly) == 12
    assert len(hourly) == 11 * 7 + 1  # from the oldest football video to the newest, empty hours included


async def test_identical_list_requests_within_the_cache_time_share_one_search(
    stack: StackSettings,
    mongo_db: AsyncDatabase[dict[str, Any]],
    es: AsyncElasticsearch,
    es_alias: str,
    catalogue: Catalogue,
) -> None:
    settings = api_settings(
        mongodb_url=stack.mongodb_url,
        mongodb_database=mongo_db.name,
        elasticsearch_url=stack.elasticsearch_url,
        elasticsearch_index=es_alias,
        api_page_cache_seconds=60,
    )
    async with TestClient(TestServer(create_app(settings))) as client:
        before = await (await client.get("/api/v1/videos", params={"limit": "3"})).read()
        newest = make_event(random.Random(99), published_at=BASE_TIME + timedelta(hours=1))
        writer = await prepare_stores(mongo_db, es, es_alias)
        await write(writer, es, es_alias, [newest])
        assert await (await client.get("/api/v1/videos", params={"limit": "3"})).read() == before
        fresh, _ = await get_page(client, {"limit": "4"})
        assert fresh["items"][0]["video_id"] == newest.video_id


async def test_degraded_mode_answers_like_elasticsearch_from_mongodb(
    api: Client, stack: StackSettings, mongo_db: AsyncDatabase[dict[str, Any]], es_alias: str, catalogue: Catalogue
) -> None:
    """With the alias missing, filters, channels, histogram and whole-word q come from MongoDB, same answers."""
    settings = api_settings(
        mongodb_url=stack.mongodb_url,
        mongodb_database=mongo_db.name,
        elasticsearch_url=stack.elasticsearch_url,
        elasticsearch_index=f"{es_alias}-absent",
    )
    async with TestClient(TestServer(create_app(settings))) as degraded:
        requests: list[tuple[str, dict[str, str]]] = [
            ("/api/v1/videos", {"limit": "100", "query": "football"}),
            ("/api/v1/videos", {"limit": "100", "channel_id": catalogue.events[0].channel_id, "sort": "published_at"}),
            ("/api/v1/videos", {"limit": "100", "published_after": "2026-11-22", "published_before": "2026-11-23"}),
            ("/api/v1/videos", {"limit": "100", "q": "umpire bold -history"}),
            ("/api/v1/videos", {"limit": "100", "q": '"makes a bold call"'}),
            ("/api/v1/channels", {"limit": "100"}),
            ("/api/v1/histogram", {"interval": "hour", "query": "football"}),
            ("/api/v1/queries", {}),
        ]
        for path, params in requests:
            expected = await api.get(path, params=params)
            got = await degraded.get(path, params=params)
            assert got.status == expected.status == 200, await got.text()
            if path != "/api/v1/queries":
                assert got.headers["X-Served-By"] == "mongodb"
            expected_body, got_body = await expected.json(), await got.json()
            if path == "/api/v1/videos":
                assert [v["video_id"] for v in got_body["items"]] == [v["video_id"] for v in expected_body["items"]]
                assert got_body["total"] == expected_body["total"]
            elif path == "/api/v1/channels":
                key = lambda c: (-c["video_count"], c["channel_id"])  # noqa: E731
                assert sorted(got_body["items"], key=key) == sorted(expected_body["items"], key=key)
            else:
                assert got_body == expected_body
