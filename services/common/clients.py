"""The clients of the three servers, opened and closed the same way by every service.

Each opener is an async context manager, so an aiohttp ``cleanup_ctx`` or a command-line tool
holds a client for exactly as long as it needs it. The timeouts live here, named by who waits.

Every URL may be a comma-separated list of a cluster's nodes: Elasticsearch's client is given them
all, the AMQP connection moves through them (``RotatingRobustConnection``), and MongoDB's URL is a
seed list already (its client finds the replica set's primary by itself).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aio_pika
from aio_pika.abc import AbstractConnection, AbstractRobustConnection
from aio_pika.exceptions import CONNECTION_EXCEPTIONS
from aio_pika.robust_connection import RobustConnection
from elasticsearch import AsyncElasticsearch
from pymongo import AsyncMongoClient
from yarl import URL

# How long a MongoDB operation waits for a usable server (a primary, for writes and default reads).
# A replica set without a primary elects one in about 10-12 s after an unplanned failure (the
# members' electionTimeoutMillis plus the vote): a background service waits that out, so a write
# pauses instead of failing. The API answers a user and gives up sooner (its reads mostly go to
# Elasticsearch); a one-off batch tool is patient.
SERVICE_MONGO_TIMEOUT_MS = 15_000
INTERACTIVE_MONGO_TIMEOUT_MS = 3_000
BATCH_MONGO_TIMEOUT_MS = 20_000

# Per-request Elasticsearch timeouts, by the same three kinds of caller.
SERVICE_ES_TIMEOUT_SECONDS = 30.0
INTERACTIVE_ES_TIMEOUT_SECONDS = 5.0
BATCH_ES_TIMEOUT_SECONDS = 120.0
# Retries of a request whose node failed (refused the connection, or answered 429/502/503/504): the
# client marks a node that failed dead and sends the retry to another, so with several nodes a dead
# one costs a quick retry rather than a failed request (timeouts are not retried unless asked).
SERVICE_ES_RETRIES = 3

MongoClient = AsyncMongoClient[dict[str, Any]]


def split_urls(url: str) -> list[str]:
    """The URLs of a comma-separated list (the settings have checked each)."""
    return [part.strip() for part in url.split(",") if part.strip()]


def mongo_client(url: str, timeout_ms: int = SERVICE_MONGO_TIMEOUT_MS) -> MongoClient:
    """A client that returns aware datetimes and gives up on an unreachable server after ``timeout_ms``.

    Writes are acknowledged by a majority of the replica set, journaled: a write a client was told
    succeeded survives the loss of the primary (a w:1 write could be rolled back by the election).
    A read or write that fails because the primary went away is retried once on the new primary
    (pymongo's defaults, stated so no URL turns them off by accident).
    """
    client: MongoClient = AsyncMongoClient(
        url,
        tz_aware=True,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        w="majority",
        journal=True,
        retryWrites=True,
        retryReads=True,
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
    """One ``AsyncElasticsearch`` per process, given every node of ``url`` (a comma-separated list);
    ``options`` are the client's own (retries, pool size...).

    Without ``max_retries`` in ``options``: ``SERVICE_ES_RETRIES``, or one fewer than the nodes when
    there are more, so one request may try every node once.
    """
    hosts = split_urls(url)
    options.setdefault("max_retries", max(SERVICE_ES_RETRIES, len(hosts) - 1))
    client = AsyncElasticsearch(hosts, request_timeout=request_timeout, **options)
    try:
        yield client
    finally:
        await client.close()


class RotatingRobustConnection(RobustConnection):
    """aio-pika's robust connection over a list of brokers (a cluster's nodes): each time a connection
    attempt fails or the connection drops, the next attempt goes to the next URL of the list.

    aio-pika calls ``_on_connection_close`` both when an established connection closes and when a
    connection attempt fails (``UnderlayConnection.connect``), and every attempt connects to
    ``self.url``: moving ``url`` there is the whole rotation. Set ``urls`` (starting at ``url``)
    right after construction: ``connect_robust`` builds the connection from one URL.
    """

    urls: tuple[URL, ...] = ()

    async def _on_connection_close(self, closing: asyncio.Future[Any]) -> None:
        if not self._close_called and len(self.urls) > 1:
            position = self.urls.index(self.url) if self.url in self.urls else -1
            self.url = self.urls[(position + 1) % len(self.urls)]
        await super()._on_connection_close(closing)


async def connect_amqp_robust(url: str, connection_name: str, **options: Any) -> AbstractRobustConnection:
    """A ``RotatingRobustConnection`` to the first of ``url``'s brokers that takes it.

    The first connection fails fast as aio-pika's does (a broker down at start is an error at
    start), but only once every URL of the list has refused it; the reconnections that follow go
    through the list without end. ``options`` are ``connect_robust``'s (``reconnect_interval``...).
    """
    urls = tuple(URL(u) for u in split_urls(url))
    timeout = options.pop("timeout", None)
    failure: BaseException | None = None
    for start in range(len(urls)):
        connection = RotatingRobustConnection(
            urls[start], client_properties={"connection_name": connection_name}, **options
        )
        connection.urls = urls[start:] + urls[:start]
        try:
            await connection.connect(timeout=timeout)
        except CONNECTION_EXCEPTIONS as exc:
            failure = exc
            await connection.close()
            continue
        return connection
    assert failure is not None
    raise failure


async def connect_amqp(
    url: str,
    connection_name: str,
    timeout: float | None = None,  # noqa: ASYNC109 - per broker, passed on to aio-pika
) -> AbstractConnection:
    """A plain (not robust) connection to the first of ``url``'s brokers that takes it (a tool's, or a
    probe's: ``timeout`` per broker)."""
    failure: BaseException | None = None
    for single in split_urls(url):
        try:
            return await aio_pika.connect(
                single, timeout=timeout, client_properties={"connection_name": connection_name}
            )
        except CONNECTION_EXCEPTIONS as exc:
            failure = exc
    assert failure is not None
    raise failure


@asynccontextmanager
async def open_amqp(url: str, connection_name: str, **options: Any) -> AsyncIterator[AbstractRobustConnection]:
    """A robust connection (it reconnects by itself, through ``url``'s brokers when it lists several),
    named so RabbitMQ's management UI shows who it is."""
    connection = await connect_amqp_robust(url, connection_name, **options)
    try:
        yield connection
    finally:
        await connection.close()
