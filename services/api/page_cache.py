"""A micro-cache of whole list responses and feeds: a burst of identical requests costs one search.

Entries live ``ttl`` seconds (default 1 s, Elasticsearch's refresh interval: a newer answer could
not show more than one second's news anyway). Only Elasticsearch-served date-ordered pages are kept;
relevance pages carry a point-in-time and degraded pages should not outlive the outage.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

MAX_ENTRIES = 4096
# Fingerprint of the query, cursor, limit: one page of one walk (a feed: its own fingerprint, no cursor).
PageKey = tuple[str, str | None, int]


@dataclass(frozen=True)
class CachedPage:
    expires_at: float
    body: bytes
    served_by: str
    headers: Mapping[str, str] = field(default_factory=dict)  # what the answer carries besides (a feed's ETag)


class PageCache:
    def __init__(self, ttl_seconds: float) -> None:
        self._ttl = ttl_seconds
        self._entries: dict[PageKey, CachedPage] = {}

    @property
    def enabled(self) -> bool:
        return self._ttl > 0

    def lookup(self, key: PageKey, sort: str) -> CachedPage | None:
        """The kept answer to this page, when pages of this order are kept and one is still fresh."""
        if not self.enabled or sort == "relevance":
            return None
        return self.get(key)

    def offer(
        self, key: PageKey, body: bytes, served_by: str, sort: str, headers: Mapping[str, str] | None = None
    ) -> None:
        """Keep this answer if the policy allows: date-ordered pages served by Elasticsearch."""
        if self.enabled and served_by == "elasticsearch" and sort != "relevance":
            self.put(key, body, served_by, headers)

    def get(self, key: PageKey) -> CachedPage | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at < time.monotonic():
            del self._entries[key]
            return None
        return entry

    def put(self, key: PageKey, body: bytes, served_by: str, headers: Mapping[str, str] | None = None) -> None:
        now = time.monotonic()
        # The TTL is the same for every entry, so insertion order is expiry order: expired pages are
        # dropped from the front as new ones arrive (cursor walks make many one-off keys, which would
        # otherwise sit in memory until the cache filled up).
        for stale in list(itertools.takewhile(lambda k: self._entries[k].expires_at < now, self._entries)):
            del self._entries[stale]
        self._entries.pop(key, None)  # re-inserted at the end, keeping the order
        if len(self._entries) >= MAX_ENTRIES:
            del self._entries[next(iter(self._entries))]
        self._entries[key] = CachedPage(now + self._ttl, body, served_by, dict(headers or {}))

    def __len__(self) -> int:
        return len(self._entries)
