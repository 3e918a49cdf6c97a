"""The notifier service end to end on real servers: 1,000 videos stored by the real indexer, 50 saved searches
with webhooks to a real receiver on loopback that checks every signature. Every match is delivered and
nothing else: the matches are what Elasticsearch finds for each saved search's filters (the video
list's query, whole words) once the videos are indexed, and every one of their delivery ids arrives; each
saved search's public feed (served by the API) holds its newest 50 delivered videos."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import aio_pika
import feedparser  # type: ignore[import-untyped]
import pytest
from aiohttp import web
from elasticsearch import AsyncElasticsearch
from pymongo.asynchronous.database import AsyncDatabase

from services.common.saved_searches import SavedSearch
from services.common.settings import StackSettings
from services.common.timefmt import utc_now
from services.common.topology import QueueNames
from services.common.video_query import build_query
from services.notifier.app import create_app
from services.notifier.deliveries import DEFER_MS, delivery_id_for
from tests.factories import make_event
from tests.integration.admin_support import Client, admin_api
from tests.integration.delivery_support import DeliveryQueues
from tests.integration.indexer_support import bodies, publish, running_indexer, shared_stack_settings
from tests.integration.notifier_support import (
    delete_notifier_queues,
    notifier_settings,
    save_search,
    stored_events_watch,
)
from tests.integration.webhook_receiver import HOST, WebhookReceiver
from tests.waiting import wait_until

VIDEOS = 1_000
FEED_SIZE = 50  # a feed's entries: the newest matches
# Title words; "cat" is searched for, "category" and "catalogue" only appear: whole words only.
WORDS = [
    "cat", "category", "catalogue", "dog", "river", "mountain", "storm", "garden", "piano", "guitar",
    "football", "cricket", "tennis", "chess", "bread", "coffee", "train", "rocket", "island", "forest",
    "winter", "summer", "market", "castle", "dragon", "robot", "ocean", "desert", "jungle", "valley",
]  # fmt: skip
SEARCHES = [
    "cat", "dog", "river", "mountain", "storm", "garden", "piano", "guitar", "football", "cricket",
    "tennis", "chess", "bread", "coffee", "train", "rocket", "island", "forest", "winter", "summer",
    "market castle", "dragon robot", "ocean desert", "jungle valley", "cat dog", "piano guitar",
    "coffee bread", "train rocket", "storm -winter", '"river valley"',
]  # fmt: skip


@pytest.fixture
async def delivery_queues(
    amqp: aio_pika.abc.AbstractRobustConnection, unique_name: str
) -> AsyncIterator[DeliveryQueues]:
    queues = DeliveryQueues(amqp, f"{unique_name}.deliveries")
    yield queues
    await queues.delete()


async def matching_video_ids(es: AsyncElasticsearch, alias: str, search: SavedSearch) -> set[str]:
    """What the video list finds for the saved search's filters, q in whole words: the expected matches."""
    await es.indices.refresh(index=alias)
    query = build_query(search.filters.filters(), None, scored=False, whole_words=True)
    response = await es.search(index=alias, query=query, size=VIDEOS, source_includes=["video_id"])
    return {hit["_source"]["video_id"] for hit in response["hits"]["hits"]}


async def feed_entries(api: Client, search: SavedSearch) -> dict[str, datetime]:
    """The saved search's feed, served by the API: its videos' ids and when each was published."""
    response = await api.get(f"/api/v1/feeds/saved/{search.feed_id}.atom")
    body = await response.read()
    assert response.status == 200, body[:300]
    parsed = feedparser.parse(body)
    assert not parsed.bozo, parsed.get("bozo_exception")
    entries = {
        str(entry.id).removeprefix("yt:video:"): datetime.fromisoformat(entry.published) for entry in parsed.entries
    }
    assert len(entries) == len(parsed.entries) <= FEED_SIZE
    return entries


def assert_feed_holds_the_newest_delivered(feed: dict[str, datetime], delivered: dict[str, datetime]) -> None:
    """Every video delivered to the saved search that is among the feed's FEED_SIZE newest is in it: all of
    them while the feed is not full, else each one newer than its oldest entry (ties at that boundary may
    go either way). The feed may hold more: it reads its filters as the video list does, the last word
    of q as a prefix ("cat" lists "category"), where matching takes whole words only."""
    if len(feed) < FEED_SIZE:
        missing = set(delivered) - set(feed)
    else:
        oldest = min(feed.values())
        missing = {video_id for video_id, published in delivered.items() if published > oldest} - set(feed)
    assert not missing, "every delivered video among the feed's newest is in it"


