"""The sources contract: what tubewatch follows (search queries, channels), kept in MongoDB.

Written by the API's admin routes (services/api/handlers/admin_*.py) and by the seeding below;
read by the fetcher. Nothing else decides what is searched or read.

Collections
-----------
``sources`` (SOURCES_COLLECTION) holds one document per source, told apart by ``kind``:

- ``kind: "query"`` (``QuerySource``): ``_id`` an opaque id (``q_`` + 16 hex digits), ``text``
  the normalised query text (``normalize_query_text``, unique among queries: a partial unique
  index), ``weight`` (0.1 to 10, scales the query's share of the search budget, the planner's
  ``ItemInputs.weight``), ``paused`` (true: not searched until resumed), ``created_at``,
  ``updated_at``. A removed query's document is deleted; its videos and its ``fetcher_queries``
  state (keyed by ``text``) stay.
- ``kind: "channel"`` (``ChannelSource``): ``_id`` the channel id (``UC`` + 22 characters),
  ``followed`` (explicitly followed: FOLLOW_CHANNELS or ``POST /api/v1/admin/channels``),
  ``pinned`` (followed whatever auto-follow decides: it never leaves the set), ``excluded`` (never
  auto-followed and never read), ``paused`` (not read until resumed), ``created_at``,
  ``updated_at``. A channel without a document is governed by auto-follow alone.

What the fetcher reads is ``SourceSet`` (``load_sources``): search the queries not paused, each
with its weight; read ``explicit_channels`` (followed or pinned, neither paused nor excluded) plus
auto-follow's choice minus ``excluded_channels`` and ``paused_channels``.

Picking changes up: the leader watches ``sources`` with a change stream (the local MongoDB is a
replica set). Any insert, update, replace or delete there changes the set; the simplest correct
reaction is ``load_sources`` again (the collection holds at most a few hundred small documents)
and diffing against the running set. When the stream's resume token is no longer in the oplog
(``ChangeStreamHistoryLost``), or the stream breaks because MongoDB restarted, reload the whole set
with ``load_sources`` and open a new stream; opening the stream *before* the reload closes the gap
in which a change could be missed.

``sources_meta`` (SOURCES_META_COLLECTION) holds the seeding marker (``SeedMarker``, ``_id``
SEED_MARKER_ID): present once the environment seeded the sources. ``mode`` ``always`` means the
environment replaces the sets at each start (``SOURCES_FROM_ENV=always``) and the admin API
refuses changes with 409.

``sources_audit`` (AUDIT_COLLECTION) keeps every change (``AuditEntry``): who (the admin token's
label, or ``environment`` for seeding), what, before and after. A TTL index on ``at`` removes
entries older than ``ADMIN_AUDIT_DAYS``.

Seeding
-------
``seed_from_environment`` is called at start by the API and by the fetcher with SEARCH_QUERIES
and FOLLOW_CHANNELS. Mode ``first`` (the default): only when no marker exists, the environment's
queries and channels are inserted and the marker written, in one transaction, so two services
starting together seed once and removing every query later never brings the environment's back.
Mode ``always``: at every start the environment's sets replace the stored ones (queries and
channels not in it are deleted, its own reset to weight 1, not paused), and the marker says so.
"""

from __future__ import annotations

import logging
import re
import secrets
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

from services.common.settings import split_list

logger = logging.getLogger(__name__)

SOURCES_COLLECTION = "sources"
SOURCES_META_COLLECTION = "sources_meta"
SEED_MARKER_ID = "seeded"
AUDIT_COLLECTION = "sources_audit"
AUDIT_TTL_INDEX = "at_ttl"

MAX_QUERY_TEXT_LENGTH = 100
MIN_WEIGHT = 0.1
MAX_WEIGHT = 10.0
CHANNEL_ID_PATTERN = r"^UC[A-Za-z0-9_-]{22}$"
CHANNEL_ID = re.compile(CHANNEL_ID_PATTERN)
QUERY_ID_PATTERN = r"^q_[0-9a-f]{16}$"
# Who a change made by the seeding is attributed to in the audit log.
ENVIRONMENT_ACTOR = "environment"

SourcesMode = Literal["first", "always"]
SourceKind = Literal["query", "channel"]
# What the audit log records changes of: the sources, and the saved searches (saved_searches.py).
AuditKind = Literal["query", "channel", "saved_search"]
AuditAction = Literal["create", "update", "delete"]


