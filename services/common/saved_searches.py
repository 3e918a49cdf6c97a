"""The saved searches contract: named filters of the video list, each with a feed and perhaps a webhook.

Written by the API's admin routes (services/api/saved_search_admin.py); read by the API's saved
feeds and by the notifier, which matches new videos against them and delivers to their webhooks
(and pauses a webhook its receiver answered 410 Gone, ``pause_webhook``).

Collection ``saved_searches`` (SAVED_SEARCHES_COLLECTION), one document per saved search:

- ``_id``: ``ss_`` + 22 URL-safe random characters.
- ``name``: 1-200 characters, for people.
- ``filters``: the filters of the video list (``VideoFilters``) in their JSON form, members that are
  null left out.
- ``webhook``: null, or ``{url, paused, paused_reason, secrets}``. ``secrets`` holds the signing
  secrets newest first, each ``{value, created_at, expires_at}``: the newest never expires; a
  rotation gives the one it replaces ``expires_at`` = now + SECRET_GRACE, so a receiver has a day
  to switch. Deliveries are signed with every secret not yet expired (``signing_secrets``).
- ``feed_id``: 32 URL-safe random characters (192 bits: unguessable), a unique index; the saved
  search's public feed is ``/api/v1/feeds/saved/{feed_id}.atom``, and a new one replaces it.
- ``created_at``, ``updated_at``; ``rev``: 1 when made, one more at every write.

Secrets are never logged, never in the audit log and never in a read of a saved search: only the
answers that made them (creation, rotation) carry them. Every change is audited in
``sources_audit`` (services/common/sources.py) with kind ``saved_search``.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from services.common.sources import AuditEntry, record_audit
from services.common.timefmt import utc_now
from services.common.video_filters import VideoFilters

SAVED_SEARCHES_COLLECTION = "saved_searches"
SAVED_SEARCH_ID_PATTERN = r"^ss_[A-Za-z0-9_-]{22}$"
FEED_ID_PATTERN = r"^[A-Za-z0-9_-]{32}$"
MAX_NAME_LENGTH = 200
MAX_WEBHOOK_URL_LENGTH = 2048
# The audit log's actor of the notifier's own changes (a webhook paused after a 410).
NOTIFIER_ACTOR = "notifier"
# How long a rotated-out secret still signs deliveries.
SECRET_GRACE = timedelta(hours=24)


def new_saved_search_id() -> str:
    return "ss_" + secrets.token_urlsafe(16)  # 16 bytes: 22 characters


def new_feed_id() -> str:
    return secrets.token_urlsafe(24)  # 24 bytes: 32 characters


def new_webhook_secret() -> str:
    return secrets.token_urlsafe(32)


class _Doc(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class WebhookSecret(_Doc):
    value: str = Field(repr=False)
    created_at: AwareDatetime
    expires_at: AwareDatetime | None = None


class Webhook(_Doc):
    url: str = Field(max_length=MAX_WEBHOOK_URL_LENGTH)
    paused: bool = False
    paused_reason: str | None = None
    secrets: list[WebhookSecret] = Field(default_factory=list, repr=False)

    def rotated(self, now: datetime) -> tuple[Webhook, str]:
        """This webhook with a new secret first, the current ones expiring within SECRET_GRACE; and the secret."""
        value = new_webhook_secret()
        grace = now + SECRET_GRACE
        kept = [
            s.model_copy(update={"expires_at": grace if s.expires_at is None else min(s.expires_at, grace)})
            for s in self.secrets
            if s.expires_at is None or s.expires_at > now
        ]
        return self.model_copy(update={"secrets": [WebhookSecret(value=value, created_at=now), *kept]}), value


class SavedSearch(_Doc):
    id: str = Field(alias="_id", pattern=SAVED_SEARCH_ID_PATTERN)
    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)
    filters: VideoFilters
    webhook: Webhook | None = None
    feed_id: str = Field(pattern=FEED_ID_PATTERN)
    created_at: AwareDatetime
    updated_at: AwareDatetime
    rev: int = Field(default=1, ge=1)

    def document(self) -> dict[str, Any]:
        """The MongoDB document: filters in their JSON form, without the members that are null."""
        doc = self.model_dump(by_alias=True, exclude={"filters"})
        doc["filters"] = self.filters.model_dump(mode="json", exclude_none=True)
        return doc

    def audit_view(self) -> dict[str, Any]:
        """What the audit log keeps of it: everything but the secrets (only how many there are)."""
        view = self.model_dump(mode="python", exclude={"filters", "webhook"})
        view["filters"] = self.filters.model_dump(mode="json", exclude_none=True)
        if self.webhook is not None:
            view["webhook"] = self.webhook.model_dump(exclude={"secrets"}) | {"secrets": len(self.webhook.secrets)}
        else:
            view["webhook"] = None
        return view


def new_saved_search(name: str, filters: VideoFilters, webhook: Webhook | None, now: datetime) -> SavedSearch:
    return SavedSearch(
        id=new_saved_search_id(),
        name=name,
        filters=filters,
        webhook=webhook,
        feed_id=new_feed_id(),
        created_at=now,
        updated_at=now,
    )


def signing_secrets(search: SavedSearch, now: datetime) -> list[str]:
    """The secrets a delivery made at ``now`` is signed with: those not expired, newest first."""
    if search.webhook is None:
        return []
    return [s.value for s in search.webhook.secrets if s.expires_at is None or s.expires_at > now]


async def ensure_saved_search_indexes(db: AsyncDatabase[dict[str, Any]]) -> None:
    await db[SAVED_SEARCHES_COLLECTION].create_indexes(
        [
            IndexModel([("feed_id", ASCENDING)], name="feed_id_unique", unique=True),
            IndexModel([("created_at", ASCENDING), ("_id", ASCENDING)], name="oldest_first"),
        ]
    )


async def load_saved_searches(
    db: AsyncDatabase[dict[str, Any]], session: AsyncClientSession | None = None
) -> list[SavedSearch]:
    """Every saved search, oldest first."""
    cursor = db[SAVED_SEARCHES_COLLECTION].find({}, session=session).sort([("created_at", 1), ("_id", 1)])
    return [SavedSearch.model_validate(doc) async for doc in cursor]


async def get_saved_search(
    db: AsyncDatabase[dict[str, Any]], saved_search_id: str, session: AsyncClientSession | None = None
) -> SavedSearch | None:
    raw = await db[SAVED_SEARCHES_COLLECTION].find_one({"_id": saved_search_id}, session=session)
    return None if raw is None else SavedSearch.model_validate(raw)


async def get_saved_search_by_feed(db: AsyncDatabase[dict[str, Any]], feed_id: str) -> SavedSearch | None:
    raw = await db[SAVED_SEARCHES_COLLECTION].find_one({"feed_id": feed_id})
    return None if raw is None else SavedSearch.model_validate(raw)


async def pause_webhook(db: AsyncDatabase[dict[str, Any]], saved_search_id: str, reason: str) -> None:
    """Pause the saved search's webhook (its receiver answered 410 Gone), audited as NOTIFIER_ACTOR's change.

    Nothing happens if the saved search is gone, has no webhook any more or is paused already.
    """
    now = utc_now()
    raw = await db[SAVED_SEARCHES_COLLECTION].find_one_and_update(
        {"_id": saved_search_id, "webhook": {"$type": "object"}, "webhook.paused": {"$ne": True}},
        {
            "$set": {"webhook.paused": True, "webhook.paused_reason": reason, "updated_at": now},
            "$inc": {"rev": 1},
        },
        return_document=ReturnDocument.BEFORE,
    )
    if raw is None:
        return
    before = SavedSearch.model_validate(raw)
    assert before.webhook is not None  # the filter matched a webhook
    after = before.model_copy(
        update={
            "webhook": before.webhook.model_copy(update={"paused": True, "paused_reason": reason}),
            "updated_at": now,
            "rev": before.rev + 1,
        }
    )
    entry = AuditEntry(
        at=now,
        actor=NOTIFIER_ACTOR,
        action="update",
        kind="saved_search",
        target=saved_search_id,
        before=before.audit_view(),
        after=after.audit_view(),
    )
    await record_audit(db, entry)
