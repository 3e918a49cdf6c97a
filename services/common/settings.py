"""Settings shared by every service: one flat environment contract, composed per service.

Each sub-model reads its own variables; a service's ``Settings`` inherits the sub-models it
needs, so every variable has exactly one name and one default across the project.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]

_COMMON_CONFIG = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")


def split_list(value: object, pattern: str) -> list[str]:
    """Split a comma/whitespace separated environment value into clean, non-empty items."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        items = [str(v) for v in value]
    else:
        items = re.split(pattern, str(value))
    return [item.strip() for item in items if item.strip()]


class LoggingSettings(BaseSettings):
    model_config = _COMMON_CONFIG

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["console", "json"] = "console"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


class SearchQuerySettings(BaseSettings):
    """SEARCH_QUERIES: what the fetcher searches for, the API lists and the emulator streams."""

    model_config = _COMMON_CONFIG

    # Comma-separated (a query may hold spaces); NoDecode stops pydantic-settings from JSON-decoding it.
    search_queries: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["cricket"])

    @field_validator("search_queries", mode="before")
    @classmethod
    def _split_queries(cls, value: object) -> list[str]:
        return split_list(value, r",")

    @field_validator("search_queries")
    @classmethod
    def _queries_not_empty(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one search query is required")
        return value


class YouTubeSettings(SearchQuerySettings):
    model_config = _COMMON_CONFIG

    # Comma- or whitespace-separated; NoDecode stops pydantic-settings from JSON-decoding it.
    youtube_api_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    youtube_api_url: str = "https://www.googleapis.com/youtube/v3"
    poll_interval_seconds: float = Field(default=10.0, gt=0)

    @field_validator("youtube_api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> list[str]:
        return split_list(value, r"[,\s]+")

    @field_validator("youtube_api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return _require_scheme(value, ("http", "https")).rstrip("/")


class AmqpSettings(BaseSettings):
    model_config = _COMMON_CONFIG

    # One broker's URL, or a cluster's nodes' URLs comma-separated: a service connects to the first
    # that answers and, when its connection drops, reconnects through the list (clients.open_amqp).
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    amqp_exchange: str = Field(default="tubewatch.videos", min_length=1)
    amqp_queue: str = Field(default="tubewatch.videos.index", min_length=1)
    # The type of every durable queue the project declares (topology.queue_arguments): quorum queues
    # are replicated over a cluster's nodes. A queue cannot change type in place: to switch, drain
    # its messages, delete it and let the services declare it again.
    amqp_queue_type: Literal["classic", "quorum"] = "classic"

    @field_validator("amqp_url")
    @classmethod
    def _amqp_url(cls, value: str) -> str:
        return ",".join(_require_scheme_list(value, ("amqp", "amqps")))

    @property
    def amqp_urls(self) -> list[str]:
        return self.amqp_url.split(",")


class MongoSettings(BaseSettings):
    model_config = _COMMON_CONFIG

    mongodb_url: str = "mongodb://127.0.0.1:27017/?replicaSet=rs0"
    mongodb_database: str = Field(default="tubewatch", min_length=1, pattern=r"^[^/\\. \"$]+$")

    @field_validator("mongodb_url")
    @classmethod
    def _mongo_url(cls, value: str) -> str:
        return _require_scheme(value, ("mongodb", "mongodb+srv"))


class ElasticsearchSettings(BaseSettings):
    model_config = _COMMON_CONFIG

    # One node's URL, or several nodes' comma-separated: every client gets them all and sends a request
    # to another node when one does not answer (clients.open_elasticsearch).
    elasticsearch_url: str = "http://127.0.0.1:9200"
    # An alias over versioned indices (e.g. videos -> videos-v1).
    elasticsearch_index: str = Field(default="videos", pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    # Replicas of the catalogue's index and of the percolator indexes, set when they are created and
    # on the existing ones at start. Unset: 0 with one node in ELASTICSEARCH_URL (a replica could
    # never be allocated there), 1 with more.
    elasticsearch_replicas: int | None = Field(default=None, ge=0, le=16)

    @field_validator("elasticsearch_url")
    @classmethod
    def _es_url(cls, value: str) -> str:
        return ",".join(url.rstrip("/") for url in _require_scheme_list(value, ("http", "https")))

    @field_validator("elasticsearch_replicas", mode="before")
    @classmethod
    def _unset_replicas(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def elasticsearch_hosts(self) -> list[str]:
        return self.elasticsearch_url.split(",")

    @property
    def elasticsearch_replica_count(self) -> int:
        """ELASTICSEARCH_REPLICAS, or its default for the number of nodes listed."""
        if self.elasticsearch_replicas is not None:
            return self.elasticsearch_replicas
        return 0 if len(self.elasticsearch_hosts) == 1 else 1


class ApiSettings(BaseSettings):
    model_config = _COMMON_CONFIG

    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8080, ge=0, le=65535)


class EmulatorSettings(BaseSettings):
    model_config = _COMMON_CONFIG

    emulator_host: str = "127.0.0.1"
    emulator_port: int = Field(default=8090, ge=0, le=65535)


class FetcherPortSettings(BaseSettings):
    model_config = _COMMON_CONFIG

    fetcher_host: str = "127.0.0.1"
    fetcher_port: int = Field(default=8081, ge=0, le=65535)


class IndexerPortSettings(BaseSettings):
    model_config = _COMMON_CONFIG

    indexer_host: str = "127.0.0.1"
    indexer_port: int = Field(default=8082, ge=0, le=65535)


class NotifierPortSettings(BaseSettings):
    model_config = _COMMON_CONFIG

    notifier_host: str = "127.0.0.1"
    notifier_port: int = Field(default=8083, ge=0, le=65535)


class StackSettings(AmqpSettings, MongoSettings, ElasticsearchSettings, ApiSettings, EmulatorSettings, LoggingSettings):
    """What the local stack scripts read: the same URLs the services connect to."""

    state_dir: Path = PROJECT_ROOT / ".local"


def _require_scheme(value: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.netloc:
        raise ValueError(f"must be a URL starting with {' or '.join(s + '://' for s in schemes)}")
    return value


def _require_scheme_list(value: str, schemes: tuple[str, ...]) -> list[str]:
    """A comma-separated list of URLs (one is a list too), each checked like ``_require_scheme``."""
    urls = split_list(value, r",")
    if not urls:
        raise ValueError(f"must be a URL starting with {' or '.join(s + '://' for s in schemes)}")
    for position, url in enumerate(urls, start=1):
        try:
            _require_scheme(url, schemes)
        except ValueError as exc:
            if len(urls) == 1:
                raise
            # The entry's position, not its text: it may hold a password.
            raise ValueError(f"entry {position} of {len(urls)} {exc}") from None
    return urls


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def load_settings(settings_cls: type[SettingsT]) -> SettingsT:
    """Build settings from the environment, or exit with one line naming the bad variable."""
    try:
        return settings_cls()
    except ValidationError as exc:
        error = exc.errors()[0]
        variable = str(error["loc"][0]).upper() if error["loc"] else "settings"
        message = error["msg"].removeprefix("Value error, ")
        raise SystemExit(f"tubewatch: invalid setting {variable}: {message}") from None
