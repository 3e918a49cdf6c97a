"""ELASTICSEARCH_REPLICAS: the catalogue's index and the percolator indexes get it at creation, and an
existing index is given it at start (a dynamic setting). On this one node a replica is never
allocated (the index goes yellow), but the setting is what the index holds."""

from __future__ import annotations

from typing import Any

from elasticsearch import AsyncElasticsearch
from pymongo.asynchronous.database import AsyncDatabase

from services.common.catalogue import ensure_mongo_indexes, ensure_search_index, percolator_alias
from services.common.settings import StackSettings
from services.common.topology import QueueNames
from services.indexer.percolator import QueryPercolator
from services.indexer.upgrade import CatalogueUpgrade
from services.notifier.saved_search_index import SavedSearchPercolator, saved_searches_alias
from tests.integration.indexer_support import shared_stack_settings


async def _replicas(es: AsyncElasticsearch, alias: str) -> list[int]:
    found = await es.indices.get_settings(index=alias, name="index.number_of_replicas")
    return [int(body["settings"]["index"]["number_of_replicas"]) for body in found.body.values()]


async def test_the_catalogue_index_has_no_replica_by_default_and_the_configured_count_otherwise(
    es: AsyncElasticsearch, es_alias: str
) -> None:
    await ensure_search_index(es, es_alias)
    assert await _replicas(es, es_alias) == [0]
    # An existing index is given the count a later start is configured with, and back.
    await ensure_search_index(es, es_alias, replicas=1)
    assert await _replicas(es, es_alias) == [1]
    await ensure_search_index(es, es_alias, replicas=0)
    assert await _replicas(es, es_alias) == [0]
    # A new index is created with it.
    await ensure_search_index(es, f"{es_alias}.two", replicas=2)
    assert await _replicas(es, f"{es_alias}.two") == [2]


async def test_an_indexer_start_applies_elasticsearch_replicas_to_the_live_index(
    stack: StackSettings, mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> None:
    names = QueueNames(f"{es_alias}.videos", f"{es_alias}.videos.index")
    await ensure_mongo_indexes(mongo_db)
    for configured, expected in ((None, 0), (1, 1), (None, 0)):
        settings = shared_stack_settings(stack, names, mongo_db.name, es_alias, elasticsearch_replicas=configured)
        assert settings.elasticsearch_replica_count == expected
        upgrade = CatalogueUpgrade(settings, mongo_db, es)
        try:
            await upgrade.run()  # what an indexer does at start
        finally:
            await upgrade.close()
        assert await _replicas(es, es_alias) == [expected]


async def test_the_percolator_indexes_get_the_replicas_at_creation_and_at_start(
    es: AsyncElasticsearch, es_alias: str
) -> None:
    await ensure_search_index(es, es_alias)
    await QueryPercolator(es, es_alias, replicas=1).sync(["cricket"])
    assert await _replicas(es, percolator_alias(es_alias)) == [1]
    # A process started with another count changes the index it finds, and rebuilds nothing.
    before = list((await es.indices.get_alias(name=percolator_alias(es_alias))).body)
    await QueryPercolator(es, es_alias, replicas=0).sync(["cricket"])
    assert await _replicas(es, percolator_alias(es_alias)) == [0]
    assert list((await es.indices.get_alias(name=percolator_alias(es_alias))).body) == before

    await SavedSearchPercolator(es, es_alias, replicas=1).sync([])
    assert await _replicas(es, saved_searches_alias(es_alias)) == [1]
    before = list((await es.indices.get_alias(name=saved_searches_alias(es_alias))).body)
    await SavedSearchPercolator(es, es_alias).sync([])
    assert await _replicas(es, saved_searches_alias(es_alias)) == [0]
    assert list((await es.indices.get_alias(name=saved_searches_alias(es_alias))).body) == before
