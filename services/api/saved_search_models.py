"""The saved searches' admin bodies and answers: what /api/v1/admin/saved-searches accepts and returns.

The same models validate the requests and write the OpenAPI document. Filters are the video
list's (``VideoFilters``, services/common/video_filters.py), as a JSON object. An answer never
holds a webhook's secret, except the answers that make one (``AdminSavedSearchWithSecret``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from services.api.params import Params
from services.common.saved_searches import MAX_NAME_LENGTH, MAX_WEBHOOK_URL_LENGTH, SAVED_SEARCH_ID_PATTERN
from services.common.video_filters import VideoFilters

# Control characters and the invisible formatting ones: a name is shown to people as it is.
_HIDDEN = frozenset(range(0x20)) | {0x7F} | set(range(0x80, 0xA0)) | {0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF}

Name = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_NAME_LENGTH,
        description=f"For people: 1-{MAX_NAME_LENGTH} characters, surrounding spaces trimmed, no control characters.",
        examples=["Cricket highlights"],
    ),
]
WebhookUrl = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_WEBHOOK_URL_LENGTH,
        description=(
            "Where new matches are POSTed: https, to a host whose addresses are all public (a host in "
            "WEBHOOK_ALLOW_HOSTS may use http and any address)."
        ),
        examples=["https://hooks.example.com/tubewatch"],
    ),
]


def _clean_name(value: str) -> str:
    name = value.strip()
    if not name:
        raise ValueError("must not be blank")
    if any(ord(c) in _HIDDEN for c in name):
        raise ValueError("must not hold control characters")
    return name


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WebhookCreate(_Body):
    url: WebhookUrl
    paused: StrictBool = Field(default=False, description="true: matches are not delivered until set false.")


class WebhookPatch(_Body):
    """A merge patch of the webhook: a member given changes it; paused null means false."""

    url: WebhookUrl | None = None
    paused: StrictBool | None = None


class SavedSearchCreate(_Body):
    name: Name
    filters: VideoFilters = Field(
        default_factory=VideoFilters, description="The video list's filters, as a JSON object (none: every video)."
    )
    webhook: WebhookCreate | None = Field(default=None, description="null: the saved search has its feed only.")

    @field_validator("name")
    @classmethod
    def _name_clean(cls, value: str) -> str:
        return _clean_name(value)


class SavedSearchPatch(_Body):
    """A JSON merge patch: name changes it; filters replaces the filters whole (validated as one object);
    webhook merges into the webhook (one is made, with a new secret, if there was none), null removes it."""

    name: Name | None = None
    filters: VideoFilters | None = None
    webhook: WebhookPatch | None = None

    @field_validator("name")
    @classmethod
    def _name_clean(cls, value: str | None) -> str | None:
        return None if value is None else _clean_name(value)


class SavedSearchPathParams(Params):
    saved_search_id: str = Field(pattern=SAVED_SEARCH_ID_PATTERN, description="The saved search's id (ss_…).")


class SavedFeedPathParams(Params):
    feed_id: str = Field(min_length=1, max_length=64, description="The saved search's feed id (its feed_url says it).")


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AdminWebhook(_Answer):
    url: str
    paused: bool
    paused_reason: str | None = Field(description="Why it was paused by the notifier (a 410 Gone); null otherwise.")
    secrets_valid: int = Field(description="Secrets deliveries are signed with now (2 for a day after a rotation).")
    secret_created_at: datetime | None = Field(description="When the newest secret was made.")


class AdminSavedSearch(_Answer):
    id: str
    name: str
    filters: VideoFilters
    webhook: AdminWebhook | None
    feed_id: str = Field(description="Unguessable; anyone who has it can read the feed. rotate-feed replaces it.")
    feed_url: str = Field(description="The saved search's Atom feed: the newest matches of its filters.")
    created_at: datetime
    updated_at: datetime
    rev: int = Field(description="1 when made, one more at every change.")


class AdminSavedSearchWithSecret(AdminSavedSearch):
    secret: str | None = Field(
        description=(
            "The webhook's new signing secret, shown this once (null: no new secret). Deliveries are signed "
            "with it in X-Tubewatch-Signature."
        )
    )


class AdminSavedSearchList(_Answer):
    items: list[AdminSavedSearch]
