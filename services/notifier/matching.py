"""``StoredEventMatcher``: one stored event's videos matched against the saved searches and queued.

For each "videos stored" event, in order: wait until the percolator index holds every saved search
written by the event's ``stored_at`` (``SavedSearchSync.wait_synced``); read the videos from MongoDB
(the system of record), leaving out those YouTube deleted (``removed_at`` set: a removed video is
never delivered); percolate them in one request; keep the matches of videos first seen at or
after the saved search's ``created_at`` (older videos are never delivered) and, for a
``published_within`` filter, published within that span before ``stored_at``; record them
(``MatchStore``: a video is delivered at most once per saved search); publish one
``DeliveryRequest`` per match to deliver and wait for RabbitMQ's confirms; mark them queued. The
event is acknowledged by the caller only after all that, so a crash anywhere redelivers it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any, Protocol

from prometheus_client import Histogram
from pymongo.asynchronous.database import AsyncDatabase

from services.common.catalogue import REMOVED_AT_FIELD, VIDEOS_COLLECTION
from services.common.stored_events import VideosStored
from services.common.timefmt import to_epoch_ms, utc_now
from services.common.video_shape import VIDEO_SOURCE_FIELDS, public_video
from services.notifier.deliveries import DeliveryRequest
from services.notifier.match_store import Match, MatchStore
from services.notifier.metrics import NotifierMetrics
from services.notifier.saved_search_index import SavedSearchPercolator
from services.notifier.saved_search_sync import SavedSearchSync

logger = logging.getLogger(__name__)

_PROJECTION = {"_id": 0, "first_seen_at": 1, **{name: 1 for name in VIDEO_SOURCE_FIELDS}}


class DeliveryQueue(Protocol):
    async def publish(self, requests: Sequence[DeliveryRequest]) -> None:
        """Returns once the broker confirmed every request; raises if it did not."""
        ...


class StoredEventMatcher:
    def __init__(
        self,
        *,
        db: AsyncDatabase[dict[str, Any]],
        percolator: SavedSearchPercolator,
        sync: SavedSearchSync,
        matches: MatchStore,
        deliveries: DeliveryQueue,
        metrics: NotifierMetrics,
    ) -> None:
        self._videos = db[VIDEOS_COLLECTION]
        self._percolator = percolator
        self._sync = sync
        self._matches = matches
        self._deliveries = deliveries
        self._metrics = metrics

    async def handle(self, event: VideosStored) -> int:
        """Match and queue the event's videos; returns how many deliveries were queued."""
        stage = self._metrics.stage_seconds
        with _timed(stage.labels("wait_synced")):
            await self._sync.wait_synced(event.stored_at)
        wanted = list(dict.fromkeys(event.video_ids))
        # None matches a missing removed_at as well as a null one.
        live = {"video_id": {"$in": wanted}, REMOVED_AT_FIELD: None}
        with _timed(stage.labels("read")):
            docs = [doc async for doc in self._videos.find(live, _PROJECTION)]
        started = time.perf_counter()
        hits = await self._percolator.percolate(docs)
        elapsed = time.perf_counter() - started
        self._metrics.percolate_seconds.observe(elapsed)
        stage.labels("percolate").observe(elapsed)
        self._metrics.videos_percolated.inc(len(docs))
        stored_at_ms = to_epoch_ms(event.stored_at)
        found: list[tuple[Match, dict[str, Any]]] = []
        for hit in hits:
            created_at_ms = to_epoch_ms(hit.created_at)
            for slot in hit.slots:
                doc = docs[slot]
                first_seen = doc.get("first_seen_at")
                if first_seen is None or to_epoch_ms(first_seen) < created_at_ms:
                    continue  # the video existed before the saved search
                within = hit.published_within_ms
                if within is not None and to_epoch_ms(doc["published_at"]) < stored_at_ms - within:
                    continue
                found.append((Match(hit.saved_search_id, doc["video_id"]), doc))
        with _timed(stage.labels("record")):
            to_deliver, repeated = await self._matches.record([match for match, _ in found], utc_now())
        self._metrics.matches.labels("repeated").inc(repeated)
        if not to_deliver:
            return 0
        videos = {doc["video_id"]: doc for _, doc in found}
        requests = [
            DeliveryRequest.for_match(
                match.saved_search_id, match.video_id, public_video(videos[match.video_id]), event.stored_at
            )
            for match in to_deliver
        ]
        with _timed(stage.labels("publish")):
            await self._deliveries.publish(requests)
        with _timed(stage.labels("mark_queued")):
            await self._matches.mark_queued(to_deliver, utc_now())
        self._metrics.matches.labels("queued").inc(len(to_deliver))
        logger.debug(
            "deliveries queued",
            extra={"videos": len(docs), "deliveries": len(to_deliver), "lag_seconds": _lag_seconds(event)},
        )
        return len(to_deliver)


@contextlib.contextmanager
def _timed(histogram: Histogram) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        histogram.observe(time.perf_counter() - started)


def _lag_seconds(event: VideosStored) -> float:
    return round((utc_now() - event.stored_at) / timedelta(seconds=1), 3)