def normalize_query_text(text: str) -> str:
    """A query as the fetcher searches it: SEARCH_QUERIES items are stripped of surrounding
    whitespace (services/common/settings.py ``split_list``) and nothing else, so the same text
    from the environment and from the API is the same query (and the same ``fetcher_queries`` id)."""
    return text.strip()


def query_text_problem(text: str) -> str | None:
    """Why ``text`` (already normalised) cannot be a query, or None."""
    if not 1 <= len(text) <= MAX_QUERY_TEXT_LENGTH:
        return f"must be 1-{MAX_QUERY_TEXT_LENGTH} characters after trimming spaces"
    if any(unicodedata.category(char) in {"Cc", "Cf"} for char in text):
        return "must not contain control characters"
    return None


def new_query_id() -> str:
    return "q_" + secrets.token_hex(8)


class SourcesSettings(BaseSettings):
    """SOURCES_FROM_ENV and FOLLOW_CHANNELS: what every service that seeds the sources reads."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    # first: SEARCH_QUERIES and FOLLOW_CHANNELS seed the sources on the very first start only;
    # always: they replace the sources at every start and the admin API refuses changes (409).
    sources_from_env: SourcesMode = "first"
    # Channels whose uploads playlists are read (UC + 22 characters), comma- or whitespace-separated.
    follow_channels: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("follow_channels", mode="before")
    @classmethod
    def _split_channels(cls, value: object) -> list[str]:
        return split_list(value, r"[,\s]+")

    @field_validator("follow_channels")
    @classmethod
    def _channel_ids(cls, value: list[str]) -> list[str]:
        for channel_id in value:
            if not CHANNEL_ID.fullmatch(channel_id):
                raise ValueError(f"{channel_id!r} is not a channel id (UC and 22 of A-Z, a-z, 0-9, _ and -)")
        return list(dict.fromkeys(value))


class _Doc(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class QuerySource(_Doc):
    id: str = Field(alias="_id", pattern=QUERY_ID_PATTERN)
    kind: Literal["query"] = "query"
    text: str
    weight: float = Field(default=1.0, ge=MIN_WEIGHT, le=MAX_WEIGHT)
    paused: bool = False
    created_at: AwareDatetime
    updated_at: AwareDatetime


class ChannelSource(_Doc):
    channel_id: str = Field(alias="_id", pattern=CHANNEL_ID_PATTERN)
    kind: Literal["channel"] = "channel"
    followed: bool = False
    pinned: bool = False
    excluded: bool = False
    paused: bool = False
    created_at: AwareDatetime
    updated_at: AwareDatetime

    @property
    def read_explicitly(self) -> bool:
        """Read whatever auto-follow chooses: followed or pinned, and neither paused nor excluded."""
        return (self.followed or self.pinned) and not (self.paused or self.excluded)


class SeedMarker(_Doc):
    id: str = Field(default=SEED_MARKER_ID, alias="_id")
    mode: SourcesMode
    seeded_at: AwareDatetime
    seeded_by: str  # the service that seeded: api or fetcher
    queries: list[str] = Field(default_factory=list)
    channels: list[str] = Field(default_factory=list)


class AuditEntry(_Doc):
    """One change of the sources or of a saved search. ``_id`` is an ObjectId: entries sort newest first by it."""

    at: AwareDatetime
    actor: str  # the admin token's label, or ENVIRONMENT_ACTOR
    action: AuditAction
    kind: AuditKind
    target: str  # the query's, the channel's or the saved search's id
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


@dataclass(frozen=True)
class SourceSet:
    """Everything the fetcher needs to know of the sources, as loaded at one moment."""

    queries: tuple[QuerySource, ...] = ()
    channels: tuple[ChannelSource, ...] = ()
    marker: SeedMarker | None = None
    by_text: dict[str, QuerySource] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_text", {q.text: q for q in self.queries})

    @property
    def searched_queries(self) -> list[QuerySource]:
        """The queries to search, oldest first (the order they were added in)."""
        return [q for q in self.queries if not q.paused]

    @property
    def explicit_channels(self) -> list[str]:
        return [c.channel_id for c in self.channels if c.read_explicitly]

    @property
    def excluded_channels(self) -> set[str]:
        """Never auto-followed, never read."""
        return {c.channel_id for c in self.channels if c.excluded}

    @property
    def paused_channels(self) -> set[str]:
        return {c.channel_id for c in self.channels if c.paused}


def source_view(doc: BaseModel) -> dict[str, Any]:
    """A source as the audit log keeps it: its fields by their API names, times as datetimes."""
    return doc.model_dump(mode="python", by_alias=False, exclude={"kind"})


async def ensure_sources_indexes(db: AsyncDatabase[dict[str, Any]]) -> None:
    """The sources' indexes: one query per text, the kind, the audit log newest first."""
    await db[SOURCES_COLLECTION].create_indexes(
        [
            IndexModel(
                [("text", ASCENDING)],
                name="query_text_unique",
                unique=True,
                partialFilterExpression={"kind": "query"},
            ),
            IndexModel([("kind", ASCENDING), ("created_at", ASCENDING)], name="kind_created_at"),
        ]
    )


