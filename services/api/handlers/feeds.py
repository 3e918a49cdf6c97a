"""/api/v1/feeds/videos.atom: the newest videos of any filter of the video list, as an Atom feed.

A feed is the FEED_SIZE newest matches, from the same stores and query as the list's first page.
Its id, title and links are made from the filters alone (in one canonical order), so the same
filters give the same document until a video changes; the ETag is that document's hash. Feeds go
through the micro-cache like list pages, keyed by the filters and the public address.
"""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import quote, urlencode

from aiohttp import web

from services.api.appkeys import METRICS, PAGE_CACHE, SETTINGS, STORES
from services.api.atom import ATOM_CONTENT_TYPE, FeedHead, atom_feed, feed_updated
from services.api.conditional import is_fresh, not_modified, validator_headers
from services.api.cursors import query_fingerprint
from services.api.errors import unavailable
from services.api.pages import PageRequest
from services.api.params import FEED_SIZE, FeedParams
from services.api.settings import Settings
from services.common.errors import StoreUnavailableError
from services.common.timefmt import format_duration, format_epoch_ms, parse_rfc3339, to_epoch_ms, utc_now
from services.common.video_query import Filters, SortOrder

FEED_PATH = "/api/v1/feeds/videos.atom"
_SORT: SortOrder = "-published_at"
# Elasticsearch makes new videos searchable once a second (its refresh interval, which the index
# keeps); a feed reader asking more often could not see anything newer.
INDEX_REFRESH_SECONDS = 1
CACHE_CONTROL = f"public, max-age={INDEX_REFRESH_SECONDS}"
# Tag URIs (RFC 4151) of feeds: the same filters, the same id, whatever address served them.
_TAG_PREFIX = "tag:tubewatch,2026:feeds/videos/"
# A Host header fit to start a link with: a name or IPv4 address, or a bracketed IPv6 one; a port.
_HOST = re.compile(r"(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?")
_SPAN_UNITS = (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))
_MATCHED_WORDS = {"search": "confirmed by its search", "text": "matched by text, not by its search"}
_FOUND_BY_WORDS = {"search": "found by search", "channel": "found in followed channels' uploads"}


def public_base(request: web.Request, settings: Settings) -> str:
    """API_PUBLIC_URL, else the scheme and Host of the request (a malformed Host: the listening address)."""
    if settings.api_public_url is not None:
        return settings.api_public_url
    host = request.host if _HOST.fullmatch(request.host) else f"{settings.api_host}:{settings.api_port}"
    return f"{request.scheme}://{host}"


def filter_pairs(filters: Filters) -> list[tuple[str, str]]:
    """The filters as query parameters, in one canonical order and spelling (the API's and the dashboard's)."""
    pairs: list[tuple[str, str]] = []
    if filters.q is not None:
        pairs.append(("q", filters.q))
    pairs += [("channel_id", channel) for channel in sorted(set(filters.channel_ids))]
    if filters.published_after_ms is not None:
        pairs.append(("published_after", format_epoch_ms(filters.published_after_ms)))
    if filters.published_before_ms is not None:
        pairs.append(("published_before", format_epoch_ms(filters.published_before_ms)))
    if filters.published_within_ms is not None:
        pairs.append(("published_within", format_duration(timedelta(milliseconds=filters.published_within_ms))))
    if filters.query is not None:
        pairs.append(("query", filters.query))
    if filters.matched is not None:
        pairs.append(("matched", filters.matched))
    if filters.found_by is not None:
        pairs.append(("found_by", filters.found_by))
    return pairs


def with_query(url: str, pairs: list[tuple[str, str]]) -> str:
    return f"{url}?{urlencode(pairs, quote_via=quote)}" if pairs else url


def _span(ms: int) -> str:
    """A span in words: 1 day, 6 hours, 1 day 12 hours."""
    seconds, words = ms // 1000, []
    for unit, size in _SPAN_UNITS:
        count, seconds = divmod(seconds, size)
        if count:
            words.append(f"{count} {unit}{'s' if count > 1 else ''}")
    return " ".join(words)


def feed_title(filters: Filters) -> str:
    """What the feed holds, in words: "tubewatch: newest videos matching “cricket”, from channel UC…"."""
    parts: list[str] = []
    if filters.q is not None:
        parts.append(f"matching “{filters.q}”")
    channels = sorted(set(filters.channel_ids))
    if channels:
        parts.append(f"from channel{'s' if len(channels) > 1 else ''} {', '.join(channels)}")
    if filters.query is not None:
        parts.append(f"found by the search query “{filters.query}”")
    if filters.matched is not None:
        parts.append(_MATCHED_WORDS[filters.matched])
    if filters.found_by is not None:
        parts.append(_FOUND_BY_WORDS[filters.found_by])
    if filters.published_within_ms is not None:
        parts.append(f"published in the last {_span(filters.published_within_ms)}")
    if filters.published_after_ms is not None:
        parts.append(f"published from {format_epoch_ms(filters.published_after_ms)}")
    if filters.published_before_ms is not None:
        parts.append(f"published until {format_epoch_ms(filters.published_before_ms)}")
    return " ".join(["tubewatch: newest videos", ", ".join(parts)]).strip()


def feed_head(filters: Filters, base: str) -> FeedHead:
    pairs = filter_pairs(filters)
    return FeedHead(
        feed_id=_TAG_PREFIX + query_fingerprint({"filters": filters.canonical()}),
        title=feed_title(filters),
        self_url=with_query(base + FEED_PATH, pairs),
        alternate_url=with_query(base + "/", pairs),
    )


async def videos_feed(request: web.Request, params: FeedParams) -> web.Response:
    filters = params.filters()
    base = public_base(request, request.app[SETTINGS])
    key = query_fingerprint({"feed": filters.canonical(), "base": base})
    return await serve_feed(request, filters, feed_head(filters, base), key)


async def serve_feed(request: web.Request, filters: Filters, head: FeedHead, key: str) -> web.Response:
    """The feed of the FEED_SIZE newest videos matching ``filters``, through the micro-cache under ``key``.

    ``key`` must change whenever the document would for the same videos: it holds the filters, the
    public address and whatever else ``head`` is made of.
    """
    cache = request.app[PAGE_CACHE]
    cache_key = (key, None, FEED_SIZE)
    cached = cache.lookup(cache_key, _SORT)
    if cached is not None:
        body, served_by, headers = cached.body, cached.served_by, dict(cached.headers)
    else:
        now_ms = to_epoch_ms(utc_now())
        page_request = PageRequest(filters.at(now_ms), _SORT, FEED_SIZE, now_ms)
        stores = request.app[STORES]
        try:
            page, served_by = await stores.with_fallback(
                "feed", lambda es: es.page(page_request), lambda mongo: mongo.page(page_request)
            )
        except StoreUnavailableError as exc:
            raise unavailable(f"no store can serve this feed now ({exc})") from None
        body = atom_feed(head, page.items)
        headers = validator_headers(body, parse_rfc3339(feed_updated(page.items)), CACHE_CONTROL)
        cache.offer(cache_key, body, served_by, _SORT, headers)
    request.app[METRICS].served.labels(served_by).inc()
    headers["X-Served-By"] = served_by
    if is_fresh(request, headers):
        return not_modified(headers)
    return web.Response(body=body, content_type=ATOM_CONTENT_TYPE, charset="utf-8", headers=headers)
