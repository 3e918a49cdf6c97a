"""The private stack outage tests rely on really stops and restarts its servers, keeping data."""

from __future__ import annotations

import pytest
from elasticsearch import AsyncElasticsearch
from pymongo import AsyncMongoClient
from pymongo.errors import ConnectionFailure

from tests.private_stack import PrivateStack


async def test_stopped_servers_refuse_and_restarted_ones_keep_their_data(private_stack: PrivateStack) -> None:
    es = AsyncElasticsearch(private_stack.elasticsearch_url, request_timeout=5, max_retries=0)
    mongo: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        private_stack.mongodb_url, serverSelectionTimeoutMS=2000
    )
    try:
        await es.index(index="private-check", id="1", document={"n": 1}, refresh=True)
        await mongo.check.things.insert_one({"_id": 1})

        private_stack.stop("elasticsearch")
        private_stack.stop("mongodb")
        assert not await es.ping()
        with pytest.raises(ConnectionFailure):
            await mongo.check.things.find_one({"_id": 1})

        private_stack.start("mongodb")
        private_stack.start("elasticsearch")
        assert (await es.get(index="private-check", id="1"))["_source"] == {"n": 1}
        assert await mongo.check.things.find_one({"_id": 1}) == {"_id": 1}
    finally:
        await es.close()
        await mongo.close()
