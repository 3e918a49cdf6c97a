"""The typed keys under which the app keeps what its handlers share (settings, stores, codec, cache...)."""

from __future__ import annotations

from aiohttp import web

from services.api.admin_store import SourcesAdmin
from services.api.cursors import CursorCodec
from services.api.metrics import ApiMetrics
from services.api.page_cache import PageCache
from services.api.pipeline_status import QueueProbe
from services.api.saved_search_admin import SavedSearchesAdmin
from services.api.settings import Settings
from services.api.stores import Stores

SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", ApiMetrics)
CURSORS = web.AppKey("cursors", CursorCodec)
STORES = web.AppKey("stores", Stores)
QUEUE_PROBE = web.AppKey("queue_probe", QueueProbe)
PAGE_CACHE = web.AppKey("page_cache", PageCache)
SOURCES_ADMIN = web.AppKey("sources_admin", SourcesAdmin)
SAVED_SEARCHES_ADMIN = web.AppKey("saved_searches_admin", SavedSearchesAdmin)
