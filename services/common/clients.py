"""The clients of the three servers, opened and closed the same way by every service.

Each opener is an async context manager, so an aiohttp ``cleanup_ctx`` or a command-line tool
holds a client for exactly as long as it needs it. The timeouts live here, named by who waits.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aio_pika
from aio_pika.abc import AbstractRobustConnection
from elasticsearch import AsyncElasticsearch
from pymongo import AsyncMongoClient

# How long a MongoDB operation waits for a usable server. A background service waits out a brief
# election; the API answers a user and falls back quickly; a one-off batch tool is patient.
SERVICE_MONGO_TIMEOUT_MS = 5_000
INTERACTIVE_MONGO_TIMEOUT_MS = 3_000
BATCH_MONGO_TIMEOUT_MS = 10_000

# Per-request Elasticsearch timeouts, by the same three kinds of caller.
SERVICE_ES_TIMEOUT_SECONDS = 30.0
INTERACTIVE_ES_TIMEOUT_SECONDS = 5.0
BATCH_ES_TIMEOUT_SECONDS = 120.0

MongoClient = AsyncMongoClient[dict[str, Any]]


def mongo_client(url: str, timeout_ms: int = SERVICE_MONGO_TIMEOUT_MS) -> MongoClient:
    """A client that returns aware datetimes and gives up on an unreachable server after ``timeout_ms``."""
    client: MongoClient = AsyncMongoClient(
        url, tz_aware=True, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms
    )
    return client


@asynccontextmanager
async def open_mongo(url: str, timeout_ms: int = SERVICE_MONGO_TIMEOUT_MS) -> AsyncIterator[MongoClient]:
    client = mongo_client(url, timeout_ms)
    try:
        yield client
    finally:
        await client.close()


@asynccontextmanager
async def open_elasticsearch(
    url: str, request_timeout: float = SERVICE_ES_TIMEOUT_SECONDS, **options: Any
) -> AsyncIterator[AsyncElasticsearch]:
    """One ``AsyncElasticsearch`` per process; ``options`` are the client's own (retries, pool size...)."""
    client = AsyncElasticsearch(url, request_timeout=request_timeout, **options)
    try:
        yield client
    finally:
        await client.close()


@asynccontextmanager
async def open_amqp(url: str, connection_name: str) -> AsyncIterator[AbstractRobustConnection]:
    """A robust connection (it reconnects by itself), named so RabbitMQ's management UI shows who it is."""
    connection = await aio_pika.connect_robust(url, client_properties={"connection_name": connection_name})
    try:
        yield connection
    finally:
        await connection.close()
