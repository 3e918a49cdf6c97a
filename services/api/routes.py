"""The route table: every endpoint of the API, declared once for the router and the OpenAPI document."""

from __future__ import annotations

from typing import Any

from services.api import admin_models, models
from services.api.admin_models import (
    AuditParams,
    ChannelCreate,
    ChannelPatch,
    ChannelPathParams,
    PlanParams,
    QueryCreate,
    QueryPatch,
    QueryPathParams,
)
from services.api.atom import ATOM_CONTENT_TYPE
from services.api.handlers.admin_audit import list_audit
from services.api.handlers.admin_channels import (
    follow_admin_channel,
    list_admin_channels,
    patch_admin_channel,
    remove_admin_channel,
)
from services.api.handlers.admin_plan import what_if_plan
from services.api.handlers.admin_queries import (
    add_admin_query,
    get_admin_query,
    list_admin_queries,
    patch_admin_query,
    remove_admin_query,
)
from services.api.handlers.admin_saved_searches import (
    add_saved_search,
    get_saved_search,
    list_saved_searches,
    patch_saved_search,
    remove_saved_search,
    rotate_saved_search_feed,
    rotate_saved_search_secret,
)
from services.api.handlers.channels import list_channels
from services.api.handlers.feeds import FEED_PATH, videos_feed
from services.api.handlers.histogram import histogram
from services.api.handlers.pipeline import list_queries, status
from services.api.handlers.saved_feeds import SAVED_FEED_PATH, saved_search_feed
from services.api.handlers.videos import get_video, list_videos
from services.api.params import (
    FEED_SIZE,
    ChannelListParams,
    FeedParams,
    HistogramParams,
    NoParams,
    VideoListParams,
    VideoPathParams,
)
from services.api.routing import Reply, Route
from services.api.saved_search_models import (
    AdminSavedSearch,
    AdminSavedSearchList,
    AdminSavedSearchWithSecret,
    SavedFeedPathParams,
    SavedSearchCreate,
    SavedSearchPatch,
    SavedSearchPathParams,
)

_OBJECT = {"type": "object"}
_FEED_VALIDATORS = {
    "ETag": "The feed's hash; send it back in If-None-Match to get a 304 while the feed is the same.",
    "Last-Modified": "When the newest entry was published; If-Modified-Since works with it too.",
    "Cache-Control": "How long the feed stays fresh: the index's refresh interval.",
}
_FEED_REPLY = Reply(
    schema={"type": "string"},
    content_type=ATOM_CONTENT_TYPE,
    description="An Atom 1.0 document (RFC 4287), UTF-8",
    served_by=True,
    headers=_FEED_VALIDATORS,
)
_FEED_NOT_MODIFIED = Reply(
    schema={"type": "string", "maxLength": 0},
    content_type=ATOM_CONTENT_TYPE,
    description="Not modified: the If-None-Match or If-Modified-Since of the request is still this feed",
    served_by=True,
    headers=_FEED_VALIDATORS,
)

API_ROUTES: tuple[Route[Any], ...] = (
    Route(
        "GET",
        "/api/v1/videos",
        list_videos,
        "List and search videos",
        Reply(models.VideoPage, served_by=True),
        VideoListParams,
        errors=(400, 410, 500, 503),
    ),
    Route(
        "GET",
        "/api/v1/videos/{video_id}",
        get_video,
        "One video, from the system of record",
        Reply(models.Video, served_by=True),
        VideoPathParams,
        errors=(400, 404, 500, 503),
    ),
    Route(
        "GET",
        FEED_PATH,
        videos_feed,
        f"The {FEED_SIZE} newest videos matching the filters of the video list, as an Atom 1.0 feed",
        _FEED_REPLY,
        FeedParams,
        errors=(400, 500, 503),
        other_replies={304: _FEED_NOT_MODIFIED},
    ),
    Route(
        "GET",
        SAVED_FEED_PATH,
        saved_search_feed,
        f"A saved search's feed: the {FEED_SIZE} newest videos matching its filters, as an Atom 1.0 feed",
        _FEED_REPLY,
        SavedFeedPathParams,
        errors=(400, 404, 500, 503),
        other_replies={304: _FEED_NOT_MODIFIED},
    ),
    Route(
        "GET",
        "/api/v1/channels",
        list_channels,
        "Channels with their video counts, most videos first",
        Reply(models.ChannelList, served_by=True),
        ChannelListParams,
        errors=(400, 500, 503),
    ),
    Route(
        "GET",
        "/api/v1/histogram",
        histogram,
        "Upload counts per UTC hour or day, with the filters of the video list",
        Reply(models.Histogram, served_by=True),
        HistogramParams,
        errors=(400, 500, 503),
    ),
    Route(
        "GET",
        "/api/v1/queries",
        list_queries,
        "The configured search queries and their progress",
        Reply(models.QueryList),
        NoParams,
    ),
    Route("GET", "/api/v1/status", status, "The pipeline at a glance", Reply(models.PipelineStatus), NoParams),
)

