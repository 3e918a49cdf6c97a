"""The admin API's writes and reads of the saved searches (services/common/saved_searches.py), each change audited.

Every change and its audit entry (kind ``saved_search``, without secrets) are written in one
transaction. A webhook URL is checked against the webhook policy (services/common/webhook_target.py)
before anything is written: a refusal is a 400 naming ``webhook.url`` with the reason.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from services.api.errors import ApiError, invalid
from services.api.saved_search_models import SavedSearchCreate, WebhookPatch
from services.common.saved_searches import (
    SAVED_SEARCHES_COLLECTION,
    SavedSearch,
    Webhook,
    get_saved_search,
    get_saved_search_by_feed,
    load_saved_searches,
    new_feed_id,
    new_saved_search,
)
from services.common.sources import AuditAction, AuditEntry, record_audit
from services.common.video_filters import VideoFilters
from services.common.webhook_target import Resolver, WebhookTargetRefused, resolve_webhook_target, system_resolver

T = TypeVar("T")


def not_found(saved_search_id: str) -> ApiError:
    return ApiError(404, "not_found", f"no saved search {saved_search_id}", "saved_search_id")


class SavedSearchesAdmin:
    """The saved searches as the admin API changes them; URLs checked with WEBHOOK_ALLOW_HOSTS."""

    def __init__(
        self, db: AsyncDatabase[dict[str, Any]], allow_hosts: frozenset[str], resolver: Resolver = system_resolver
    ) -> None:
        self._db = db
        self._collection = db[SAVED_SEARCHES_COLLECTION]
        self._allow_hosts = allow_hosts
        self._resolver = resolver

    async def check_url(self, url: str) -> None:
        try:
            await resolve_webhook_target(url, self._allow_hosts, self._resolver)
        except WebhookTargetRefused as exc:
            raise invalid("webhook.url", f"webhook.url {exc}") from None

    async def _change(self, change: Callable[[AsyncClientSession], Awaitable[T]]) -> T:
        async with self._db.client.start_session() as session:
            result: T = await session.with_transaction(change)
            return result

    async def _audit(
        self,
        session: AsyncClientSession,
        now: datetime,
        actor: str,
        *,
        action: AuditAction,
        before: SavedSearch | None,
        after: SavedSearch | None,
    ) -> None:
        target = after if after is not None else before
        assert target is not None  # a change has a before or an after
        entry = AuditEntry(
            at=now,
            actor=actor,
            action=action,
            kind="saved_search",
            target=target.id,
            before=None if before is None else before.audit_view(),
            after=None if after is None else after.audit_view(),
        )
        await record_audit(self._db, entry, session)

    async def _replace(
        self, session: AsyncClientSession, now: datetime, actor: str, before: SavedSearch, after: SavedSearch
    ) -> SavedSearch:
        after = after.model_copy(update={"updated_at": now, "rev": before.rev + 1})
        await self._collection.replace_one({"_id": before.id}, after.document(), session=session)
        await self._audit(session, now, actor, action="update", before=before, after=after)
        return after

    async def _current(self, session: AsyncClientSession, saved_search_id: str) -> SavedSearch:
        found = await get_saved_search(self._db, saved_search_id, session)
        if found is None:
            raise not_found(saved_search_id)
        return found

    # Reads -----------------------------------------------------------------------------------

    async def saved_searches(self) -> list[SavedSearch]:
        return await load_saved_searches(self._db)

    async def saved_search(self, saved_search_id: str) -> SavedSearch:
        found = await get_saved_search(self._db, saved_search_id)
        if found is None:
            raise not_found(saved_search_id)
        return found

    async def by_feed(self, feed_id: str) -> SavedSearch | None:
        return await get_saved_search_by_feed(self._db, feed_id)

    # Changes ---------------------------------------------------------------------------------

    async def create(self, actor: str, body: SavedSearchCreate, now: datetime) -> tuple[SavedSearch, str | None]:
        """The new saved search and its webhook's secret (None without a webhook)."""
        webhook, secret = None, None
        if body.webhook is not None:
            await self.check_url(body.webhook.url)
            webhook, secret = Webhook(url=body.webhook.url, paused=body.webhook.paused).rotated(now)
        made = new_saved_search(body.name, body.filters, webhook, now)

        async def add(session: AsyncClientSession) -> SavedSearch:
            await self._collection.insert_one(made.document(), session=session)
            await self._audit(session, now, actor, action="create", before=None, after=made)
            return made

        return await self._change(add), secret

    async def patch(
        self, actor: str, saved_search_id: str, patch: dict[str, Any], now: datetime
    ) -> tuple[SavedSearch, str | None]:
        """Apply a merge patch (members of SavedSearchPatch); the secret of a webhook it adds, else None."""
        if "name" in patch and patch["name"] is None:
            raise invalid("name", "name: a saved search has a name; give a new one")
        webhook_patch = patch.get("webhook")
        if isinstance(webhook_patch, WebhookPatch) and webhook_patch.url is not None:
            await self.check_url(webhook_patch.url)

        async def update(session: AsyncClientSession) -> tuple[SavedSearch, str | None]:
            before = await self._current(session, saved_search_id)
            changes: dict[str, Any] = {}
            secret: str | None = None
            if "name" in patch:
                changes["name"] = patch["name"]
            if "filters" in patch:
                changes["filters"] = patch["filters"] or VideoFilters()
            if "webhook" in patch:
                changes["webhook"], secret = _patched_webhook(before.webhook, webhook_patch, now)
            after = before.model_copy(update=changes)
            if after.document() == before.document():
                return before, None  # nothing changes: nothing written, nothing audited
            return await self._replace(session, now, actor, before, after), secret

        return await self._change(update)

    async def remove(self, actor: str, saved_search_id: str, now: datetime) -> None:
        async def remove(session: AsyncClientSession) -> None:
            raw = await self._collection.find_one_and_delete({"_id": saved_search_id}, session=session)
            if raw is None:
                raise not_found(saved_search_id)
            before = SavedSearch.model_validate(raw)
            await self._audit(session, now, actor, action="delete", before=before, after=None)

        await self._change(remove)

    async def rotate_secret(self, actor: str, saved_search_id: str, now: datetime) -> tuple[SavedSearch, str]:
        """A new signing secret first; the ones before it sign for SECRET_GRACE more."""

        async def rotate(session: AsyncClientSession) -> tuple[SavedSearch, str]:
            before = await self._current(session, saved_search_id)
            if before.webhook is None:
                raise ApiError(409, "conflict", f"the saved search {saved_search_id} has no webhook to sign for")
            webhook, secret = before.webhook.rotated(now)
            return await self._replace(
                session, now, actor, before, before.model_copy(update={"webhook": webhook})
            ), secret

        return await self._change(rotate)

    async def rotate_feed(self, actor: str, saved_search_id: str, now: datetime) -> SavedSearch:
        """A new feed id: the old feed answers 404 from now on."""

        async def rotate(session: AsyncClientSession) -> SavedSearch:
            before = await self._current(session, saved_search_id)
            return await self._replace(
                session, now, actor, before, before.model_copy(update={"feed_id": new_feed_id()})
            )

        return await self._change(rotate)


def _patched_webhook(
    current: Webhook | None, patch: WebhookPatch | None, now: datetime
) -> tuple[Webhook | None, str | None]:
    """The webhook after a merge patch of it, and the secret of one it makes (else None)."""
    if patch is None:
        return None, None  # null removes the webhook
    given = patch.model_fields_set
    if current is None:
        if patch.url is None:
            raise invalid("webhook.url", "webhook.url: required to add a webhook")
        return Webhook(url=patch.url, paused=bool(patch.paused)).rotated(now)
    changes: dict[str, Any] = {}
    if patch.url is not None:
        changes["url"] = patch.url
    elif "url" in given:
        raise invalid("webhook.url", "webhook.url: a webhook has a URL; set webhook to null to remove it")
    if "paused" in given:
        changes["paused"] = bool(patch.paused)
        changes["paused_reason"] = None  # an operator's pause or resume replaces the notifier's reason
    return current.model_copy(update=changes), None
