"""The route table: every endpoint of the API, declared once for the router and the OpenAPI document."""

from __future__ import annotations

from typing import Any

from services.api import models
from services.api.atom import ATOM_CONTENT_TYPE
from services.api.handlers.channels import list_channels
from services.api.handlers.feeds import FEED_PATH, videos_feed
from services.api.handlers.histogram import histogram
from services.api.handlers.pipeline import list_queries, status
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

_OBJECT = {"type": "object"}
_FEED_VALIDATORS = {
    "ETag": "The feed's hash; send it back in If-None-Match to get a 304 while the feed is the same.",
    "Last-Modified": "When the newest entry was published; If-Modified-Since works with it too.",
    "Cache-Control": "How long the feed stays fresh: the index's refresh interval.",
}

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
        Reply(
            schema={"type": "string"},
            content_type=ATOM_CONTENT_TYPE,
            description="An Atom 1.0 document (RFC 4287), UTF-8",
            served_by=True,
            headers=_FEED_VALIDATORS,
        ),
        FeedParams,
        errors=(400, 500, 503),
        other_replies={
            304: Reply(
                schema={"type": "string", "maxLength": 0},
                content_type=ATOM_CONTENT_TYPE,
                description="Not modified: the If-None-Match or If-Modified-Since of the request is still this feed",
                served_by=True,
                headers=_FEED_VALIDATORS,
            )
        },
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

ROUTES = API_ROUTES + SERVICE_ROUTES
