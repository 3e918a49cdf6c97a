"""The fetcher's settings, and the API keys they configure, each with the Cloud project it spends."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from services.common.poll_plan import Scheduling
from services.common.redact import key_fingerprint
from services.common.settings import (
    AmqpSettings,
    FetcherPortSettings,
    LoggingSettings,
    MongoSettings,
    YouTubeSettings,
)
from services.common.sources import SourcesSettings


@dataclass(frozen=True)
class KeyEntry:
    """One configured API key and the Cloud project whose quota it spends."""

    secret: str
    project: str
    fingerprint: str

    def __repr__(self) -> str:  # never show the secret, even in a debugger or a traceback
        return f"KeyEntry(project={self.project!r}, fingerprint={self.fingerprint!r})"


def parse_key_entries(entries: list[str]) -> list[KeyEntry]:
    """``label:key`` puts keys of one Cloud project together; an unlabelled key is its own project.

    Keys never contain ``:``. The same key listed twice counts once. Two keys with the same last
    four characters are refused: their fingerprints, which name them everywhere, would collide.
    """
    parsed: dict[str, KeyEntry] = {}
    for entry in entries:
        label, sep, secret = entry.rpartition(":")
        if sep and (not label or not secret):
            raise ValueError("an entry written label:key needs both a label and a key")
        fingerprint = key_fingerprint(secret)
        project = label or f"key {fingerprint}"
        known = parsed.get(secret)
        if known is not None:
            if known.project != project:
                raise ValueError(f"key {fingerprint} is listed under two projects")
            continue
        if any(other.fingerprint == fingerprint for other in parsed.values()):
            raise ValueError(f"two keys end in the same four characters ({fingerprint})")
        parsed[secret] = KeyEntry(secret=secret, project=project, fingerprint=fingerprint)
    return list(parsed.values())


def check_callback_url(url: str) -> str:
    """The push endpoint's base URL: https, or plain http only on a loopback address (tests, local runs)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an https URL (the base the hub reaches this fetcher at)")
    if parts.query or parts.fragment:
        raise ValueError("expected a base URL without a query or fragment")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise ValueError("plain http is accepted only for a loopback address; use https")
    return url


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Settings(YouTubeSettings, SourcesSettings, AmqpSettings, MongoSettings, FetcherPortSettings, LoggingSettings):
    """SEARCH_QUERIES and FOLLOW_CHANNELS (SourcesSettings) seed the sources in MongoDB as
    SOURCES_FROM_ENV says; the fetcher then follows what the sources say."""

    # First start without a watermark: look this far back.
    initial_lookback_seconds: float = Field(default=3600, ge=0)
    # Bounds a burst: at most this many search pages per poll of a query.
    max_pages_per_cycle: int = Field(default=20, ge=1, le=100)
    youtube_request_timeout_seconds: float = Field(default=15, gt=0)
    # search.list calls a Cloud project may make per Pacific-time day (keys of one project share it).
    youtube_search_calls_per_day: int = Field(default=100, ge=1)
    # Short-term errors (5xx, rate limits, timeouts) are retried this many times per request, with
    # capped exponential backoff and jitter.
    youtube_retries: int = Field(default=3, ge=0, le=10)
    youtube_retry_max_seconds: float = Field(default=8, gt=0)
    # Every N polls of a query a sweep re-reads the recent window for videos that search indexed late.
    late_sweep_every: int = Field(default=6, ge=1)
    # How late a video may show up in search and still be found (seconds below the watermark).
    overlap_seconds: float = Field(default=600, ge=0)
    # The leader lease: a fetcher that stopped renewing for this long is replaced.
    lease_ttl_seconds: float = Field(default=15, ge=1)
    # Every query is polled at least this often while the budget allows (the budget wins).
    max_query_interval_seconds: float = Field(default=3600, gt=0)
    # rate: each query polled at a rate proportional to the square root of its upload rate;
    # equal: every query at the same interval.
    query_scheduling: Scheduling = "rate"
    # Auto-follow: the channels whose videos search found most often over the window (0: none),
    # beside FOLLOW_CHANNELS; re-chosen hourly (services/fetcher/follows.py).
    auto_follow_channels: int = Field(default=20, ge=0)
    auto_follow_window_days: float = Field(default=7, gt=0)

    # Units (channels.list, playlistItems.list, videos.list: 1 a call) a Cloud project may spend per
    # Pacific-time day, and the share of them channel reads leave to videos.list.
    youtube_units_per_day: int = Field(default=10_000, ge=1)
    units_reserve_for_enrichment: float = Field(default=0.2, ge=0, lt=1)
    # Every followed channel is read at least this often while the units allow (the budget wins),
    # and never more often than the minimum.
    max_channel_interval_seconds: float = Field(default=1800, gt=0)
    min_channel_interval_seconds: float = Field(default=30, gt=0)

    # WebSub push (services/fetcher/websub_*.py): off while WEBSUB_CALLBACK_URL is unset. It is the
    # base URL at which the hub reaches this fetcher; each subscription's path is under it.
    websub_callback_url: str | None = None
    websub_hub_url: str = "https://pubsubhubbub.appspot.com/subscribe"
    websub_lease_seconds: int = Field(default=432_000, ge=60, le=864_000)
    # Pushes a channel may have confirmed by videos.list per hour (a hub's flood of old videos).
    websub_max_confirms_per_channel_hour: int = Field(default=30, ge=1)

    @field_validator("websub_callback_url", mode="before")
    @classmethod
    def _callback_url(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str):
            return value
        return check_callback_url(value.strip()).rstrip("/")

    @field_validator("websub_hub_url")
    @classmethod
    def _hub_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("expected an http(s) URL of a WebSub hub")
        return value

    @field_validator("search_queries")
    @classmethod
    def _queries_not_empty(cls, value: list[str]) -> list[str]:
        # Overrides SearchQuerySettings' check of the same name: the queries the fetcher searches
        # are the sources in MongoDB, so an empty SEARCH_QUERIES seeds none and is no error.
        return value

    @field_validator("youtube_api_keys")
    @classmethod
    def _keys_parse(cls, value: list[str]) -> list[str]:
        parse_key_entries(value)
        return value

    @property
    def key_entries(self) -> list[KeyEntry]:
        return parse_key_entries(self.youtube_api_keys)
