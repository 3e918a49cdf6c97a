"""The API's settings: the shared stores, RabbitMQ (for /status), the configured queries, cursors, workers."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from services.api.admin_tokens import AdminToken, parse_admin_tokens
from services.api.cors import normalize_origin
from services.common.settings import (
    PROJECT_ROOT,
    AmqpSettings,
    ApiSettings,
    ElasticsearchSettings,
    LoggingSettings,
    MongoSettings,
    SearchQuerySettings,
    split_list,
)
from services.common.sources import SourcesSettings
from services.common.webhook_target import WebhookTargetSettings

# scheme://host[:port][/path]: what a feed's self link and the dashboard link start with.
_PUBLIC_URL = re.compile(r"https?://[^/?#\s@]+(/[^?#\s]*)?")


# The API lists the configured queries (/api/v1/queries) and never reads the keys.
class Settings(
    ApiSettings,
    ElasticsearchSettings,
    MongoSettings,
    AmqpSettings,
    SearchQuerySettings,
    SourcesSettings,
    WebhookTargetSettings,
    LoggingSettings,
):
    # Signs page cursors. Unset: generated once into STATE_DIR/cursor_secret and shared by every
    # API process on this machine. Set it explicitly when API processes run on several machines.
    cursor_secret: SecretStr | None = Field(default=None, min_length=32)
    # Processes serving the port together (SO_REUSEPORT); 1 serves from the main process.
    api_workers: int = Field(default=1, ge=1, le=64)
    # How long a relevance walk's Elasticsearch point-in-time stays open between two pages.
    api_pit_keep_alive_seconds: int = Field(default=300, ge=10, le=3600)
    # Identical list requests within this many seconds share one search (0 turns the micro-cache off).
    api_page_cache_seconds: float = Field(default=1.0, ge=0, le=60)
    state_dir: Path = PROJECT_ROOT / ".local"
    # Browser origins (scheme://host[:port]) whose pages may read /api/v1/*, comma- or
    # whitespace-separated. Empty: CORS closed, no Access-Control-* header anywhere.
    api_cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # A connection that has not sent a complete request this long after it opened or after its
    # previous answer is closed: idle keep-alive connections and slow clients (slowloris) alike.
    api_idle_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    # The API's public address (scheme://host[:port][/path]) for the links feeds carry. Unset: the
    # scheme and Host of each request.
    api_public_url: str | None = None
    # The admin API's tokens: label:token pairs (token at least 32 characters), comma- or
    # whitespace-separated. Unset: everything under /api/v1/admin/ answers 404.
    admin_tokens: SecretStr | None = None
    # Audit entries of the sources older than this many days are removed (a TTL index).
    admin_audit_days: int = Field(default=90, ge=1, le=36500)

    @field_validator("api_cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> list[str]:
        return split_list(value, r"[,\s]+")

    @field_validator("api_public_url")
    @classmethod
    def _plain_public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not _PUBLIC_URL.fullmatch(value):
            raise ValueError("must be http(s)://host[:port][/path], without query, fragment or credentials")
        return value.rstrip("/")

    @field_validator("admin_tokens")
    @classmethod
    def _tokens_parse(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_admin_tokens(value.get_secret_value())
        return value

    @property
    def admin_token_list(self) -> list[AdminToken]:
        return [] if self.admin_tokens is None else parse_admin_tokens(self.admin_tokens.get_secret_value())

    @field_validator("api_cors_origins")
    @classmethod
    def _exact_origins(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(normalize_origin(origin) for origin in value))