async def ensure_audit_ttl(db: AsyncDatabase[dict[str, Any]], days: int) -> None:
    """Audit entries older than ``days`` are removed by MongoDB (a TTL index on ``at``); a changed
    ADMIN_AUDIT_DAYS changes the index in place (collMod), never by dropping it."""
    seconds = int(timedelta(days=days).total_seconds())
    audit = db[AUDIT_COLLECTION]
    try:
        await audit.create_index([("at", ASCENDING)], name=AUDIT_TTL_INDEX, expireAfterSeconds=seconds)
    except OperationFailure as exc:
        if exc.code not in (85, 86):  # IndexOptionsConflict, IndexKeySpecsConflict
            raise
        await db.command("collMod", AUDIT_COLLECTION, index={"name": AUDIT_TTL_INDEX, "expireAfterSeconds": seconds})
    await audit.create_index([("actor", ASCENDING), ("_id", DESCENDING)], name="actor_newest")


async def record_audit(
    db: AsyncDatabase[dict[str, Any]], entry: AuditEntry, session: AsyncClientSession | None = None
) -> None:
    await db[AUDIT_COLLECTION].insert_one(entry.model_dump(mode="python"), session=session)


async def load_marker(
    db: AsyncDatabase[dict[str, Any]], session: AsyncClientSession | None = None
) -> SeedMarker | None:
    raw = await db[SOURCES_META_COLLECTION].find_one({"_id": SEED_MARKER_ID}, session=session)
    return SeedMarker.model_validate(raw) if raw else None


async def load_sources(db: AsyncDatabase[dict[str, Any]]) -> SourceSet:
    """Every source and the marker; a malformed document is skipped with one WARNING naming it."""
    queries: list[QuerySource] = []
    channels: list[ChannelSource] = []
    async for raw in db[SOURCES_COLLECTION].find({}).sort([("created_at", ASCENDING), ("_id", ASCENDING)]):
        try:
            if raw.get("kind") == "query":
                queries.append(QuerySource.model_validate(raw))
            elif raw.get("kind") == "channel":
                channels.append(ChannelSource.model_validate(raw))
            else:
                raise ValueError("unknown kind")
        except (ValidationError, ValueError):
            logger.warning("ignoring a malformed source document", extra={"id": raw.get("_id")})
    return SourceSet(tuple(queries), tuple(channels), await load_marker(db))


@dataclass(frozen=True)
class SeedRequest:
    queries: Sequence[str]  # SEARCH_QUERIES
    channels: Sequence[str]  # FOLLOW_CHANNELS
    mode: SourcesMode  # SOURCES_FROM_ENV
    seeded_by: str  # the calling service


