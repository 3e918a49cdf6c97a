"""/api/v1/feeds/saved/{feed_id}.atom: a saved search's public feed, the newest videos of its filters.

The feed id is the only key (unguessable, 192 random bits; anyone holding it may read the feed),
looked up at every request so a replaced (rotate-feed) or removed one answers 404 at once. The
document is the video list's feed (services/api/handlers/feeds.py) of the saved search's filters,
with the same cache headers, titled with the saved search's name; its Atom id is the saved
search's, so a reader keeps its entries across a new feed id.
"""

from __future__ import annotations

from aiohttp import web
from pymongo.errors import PyMongoError

from services.api.appkeys import SAVED_SEARCHES_ADMIN, SETTINGS
from services.api.atom import FeedHead
from services.api.cursors import query_fingerprint
from services.api.errors import ApiError, unavailable
from services.api.handlers.feeds import feed_title, filter_pairs, public_base, serve_feed, with_query
from services.api.saved_search_models import SavedFeedPathParams

SAVED_FEED_PATH = "/api/v1/feeds/saved/{feed_id}.atom"
_TAG_PREFIX = "tag:tubewatch,2026:feeds/saved/"


def saved_feed_path(feed_id: str) -> str:
    return SAVED_FEED_PATH.format(feed_id=feed_id)


async def saved_search_feed(request: web.Request, params: SavedFeedPathParams) -> web.Response:
    try:
        search = await request.app[SAVED_SEARCHES_ADMIN].by_feed(params.feed_id)
    except PyMongoError as exc:
        raise unavailable(f"the saved searches cannot be read now ({type(exc).__name__})") from None
    if search is None:
        raise ApiError(404, "not_found", "no saved search has this feed (it may have been replaced)", "feed_id")
    filters = search.filters.filters()
    base = public_base(request, request.app[SETTINGS])
    described = feed_title(filters).removeprefix("tubewatch: ")
    head = FeedHead(
        feed_id=_TAG_PREFIX + search.id,
        title=f"tubewatch: {search.name} ({described})",
        self_url=base + saved_feed_path(search.feed_id),
        alternate_url=with_query(base + "/", filter_pairs(filters)),
    )
    key = query_fingerprint(
        {"saved_feed": search.feed_id, "name": search.name, "feed": filters.canonical(), "base": base}
    )
    return await serve_feed(request, filters, head, key)