_ADMIN = "/api/v1/admin"
_ADMIN_TAGS = ("admin",)
# Every admin route: 401 without a valid token, 404 while ADMIN_TOKENS is unset, 429 after repeated failures.
_ADMIN_ERRORS = (400, 401, 404, 429, 500, 503)
_WRITE_ERRORS = (*_ADMIN_ERRORS, 409, 413, 415)
_NO_CONTENT = Reply(status=204, description="Done; no body")

ADMIN_ROUTES: tuple[Route[Any], ...] = (
    Route(
        "GET",
        f"{_ADMIN}/queries",
        list_admin_queries,
        "The followed search queries with their statistics",
        Reply(admin_models.AdminQueryList),
        NoParams,
        errors=_ADMIN_ERRORS,
        tags=_ADMIN_TAGS,
        admin=True,
    ),
    Route(
        "POST",
        f"{_ADMIN}/queries",
        add_admin_query,
        "Follow a search query (the fetcher starts searching it within seconds)",
        Reply(admin_models.AdminQuery, status=201, description="Created"),
        NoParams,
        body=QueryCreate,
        errors=_WRITE_ERRORS,
        tags=_ADMIN_TAGS,
        admin=True,
    ),
    Route(
        "GET",
        f"{_ADMIN}/queries/{{query_id}}",
        get_admin_query,
        "One followed query",
        Reply(admin_models.AdminQuery),
        QueryPathParams,
        errors=_ADMIN_ERRORS,
        tags=_ADMIN_TAGS,
        admin=True,
    ),
    Route(
        "PATCH",
        f"{_ADMIN}/queries/{{query_id}}",
        patch_admin_query,
        "Pause, resume or reweight a query (a JSON merge patch of weight and paused)",
        Reply(admin_models.AdminQuery),
        QueryPathParams,
        body=QueryPatch,
        errors=_WRITE_ERRORS,
        tags=_ADMIN_TAGS,
        admin=True,
    ),
    Route(
        "DELETE",
        f"{_ADMIN}/queries/{{query_id}}",
        remove_admin_query,
        "Stop following a query (its videos stay)",
        _NO_CONTENT,
        QueryPathParams,
        errors=_WRITE_ERRORS,
        tags=_ADMIN_TAGS,
        admin=True,
    ),
    Route(
        "GET",
        f"{_ADMIN}/channels",
        list_admin_channels,
        "Followed channels, explicit and auto-followed, with why and how each is read",
        Reply(admin_models.AdminChannelList),
        NoParams,
        errors=_ADMIN_ERRORS,
        tags=_ADMIN_TAGS,
        admin=True,
    ),
    Route(
        "POST",
        f"{_ADMIN}/channels",
        follow_admin_channel,
        "Follow a channel explicitly",
        Reply(admin_models.AdminChannel, status=201, description="Followed"),
        NoParams,
        body=ChannelCreate,
        errors=_WRITE_ERRORS,
        other_replies={200: Reply(admin_models.AdminChannel, description="Followed explicitly already")},
        tags=_ADMIN_TAGS,
        admin=True,
    ),
    Route(
        "PATCH",
        f"{_ADMIN}/channels/{{channel_id}}",
        patch_admin_channel,
        "Pause, pin or exclude a channel (a JSON merge patch of paused, pinned and excluded)",
        Reply(admin_models.AdminChannel),
        ChannelPathParams,
        body=ChannelPatch,
        errors=_WRITE_ERRORS,
        tags=_ADMIN_TAGS,
        admin=True,
    ),
    Route(
        "DELETE",
        f"{_ADMIN}/channels/{{channel_id}}",
        remove_admin_channel,
        "Unfollow a channel: forget its explicit follow and flags (auto-follow alone decides again)",
        _NO_CONTENT,
        ChannelPathParams,
        errors=_WRITE_ERRORS,
        tags=_ADMIN_TAGS,
        admin=True,
    ),
    Route(
        "GET",
        f"{_ADMIN}/plan",
        what_if_plan,
        "What-if: every query's and channel's planned interval and mean delay now and after a change",
        Reply(admin_models.WhatIfPlan),
        PlanParams,
        errors=_ADMIN_ERRORS,
        tags=_ADMIN_TAGS,
        admin=True,
    ),
    Route(
        "GET",
        f"{_ADMIN}/saved-searches",
        list_saved_searches,
        "The saved searches, oldest first (no secrets)",
        Reply(AdminSavedSearchList),
        NoParams,
        errors=_ADMIN_ERRORS,
        tags=_ADMIN_TAGS,
        admin=True,
    ),
    Route(
        "POST",
        f"{_ADMIN}/saved-searches",
        add_saved_search,
        "Save a search: its filters get a feed and, with a webhook, deliveries of new matches",
        Reply(AdminSavedSearchWithSecret, status=201, description="Created; secret is the webhook's, shown this once"),
        NoParams,
        body=SavedSearchCreate,
        errors=_WRITE_ERRORS,
        tags=_ADMIN_TAGS,
        admin=True,
    ),
    Route(
        "GET",
        f"{_ADMIN}/saved-searches/{{saved_search_id}}",
        get_saved_search,
        "One saved search (no secrets)",
        Reply(AdminSavedSearch),
        SavedSearchPathParams,
        errors=_ADMIN_ERRORS,
        tags=_ADMIN_TAGS,
        admin=True,
    ),
    Route(
        "PATCH",
        f"{_ADMIN}/saved-searches/{{saved_search_id}}",
        patch_saved_search,
        "Rename, refilter, pause, resume, add or remove the webhook (a JSON merge patch; filters replaced whole)",
        Reply(AdminSavedSearchWithSecret, description="Changed; secret is set only when the patch added a webhook"),
        SavedSearchPathParams,
        body=SavedSearchPatch,
        errors=_WRITE_ERRORS,
        tags=_ADMIN_TAGS,
        admin=True,
    ),
    Route(
        "DELETE",
        f"{_ADMIN}/saved-searches/{{saved_search_id}}",
        remove_saved_search,
        "Remove a saved search: no more deliveries, its feed answers 404",
        _NO_CONTENT,
        SavedSearchPathParams,
        errors=_WRITE_ERRORS,
        tags=_ADMIN_TAGS,
        admin=True,
    ),
    Route(
        "POST",
        f"{_ADMIN}/saved-searches/{{saved_search_id}}/rotate-secret",
        rotate_saved_search_secret,
        "A new webhook signing secret (shown this once); the previous ones still sign for 24 hours",
        Reply(AdminSavedSearchWithSecret),
        SavedSearchPathParams,
        errors=_WRITE_ERRORS,
        tags=_ADMIN_TAGS,
        admin=True,
    ),
    Route(
        "POST",
        f"{_ADMIN}/saved-searches/{{saved_search_id}}/rotate-feed",
        rotate_saved_search_feed,
        "A new feed id: the old feed URL answers 404 from now on",
        Reply(AdminSavedSearch),
        SavedSearchPathParams,
        errors=_WRITE_ERRORS,
        tags=_ADMIN_TAGS,
        admin=True,
    ),
    Route(
        "GET",
        f"{_ADMIN}/audit",
        list_audit,
        "Every change of the sources and the saved searches, newest first",
        Reply(admin_models.AuditPage),
        AuditParams,
        errors=_ADMIN_ERRORS,
        tags=_ADMIN_TAGS,
        admin=True,
    ),
)

# Every service's own routes (services/common/service_app.py adds them to the router).
SERVICE_ROUTES: tuple[Route[Any], ...] = (
    Route(
        "GET",
        "/healthz",
        None,
        "Liveness",
        Reply(schema={"type": "object", "properties": {"status": {"const": "ok"}}}),
        errors=(),
    ),
    Route(
        "GET",
        "/readyz",
        None,
        "Readiness, per dependency (Elasticsearch down only degrades)",
        Reply(schema=_OBJECT),
        errors=(),
        other_replies={503: Reply(schema=_OBJECT, description="Not ready")},
    ),
    Route(
        "GET",
        "/metrics",
        None,
        "Prometheus metrics",
        Reply(schema={"type": "string"}, content_type="text/plain"),
        errors=(),
    ),
)

ROUTES = API_ROUTES + ADMIN_ROUTES + SERVICE_ROUTES
