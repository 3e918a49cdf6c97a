"""The admin API's writes and reads of the sources (services/common/sources.py), each change audited.

Every change and its audit entry are written in one transaction, so the audit log lists exactly
the changes made. A change is refused with 409 while the environment manages the sources
(SOURCES_FROM_ENV=always here, or in the marker another service wrote), and a query whose
normalised text is already followed is refused with 409 too (the unique index decides, so two
racing requests cannot both add it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from bson import ObjectId
from pymongo import DESCENDING
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.api.errors import ApiError
from services.common.sources import (
    AUDIT_COLLECTION,
    SOURCES_COLLECTION,
    AuditAction,
    AuditEntry,
    ChannelSource,
    QuerySource,
    SourceKind,
    SourcesMode,
    audit_entry,
    load_marker,
    new_query_id,
    record_audit,
)

T = TypeVar("T")
ENV_MANAGED_MESSAGE = (
    "SOURCES_FROM_ENV=always: SEARCH_QUERIES and FOLLOW_CHANNELS replace the sources at every start; "
    "change them in the deployment, or set SOURCES_FROM_ENV=first to manage them here"
)


def not_found(kind: SourceKind, target: str) -> ApiError:
    parameter = "query_id" if kind == "query" else "channel_id"
    return ApiError(404, "not_found", f"no {kind} {target} is followed", parameter)


class SourcesAdmin:
    """The sources as the admin API changes them, on behalf of one token's label."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]], mode: SourcesMode) -> None:
        self._db = db
        self._sources = db[SOURCES_COLLECTION]
        self._mode = mode

    async def managed_by_environment(self) -> bool:
        if self._mode == "always":
            return True
        marker = await load_marker(self._db)
        return marker is not None and marker.mode == "always"

    async def _change(self, change: Callable[[AsyncClientSession], Awaitable[T]]) -> T:
        if await self.managed_by_environment():
            raise ApiError(409, "conflict", ENV_MANAGED_MESSAGE)
        async with self._db.client.start_session() as session:
            result: T = await session.with_transaction(change)
            return result

    async def _audit(self, session: AsyncClientSession, entry: AuditEntry) -> None:
        await record_audit(self._db, entry, session)

    # Queries ---------------------------------------------------------------------------------

    async def queries(self) -> list[QuerySource]:
        cursor = self._sources.find({"kind": "query"}).sort([("created_at", 1), ("_id", 1)])
        return [QuerySource.model_validate(d) async for d in cursor]

    async def query(self, query_id: str) -> QuerySource:
        raw = await self._sources.find_one({"_id": query_id, "kind": "query"})
        if raw is None:
            raise not_found("query", query_id)
        return QuerySource.model_validate(raw)

    async def add_query(self, actor: str, text: str, weight: float, now: datetime) -> QuerySource:
        query = QuerySource(id=new_query_id(), text=text, weight=weight, created_at=now, updated_at=now)

        async def add(session: AsyncClientSession) -> QuerySource:
            try:
                await self._sources.insert_one(query.model_dump(by_alias=True), session=session)
            except DuplicateKeyError:
                raise ApiError(409, "conflict", f"the query {text!r} is already followed", "text") from None
            await self._audit(
                session, audit_entry(now, actor, "create", target=("query", query.id), before=None, after=query)
            )
            return query

        return await self._change(add)

    async def patch_query(self, actor: str, query_id: str, patch: dict[str, Any], now: datetime) -> QuerySource:
        defaults = {"weight": 1.0, "paused": False}
        changes = {name: defaults[name] if value is None else value for name, value in patch.items()}

        async def update(session: AsyncClientSession) -> QuerySource:
            raw = await self._sources.find_one({"_id": query_id, "kind": "query"}, session=session)
            if raw is None:
                raise not_found("query", query_id)
            before = QuerySource.model_validate(raw)
            after = before.model_copy(update=changes | {"updated_at": now})
            if after.model_dump(exclude={"updated_at"}) == before.model_dump(exclude={"updated_at"}):
                return before  # nothing changes: nothing written, nothing audited
            await self._sources.replace_one({"_id": query_id}, after.model_dump(by_alias=True), session=session)
            await self._audit(
                session, audit_entry(now, actor, "update", target=("query", query_id), before=before, after=after)
            )
            return after

        return await self._change(update)

    async def remove_query(self, actor: str, query_id: str, now: datetime) -> None:
        async def remove(session: AsyncClientSession) -> None:
            raw = await self._sources.find_one_and_delete({"_id": query_id, "kind": "query"}, session=session)
            if raw is None:
                raise not_found("query", query_id)
            before = QuerySource.model_validate(raw)
            await self._audit(
                session, audit_entry(now, actor, "delete", target=("query", query_id), before=before, after=None)
            )

        await self._change(remove)

    # Channels --------------------------------------------------------------------------------

    async def channels(self) -> list[ChannelSource]:
        cursor = self._sources.find({"kind": "channel"}).sort([("created_at", 1), ("_id", 1)])
        return [ChannelSource.model_validate(d) async for d in cursor]

    async def follow_channel(self, actor: str, channel_id: str, now: datetime) -> tuple[ChannelSource, bool]:
        """Follow explicitly; True when it was not followed explicitly before (a 201, else a 200)."""

        async def follow(session: AsyncClientSession) -> tuple[ChannelSource, bool]:
            raw = await self._sources.find_one({"_id": channel_id, "kind": "channel"}, session=session)
            before = ChannelSource.model_validate(raw) if raw else None
            if before is not None and before.followed:
                return before, False
            after = (
                before.model_copy(update={"followed": True, "updated_at": now})
                if before
                else ChannelSource(channel_id=channel_id, followed=True, created_at=now, updated_at=now)
            )
            await self._sources.replace_one(
                {"_id": channel_id}, after.model_dump(by_alias=True), upsert=True, session=session
            )
            action: AuditAction = "update" if before else "create"
            await self._audit(
                session, audit_entry(now, actor, action, target=("channel", channel_id), before=before, after=after)
            )
            return after, True

        return await self._change(follow)

    async def patch_channel(self, actor: str, channel_id: str, patch: dict[str, Any], now: datetime) -> ChannelSource:
        """Set flags of any channel (an auto-followed one, or one to exclude in advance): made if absent."""
        changes = {name: bool(value) for name, value in patch.items()}

        async def update(session: AsyncClientSession) -> ChannelSource:
            raw = await self._sources.find_one({"_id": channel_id, "kind": "channel"}, session=session)
            before = ChannelSource.model_validate(raw) if raw else None
            base = before or ChannelSource(channel_id=channel_id, created_at=now, updated_at=now)
            after = base.model_copy(update=changes | {"updated_at": now})
            if before is not None and after.model_dump(exclude={"updated_at"}) == before.model_dump(
                exclude={"updated_at"}
            ):
                return before
            await self._sources.replace_one(
                {"_id": channel_id}, after.model_dump(by_alias=True), upsert=True, session=session
            )
            action: AuditAction = "update" if before else "create"
            await self._audit(
                session, audit_entry(now, actor, action, target=("channel", channel_id), before=before, after=after)
            )
            return after

        return await self._change(update)

    async def remove_channel(self, actor: str, channel_id: str, now: datetime) -> None:
        """Forget the operator's entry (follow and flags); auto-follow alone decides about it again."""

        async def remove(session: AsyncClientSession) -> None:
            raw = await self._sources.find_one_and_delete({"_id": channel_id, "kind": "channel"}, session=session)
            if raw is None:
                raise not_found("channel", channel_id)
            before = ChannelSource.model_validate(raw)
            await self._audit(
                session, audit_entry(now, actor, "delete", target=("channel", channel_id), before=before, after=None)
            )

        await self._change(remove)

    # Audit -----------------------------------------------------------------------------------

    async def audit_page(self, cursor: str | None, limit: int) -> tuple[list[dict[str, Any]], str | None]:
        """Entries newest first (by ObjectId), ``limit`` of them after ``cursor``, and the next cursor."""
        query: dict[str, Any] = {} if cursor is None else {"_id": {"$lt": ObjectId(cursor)}}
        docs = await self._db[AUDIT_COLLECTION].find(query).sort("_id", DESCENDING).limit(limit + 1).to_list()
        page = docs[:limit]
        next_cursor = str(page[-1]["_id"]) if len(docs) > limit else None
        return page, next_cursor
