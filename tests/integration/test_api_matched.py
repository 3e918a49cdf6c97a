"""matched over real stores filled by the indexer's attributing writer: a followed channel's video
whose text holds a configured query is listed under query= as matched by text, one that does not is
not, search finding it turns it to search without a duplicate; matched=search|text narrows query=,
the same from MongoDB; matched without query is refused."""

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
from services.api.models import VideoPage
from services.common.catalogue import ensure_mongo_indexes, ensure_search_index
from services.common.events import FoundBy, VideoEvent
from services.common.settings import StackSettings
from services.common.timefmt import utc_now
from services.indexer.attribution import QueryAttribution
from services.indexer.store import VideoWriter
from tests.factories import make_event
from tests.integration.api_support import Client, api_settings, get_page, newest_first, write

CHANNEL = "UC" + "m" * 22


@dataclass
class Catalogue:
    text_matched: VideoEvent  # a channel video titled with the query's words: matched by text
    confirmed: VideoEvent  # the same at first, then search found it: matched by search
    unrelated: VideoEvent  # a channel video about something else: not under the query
    searched: VideoEvent  # found by the query's search


@pytest.fixture
async def catalogue(mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str) -> Catalogue:
    rng = random.Random(16)
    now = utc_now()

    def channel_video(minutes: int, title: str) -> VideoEvent:
        event = make_event(
            rng, published_at=now - timedelta(minutes=minutes), fetched_at=now, found_by=FoundBy.channel(CHANNEL)
        )
        return event.model_copy(update={"title": title, "description": "", "channel_title": "A channel"})

    catalogue = Catalogue(
        text_matched=channel_video(3, "Test match bowling, day two"),
        confirmed=channel_video(4, "Bowling spells of the series"),
        unrelated=channel_video(5, "Tennis at dawn"),
        searched=make_event(rng, query="bowl", published_at=now - timedelta(minutes=6), fetched_at=now),
    )
    await ensure_mongo_indexes(mongo_db)
    await ensure_search_index(es, es_alias)
    attribution = QueryAttribution(mongo_db, es, es_alias, search_queries=["bowl"], window=timedelta(days=7))
    writer = VideoWriter(mongo_db, es, es_alias, attribution=attribution)
    await write(writer, es, es_alias, [catalogue.text_matched, catalogue.confirmed, catalogue.unrelated])
    found = catalogue.confirmed.model_copy(
        update={"found_by": FoundBy.search("bowl"), "query": "bowl", "fetched_at": now + timedelta(seconds=1)}
    )
    await write(writer, es, es_alias, [found, catalogue.searched])
    return catalogue


def _settings(stack: StackSettings, mongo_db: AsyncDatabase[dict[str, Any]], alias: str) -> Any:
    return api_settings(
        mongodb_url=stack.mongodb_url,
        mongodb_database=mongo_db.name,
        elasticsearch_url=stack.elasticsearch_url,
        elasticsearch_index=alias,
        # The API seeds the sources with these at start: the indexer's attribution then reads them there.
        search_queries=["bowl"],
    )


@pytest.fixture
async def clients(
    stack: StackSettings, mongo_db: AsyncDatabase[dict[str, Any]], es_alias: str
) -> AsyncIterator[dict[str, Client]]:
    """The API on Elasticsearch, and with its alias missing (every listing from MongoDB)."""
    settings = _settings(stack, mongo_db, es_alias)
    degraded = _settings(stack, mongo_db, f"{es_alias}-absent")
    async with (
        TestClient(TestServer(create_app(settings))) as api,
        TestClient(TestServer(create_app(degraded))) as fallback,
    ):
        yield {"elasticsearch": api, "mongodb": fallback}


@pytest.mark.parametrize("served_by", ["elasticsearch", "mongodb"])
async def test_a_channel_video_is_listed_under_the_query_its_text_matches(
    clients: dict[str, Client], catalogue: Catalogue, served_by: str
) -> None:
    body, served = await get_page(clients[served_by], {"limit": "100", "query": "bowl"})
    assert served == served_by
    VideoPage.model_validate(body)
    listed = [item["video_id"] for item in body["items"]]
    # The unrelated channel video is not there; the confirmed one once, not twice.
    assert listed == newest_first([catalogue.text_matched, catalogue.confirmed, catalogue.searched])
    matched = {item["video_id"]: item["matched"] for item in body["items"]}
    assert matched == {
        catalogue.text_matched.video_id: {"bowl": "text"},
        catalogue.confirmed.video_id: {"bowl": "search"},
        catalogue.searched.video_id: {"bowl": "search"},
    }
    everything, _ = await get_page(clients[served_by], {"limit": "100"})
    unrelated = [item for item in everything["items"] if item["video_id"] == catalogue.unrelated.video_id]
    assert unrelated[0]["matched"] == {}


@pytest.mark.parametrize("served_by", ["elasticsearch", "mongodb"])
async def test_matched_narrows_the_query_to_search_or_text(
    clients: dict[str, Client], catalogue: Catalogue, served_by: str
) -> None:
    client = clients[served_by]
    body, _ = await get_page(client, {"limit": "100", "query": "bowl", "matched": "search"})
    assert [item["video_id"] for item in body["items"]] == newest_first([catalogue.confirmed, catalogue.searched])
    assert body["total"] == {"value": 2, "relation": "eq"}
    body, _ = await get_page(client, {"limit": "100", "query": "bowl", "matched": "text"})
    assert [item["video_id"] for item in body["items"]] == [catalogue.text_matched.video_id]


async def test_one_video_shows_matched_and_matched_needs_query(
    clients: dict[str, Client], catalogue: Catalogue
) -> None:
    api = clients["elasticsearch"]
    response = await api.get(f"/api/v1/videos/{catalogue.text_matched.video_id}")
    assert (await response.json())["matched"] == {"bowl": "text"}
    response = await api.get("/api/v1/videos", params={"matched": "search"})
    assert response.status == 400
    assert (await response.json())["error"]["parameter"] == "matched"
