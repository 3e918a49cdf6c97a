"""The route table: every endpoint of the API, declared once for the router and the OpenAPI document."""

from __future__ import annotations

from typing import Any

from services.api import models
from services.api.handlers.channels import list_channels
from services.api.handlers.histogram import histogram
from services.api.handlers.pipeline import list_queries, status
from services.api.handlers.videos import get_video, list_videos
from services.api.params import ChannelListParams, HistogramParams, NoParams, VideoListParams, VideoPathParams
from services.api.routing import Reply, Route

_OBJECT = {"type": "object"}

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
