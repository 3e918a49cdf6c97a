"""A page of a listing: what the stores are asked (PageRequest) and what they answer (Page)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.common.video_query import Filters, SortOrder

# Counting matches stops here (the response then says relation "gte"): exact totals of large result
# sets would cost a visit of every match on every page.
TOTAL_EXACT_UP_TO = 1000


class PitExpiredError(Exception):
    """The point-in-time of a relevance walk is gone (kept alive too long, or Elasticsearch restarted)."""


@dataclass(frozen=True)
class PageRequest:
    filters: Filters
    sort: SortOrder
    limit: int
    snapshot_ms: int
    search_after: tuple[Any, ...] | None = None  # None on the first page
    pit_id: str | None = None

    @property
    def first_page(self) -> bool:
        return self.search_after is None


@dataclass
class Page:
    items: list[dict[str, Any]]
    total: dict[str, Any]
    next_search_after: list[Any] | None  # sort values of the last item when another page exists
    pit_id: str | None = None