async def seed_from_environment(db: AsyncDatabase[dict[str, Any]], request: SeedRequest, now: datetime) -> bool:
    """Seed the sources from the environment as ``request.mode`` says; True if anything was written.

    One transaction: services starting together seed once, and a reader never sees half a seed.
    """
    await ensure_sources_indexes(db)
    texts = list(dict.fromkeys(t for t in map(normalize_query_text, request.queries) if t))
    for text in texts:
        problem = query_text_problem(text)
        if problem is not None:
            raise ValueError(f"SEARCH_QUERIES: {text!r} {problem}")
    channels = list(dict.fromkeys(request.channels))

    async def seed(session: AsyncClientSession) -> bool:
        marker = await load_marker(db, session)
        if marker is not None and request.mode == "first":
            return False
        await _replace_sets(db, session, texts, channels, now)
        new_marker = SeedMarker(
            mode=request.mode, seeded_at=now, seeded_by=request.seeded_by, queries=texts, channels=channels
        )
        await db[SOURCES_META_COLLECTION].replace_one(
            {"_id": SEED_MARKER_ID}, new_marker.model_dump(mode="python", by_alias=True), upsert=True, session=session
        )
        return True

    async with db.client.start_session() as session:
        seeded: bool = await session.with_transaction(seed)
    if seeded:
        logger.info(
            "sources seeded from the environment",
            extra={"mode": request.mode, "queries": len(texts), "channels": len(channels), "by": request.seeded_by},
        )
    return seeded


async def _replace_sets(
    db: AsyncDatabase[dict[str, Any]], session: AsyncClientSession, texts: list[str], channels: list[str], now: datetime
) -> None:
    """Make the stored sets the environment's, auditing each difference (the first seed only inserts)."""
    sources = db[SOURCES_COLLECTION]
    changes: list[AuditEntry] = []
    stored_queries = [QuerySource.model_validate(d) async for d in sources.find({"kind": "query"}, session=session)]
    by_text = {q.text: q for q in stored_queries}
    for query in stored_queries:
        if query.text not in texts:
            await sources.delete_one({"_id": query.id}, session=session)
            changes.append(
                audit_entry(now, ENVIRONMENT_ACTOR, "delete", target=("query", query.id), before=query, after=None)
            )
    # Seeded in the environment's order: one millisecond apart (what MongoDB keeps), so sorting by
    # created_at lists them as SEARCH_QUERIES does.
    for position, text in enumerate(texts):
        known = by_text.get(text)
        if known is not None and known.weight == 1.0 and not known.paused:
            continue
        wanted = QuerySource(
            id=known.id if known else new_query_id(),
            text=text,
            created_at=known.created_at if known else now + timedelta(milliseconds=position),
            updated_at=now,
        )
        await sources.replace_one({"_id": wanted.id}, _stored(wanted), upsert=True, session=session)
        changes.append(
            audit_entry(
                now,
                ENVIRONMENT_ACTOR,
                "update" if known else "create",
                target=("query", wanted.id),
                before=known,
                after=wanted,
            )
        )
    stored_channels = [
        ChannelSource.model_validate(d) async for d in sources.find({"kind": "channel"}, session=session)
    ]
    by_id = {c.channel_id: c for c in stored_channels}
    for channel in stored_channels:
        if channel.channel_id not in channels:
            await sources.delete_one({"_id": channel.channel_id}, session=session)
            changes.append(
                audit_entry(
                    now, ENVIRONMENT_ACTOR, "delete", target=("channel", channel.channel_id), before=channel, after=None
                )
            )
    for position, channel_id in enumerate(channels):
        present = by_id.get(channel_id)
        if present is not None and present.read_explicitly and present.followed:
            continue
        wanted_channel = ChannelSource(
            channel_id=channel_id,
            followed=True,
            created_at=present.created_at if present else now + timedelta(milliseconds=position),
            updated_at=now,
        )
        await sources.replace_one({"_id": channel_id}, _stored(wanted_channel), upsert=True, session=session)
        changes.append(
            audit_entry(
                now,
                ENVIRONMENT_ACTOR,
                "update" if present else "create",
                target=("channel", channel_id),
                before=present,
                after=wanted_channel,
            )
        )
    for change in changes:
        await record_audit(db, change, session)


def _stored(doc: BaseModel) -> dict[str, Any]:
    return doc.model_dump(mode="python", by_alias=True)


def audit_entry(
    now: datetime,
    actor: str,
    action: AuditAction,
    *,
    target: tuple[SourceKind, str],
    before: BaseModel | None,
    after: BaseModel | None,
) -> AuditEntry:
    """The audit entry of one change of the source ``target`` (its kind and id) by ``actor``."""
    return AuditEntry(
        at=now,
        actor=actor,
        action=action,
        kind=target[0],
        target=target[1],
        before=None if before is None else source_view(before),
        after=None if after is None else source_view(after),
    )