async def test_a_thousand_videos_and_fifty_saved_searches_deliver_every_match_and_nothing_else(
    stack: StackSettings,
    amqp: aio_pika.abc.AbstractRobustConnection,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    es: AsyncElasticsearch,
    es_alias: str,
    delivery_queues: DeliveryQueues,
) -> None:
    rng = random.Random(1000)
    settings = notifier_settings(
        stack,
        queue_names,
        mongo_db.name,
        es_alias,
        delivery_queues,
        webhook_allow_hosts=frozenset({HOST}),
        webhook_retry_base_seconds=0.5,
        webhook_retry_max_seconds=2.0,
    )
    delivery_queues.delays_ms.update({DEFER_MS, *settings.retry_policy.delays_ms})
    indexer_settings = shared_stack_settings(
        stack, queue_names, mongo_db.name, es_alias, index_batch_size=200, index_batch_max_wait_ms=50
    )
    created = utc_now() - timedelta(minutes=1)
    searches: list[SavedSearch] = []
    async with WebhookReceiver() as receiver:
        for n, text in enumerate(SEARCHES):
            search, secret = await save_search(
                mongo_db, {"q": text}, url=receiver.url(f"/hooks/{n}"), created_at=created
            )
            receiver.add_secret(search.id, secret)
            searches.append(search)
        for n in range(50 - len(SEARCHES)):  # the rest: a word in a few channels' videos only
            channels = [f"UC{c:022d}" for c in rng.sample(range(20), 3)]
            filters = {"q": rng.choice(WORDS[3:]), "channel_id": channels}
            search, secret = await save_search(
                mongo_db, filters, url=receiver.url(f"/channels/{n}"), created_at=created
            )
            receiver.add_secret(search.id, secret)
            searches.append(search)
        now = utc_now()
        videos = [
            make_event(
                rng,
                query="clips",
                title=" ".join(rng.sample(WORDS, 3)).capitalize(),
                published_at=now - timedelta(minutes=rng.randrange(600)),
                fetched_at=now,
            )
            for _ in range(VIDEOS)
        ]
        runner = web.AppRunner(create_app(settings))
        await runner.setup()
        try:
            async with (
                stored_events_watch(amqp, queue_names) as watch,
                running_indexer(indexer_settings, amqp, mongo_db, es),
            ):
                await publish(amqp, queue_names, bodies(videos))
                await watch.wait_announced({v.video_id for v in videos}, within=60)
                expected = {
                    delivery_id_for(search.id, video_id)
                    for search in searches
                    for video_id in await matching_video_ids(es, es_alias, search)
                }
                assert len(expected) > VIDEOS / 2, "the saved searches match a good part of the videos"
                await receiver.wait_delivered(expected, within=90)

                async def queues_drained() -> bool:
                    counts = await delivery_queues.counts()
                    return counts["work"] == 0 and counts["delayed"] == 0

                await wait_until(queues_drained, within=30, what="every delivery settled")
        finally:
            await runner.cleanup()
            await delete_notifier_queues(amqp, settings)

    assert receiver.bad_signatures == []
    assert receiver.delivered_ids == expected, "every match delivered, and nothing that does not match"
    whole_words = {v.video_id for v in videos if "cat" not in v.title.lower().split()}
    cat_search = next(s for s in searches if s.filters.q == "cat")
    delivered_to_cat = {
        r.payload["video"]["video_id"] for r in receiver.delivered if r.payload["saved_search"]["id"] == cat_search.id
    }
    assert delivered_to_cat and not delivered_to_cat & whole_words, '"cat" never delivers "category" or "catalogue"'

    delivered: dict[str, dict[str, datetime]] = {search.id: {} for search in searches}
    for received in receiver.delivered:
        video = received.payload["video"]
        published = datetime.fromisoformat(video["published_at"])
        delivered[received.payload["saved_search"]["id"]][video["video_id"]] = published
    async with admin_api(stack, mongo_db, es_alias, api_page_cache_seconds=0) as api:
        for search in searches:
            assert_feed_holds_the_newest_delivered(await feed_entries(api, search), delivered[search.id])
    assert max(len(videos) for videos in delivered.values()) > FEED_SIZE, "some feed holds only the newest"
