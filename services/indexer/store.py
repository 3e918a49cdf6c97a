"""``VideoWriter``: stores a batch of video events in MongoDB (the system of record), then Elasticsearch.

The steps of ``write_batch``, in order: with ``attribution``, the events found through a channel
are percolated against the configured queries (``attribution``, one request); MongoDB inserts or
merges each event, with the queries it matched (``mongo_writer``); the merged videos are read back;
Elasticsearch indexes them all in one bulk (``es_bulk``). ``write_removals`` does the same for
removals: MongoDB marks the videos removed (``removal``), and their read-back documents take the same
bulk path. Every write is idempotent, so a batch may be written again after any failure.

Failures are sorted into two kinds (``mongo_errors``, ``es_errors``). A store that cannot take the
batch right now (unreachable, timing out, overloaded, not primary, read-only) raises
``StoreUnavailableError``: the caller keeps the messages and retries the whole batch later. A
document a store refuses on its merits (a mapping error, a validation failure, a 400) comes back as
that event's rejection reason; only those count as a failed attempt of the message.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from elasticsearch import ApiError, AsyncElasticsearch, TransportError
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from services.common.catalogue import ensure_search_index
from services.common.errors import StoreUnavailableError
from services.common.events import VideoEvent, VideoRemoved
from services.common.timefmt import truncate_to_ms, utc_now
from services.indexer import es_errors, mongo_errors
from services.indexer.attribution import QueryAttribution
from services.indexer.es_bulk import bulk_index
from services.indexer.mongo_errors import MONGODB
from services.indexer.mongo_writer import MongoWriter
from services.indexer.removal import mark_removed
from services.indexer.upgrade import CatalogueUpgrade

# Called with ("mongodb" | "elasticsearch", seconds) after each store's part of a batch.
StoreTimer = Callable[[str, float], None]


class VideoWriter:
    def __init__(
        self,
        db: AsyncDatabase[dict[str, Any]],
        es: AsyncElasticsearch,
        alias: str,
        timer: StoreTimer | None = None,
        *,
        upgrade: CatalogueUpgrade | None = None,
        attribution: QueryAttribution | None = None,
    ) -> None:
        self._db = db
        self._mongo = MongoWriter(db)
        self._es = es
        self._alias = alias
        self._timer = timer
        self._upgrade = upgrade
        self._attribution = attribution
        self._prepared = False

    async def prepare(self) -> None:
        """Create MongoDB's indexes and the search index behind the alias when missing.

        With ``upgrade`` (the service), also bring a catalogue of an older version to the current
        one first (``CatalogueUpgrade``). Runs before the first batch, and again after Elasticsearch
        reported the alias missing (e.g. it lost its data): writes then go to a fresh index, and
        ``reindex`` refills it.
        """
        await self._mongo.prepare()
        try:
            if self._upgrade is not None:
                await self._upgrade.run()
            else:
                await ensure_search_index(self._es, self._alias)
            if self._attribution is not None:
                await self._attribution.prepare()
        except (TransportError, ApiError) as exc:
            raise es_errors.unavailable(exc) from exc
        except PyMongoError as exc:
            raise mongo_errors.unavailable(exc) from exc
        self._prepared = True

    async def write_batch(self, events: Sequence[VideoEvent]) -> list[str | None]:
        """Store the events in MongoDB, then mirror the stored documents into Elasticsearch.

        Returns, per event, None when both stores hold it or the reason a store rejected it.
        Raises StoreUnavailableError when either store is unreachable or overloaded; nothing is
        lost then, because the caller has not acknowledged the messages.
        """
        if not events:
            return []
        if not self._prepared:
            await self.prepare()
        now = truncate_to_ms(utc_now())
        started = time.perf_counter()
        text_matches = await self._match(events) if self._attribution is not None else None
        written = await self._mongo.write(events, now, text_matches)
        docs = list(written.inserted.values()) + await self._mongo.read_back(written.updated)
        search_started = time.perf_counter()
        self._time(MONGODB, search_started - started)
        search_rejected = await self._index(docs)
        self._time(es_errors.ELASTICSEARCH, time.perf_counter() - search_started)
        return [written.rejected.get(i) or search_rejected.get(e.video_id) for i, e in enumerate(events)]

    async def write_removals(self, removals: Sequence[VideoRemoved]) -> list[str | None]:
        """Mark the videos removed in MongoDB (``removal.mark_removed``), then copy their documents to
        Elasticsearch.

        Returns, per removal, None when both stores hold its outcome (applied, or changing nothing by
        the later-wins rule) or the reason a store rejected it; raises StoreUnavailableError like
        ``write_batch``.
        """
        if not removals:
            return []
        if not self._prepared:
            await self.prepare()
        now = truncate_to_ms(utc_now())
        started = time.perf_counter()
        docs, rejected = await mark_removed(self._db, removals, now)
        search_started = time.perf_counter()
        self._time(MONGODB, search_started - started)
        search_rejected = await self._index(docs)
        self._time(es_errors.ELASTICSEARCH, time.perf_counter() - search_started)
        return [rejected.get(i) or search_rejected.get(r.video_id) for i, r in enumerate(removals)]

    async def _match(self, events: Sequence[VideoEvent]) -> dict[int, set[str]]:
        """By event position, the configured queries the channel-found events match."""
        assert self._attribution is not None
        try:
            return await self._attribution.match(events)
        except StoreUnavailableError:
            self._prepared = False  # the percolator index may be gone with Elasticsearch's data
            raise

    async def _index(self, docs: list[dict[str, Any]]) -> dict[str, str]:
        try:
            return await bulk_index(self._es, self._alias, docs, require_alias=True)
        except StoreUnavailableError as exc:
            if es_errors.ALIAS_MISSING in str(exc):
                self._prepared = False
            raise

    def _time(self, store: str, seconds: float) -> None:
        if self._timer is not None:
            self._timer(store, seconds)
