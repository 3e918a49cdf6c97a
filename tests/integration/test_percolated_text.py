"""Both percolators (the notifier's saved searches and the indexer's configured queries) search one field
holding a video's title, channel title and description: against real Elasticsearch, each stored query
matches exactly the videos the catalogue's search of the three fields finds for the same text in whole
words — phrases inside one text only, words across texts, exclusions, alternatives, stemming."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

from elasticsearch import AsyncElasticsearch
from pymongo.asynchronous.database import AsyncDatabase

from services.common.catalogue import VIDEOS_COLLECTION
from services.common.saved_searches import Webhook, WebhookSecret, new_saved_search, new_webhook_secret
from services.common.video_filters import VideoFilters
from services.common.video_query import Filters, build_query
from services.indexer.percolator import QueryPercolator
from services.notifier.saved_search_index import SavedSearchPercolator
from tests.factories import make_event
from tests.integration.api_support import prepare_stores, write

# name: (title, channel title, description)
VIDEOS = {
    "final": ("Cricket final tonight", "Sky Sports", "Highlights of the match"),
    # "final" ends the title and "Cricket" starts the channel title: no phrase "final cricket" here.
    "boundary": ("The final", "Cricket Club TV", "Nothing else to see"),
    "phrase": ("Last final cricket game", "Village Green", "A quiet afternoon"),
    "cats": ("Cats running wild", "Pets", "A category of its own"),
    "category": ("Category theory", "Maths Lectures", "Lecture one"),
    "nets": ("Bowling practice", "Cricket Club TV", "Net session, no highlights"),
}
QUERIES = [
    '"final cricket"',
    "cricket highlights",  # one word in a title or channel title, the other in a description
    "cricket -highlights",
    "cat | category",
    "cat",
    "run",  # stemmed: "running"
    "the final",
    '"net session"',
    "sky cricket",
    "lecture",
]


async def test_the_percolators_match_exactly_what_the_catalogue_finds_for_each_text(
    mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> None:
    rng = random.Random(21)
    events = {
        name: make_event(rng, query="clips").model_copy(
            update={"title": title, "channel_title": channel_title, "description": description}
        )
        for name, (title, channel_title, description) in VIDEOS.items()
    }
    names = {event.video_id: name for name, event in events.items()}
    await write(await prepare_stores(mongo_db, es, es_alias), es, es_alias, list(events.values()))
    docs = await mongo_db[VIDEOS_COLLECTION].find({"video_id": {"$in": list(names)}}).to_list()
    assert len(docs) == len(VIDEOS)

    expected: dict[str, set[str]] = {}
    for text in QUERIES:
        query = build_query(Filters(q=text), None, scored=False, whole_words=True)
        hits = (await es.search(index=es_alias, query=query, size=len(VIDEOS)))["hits"]["hits"]
        expected[text] = {names[hit["_id"]] for hit in hits}
    assert expected['"final cricket"'] == {"phrase"}, "the catalogue keeps a phrase inside one field"
    assert expected["cricket highlights"] == {"final", "nets"}
    assert expected["run"] == {"cats"}
    assert expected["cat"] == {"cats"}

    now = datetime.now(UTC)
    secrets = [WebhookSecret(value=new_webhook_secret(), created_at=now)]
    searches = {
        text: new_saved_search(text, VideoFilters(q=text), Webhook(url="https://hooks.example/x", secrets=secrets), now)
        for text in QUERIES
    }
    saved = SavedSearchPercolator(es, es_alias)
    await saved.sync(list(searches.values()))
    by_id = {search.id: text for text, search in searches.items()}
    notifier_found: dict[str, set[str]] = {text: set() for text in QUERIES}
    for hit in await saved.percolate(docs):
        notifier_found[by_id[hit.saved_search_id]] = {names[docs[slot]["video_id"]] for slot in hit.slots}
    assert notifier_found == expected

    queries = QueryPercolator(es, es_alias)
    await queries.sync(QUERIES)
    indexer_found: dict[str, set[str]] = {text: set() for text in QUERIES}
    for doc, matched in zip(docs, await queries.matches(docs), strict=True):
        for text in matched:
            indexer_found[text].add(names[doc["video_id"]])
    assert indexer_found == expected
