"""/api/v1/status and /api/v1/queries: the pipeline read from shared state, never by calling a service.

The fetcher's state documents (services/common/fetcher_state.py) come from MongoDB, queue depths
from RabbitMQ (passive declares), video counts from the stores. Each query's plan is rebuilt by
the shared planner from the inputs the fetcher saved, and its freshness read from its saved
digest. Anything absent — a fresh install, a store or broker that is down — shows as null or
zero, never as an error.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any, TypeVar

import aio_pika
from aio_pika.abc import AbstractConnection
from aiormq.exceptions import AMQPError, ChannelNotFoundEntity
from pydantic import BaseModel, ValidationError
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from services.api.channel_status import channel_status
from services.api.stores import Stores
from services.common.clients import connect_amqp
from services.common.errors import StoreUnavailableError
from services.common.fetcher_state import (
    BUDGET_COLLECTION,
    BUDGET_ID,
    KEY_STATE_COLLECTION,
    LEASE_COLLECTION,
    LEASE_ID,
    QUERY_STATE_COLLECTION,
    BudgetDoc,
    KeyStateDoc,
    LeaseDoc,
    QueryStateDoc,
    as_utc,
    freshness_digest,
    plan_from_state,
)
from services.common.timefmt import format_rfc3339, utc_now
from services.common.topology import QueueNames

logger = logging.getLogger(__name__)

DocT = TypeVar("DocT", bound=BaseModel)
_AMQP_TIMEOUT_SECONDS = 3.0


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else format_rfc3339(as_utc(moment))


def _parse(model: type[DocT], doc: dict[str, Any]) -> DocT | None:
    try:
        return model.model_validate(doc)
    except ValidationError:
        logger.warning(
            "ignoring a malformed fetcher state document", extra={"model": model.__name__, "id": doc.get("_id")}
        )
        return None


class QueueProbe:
    """Reads queue depths with passive declares over one lazily opened, reused AMQP connection."""

    def __init__(self, amqp_url: str, names: QueueNames) -> None:
        self._url = amqp_url
        self._names = names
        self._connection: AbstractConnection | None = None
        self._lock = asyncio.Lock()

    async def _connect(self) -> AbstractConnection:
        async with self._lock:
            if self._connection is None or self._connection.is_closed:
                self._connection = await connect_amqp(self._url, "api-status", timeout=_AMQP_TIMEOUT_SECONDS)
            return self._connection

    async def depth(self, queue: str) -> dict[str, Any]:
        status: dict[str, Any] = {"name": queue, "messages": None, "consumers": None, "error": None}
        try:
            connection = await self._connect()
            # A passive declare of a missing queue closes its channel: one channel per question.
            channel = await asyncio.wait_for(connection.channel(), _AMQP_TIMEOUT_SECONDS)
            try:
                declared = await asyncio.wait_for(channel.declare_queue(queue, passive=True), _AMQP_TIMEOUT_SECONDS)
                result = declared.declaration_result
                status["messages"] = int(result.message_count or 0)
                status["consumers"] = int(result.consumer_count or 0)
            finally:
                if not channel.is_closed:
                    await channel.close()
        except ChannelNotFoundEntity:
            status["error"] = "queue does not exist yet"
        except (AMQPError, OSError, TimeoutError, aio_pika.exceptions.AMQPException) as exc:
            status["error"] = f"rabbitmq not reachable: {type(exc).__name__}"
        return status

    async def close(self) -> None:
        if self._connection is not None and not self._connection.is_closed:
            await self._connection.close()


async def _find_all(db: AsyncDatabase[dict[str, Any]], collection: str) -> list[dict[str, Any]]:
    return await db[collection].find({}).to_list()


async def pipeline_status(stores: Stores, probe: QueueProbe, names: QueueNames) -> dict[str, Any]:
    now = utc_now()
    db = stores.mongo.database
    fetcher: dict[str, Any] = {
        "keys": {"live": 0, "parked": 0, "disabled": 0},
        "key_details": [],
        "calls_left_today": None,
        "effective_interval_seconds": None,
        "quota_resets_at": None,
        "budget_updated_at": None,
        "last_poll_at": None,
        "leader": None,
        "scheduling": None,
        "max_query_interval_seconds": None,
        "budget_too_small": None,
    }
    stored: int | None = None
    queue, dead = await asyncio.gather(probe.depth(names.queue), probe.depth(names.dead_queue))
    try:
        key_docs = await _find_all(db, KEY_STATE_COLLECTION)
        query_docs = await _find_all(db, QUERY_STATE_COLLECTION)
        lease_raw = await db[LEASE_COLLECTION].find_one({"_id": LEASE_ID})
        budget_raw = await db[BUDGET_COLLECTION].find_one({"_id": BUDGET_ID})
        stored = await stores.mongo.count()
    except (PyMongoError, StoreUnavailableError) as exc:
        logger.warning("status: mongodb unavailable", extra={"error": f"{type(exc).__name__}: {exc}"})
        key_docs, query_docs, lease_raw, budget_raw = [], [], None, None
    keys = [k for k in (_parse(KeyStateDoc, d) for d in key_docs) if k is not None]
    for key in keys:
        fetcher["keys"][key.state] += 1
    fetcher["key_details"] = [
        {
            "fingerprint": k.fingerprint,
            "project": k.project,
            "state": k.state,
            "parked_until": _time(k.parked_until),
            "disabled_reason": k.disabled_reason,
            "quota_day": k.quota_day,
            "search_calls_spent": k.search_calls_spent,
            "units_spent": k.units_spent,
            "updated_at": _time(k.updated_at),
        }
        for k in sorted(keys, key=lambda k: k.fingerprint)
    ]
    polls = [q.last_poll_at for q in (_parse(QueryStateDoc, d) for d in query_docs) if q and q.last_poll_at]
    fetcher["last_poll_at"] = _time(max(map(as_utc, polls))) if polls else None
    budget = _parse(BudgetDoc, budget_raw) if budget_raw else None
    if budget is not None:
        fetcher["calls_left_today"] = budget.calls_left_today
        fetcher["effective_interval_seconds"] = budget.effective_interval_seconds
        fetcher["quota_resets_at"] = _time(budget.reset_at)
        fetcher["budget_updated_at"] = _time(budget.updated_at)
        if budget.poll_interval_seconds > 0:  # saved by a fetcher that plans per query
            fetcher["scheduling"] = budget.scheduling
            fetcher["max_query_interval_seconds"] = budget.max_query_interval_seconds
            fetcher["budget_too_small"] = budget.budget_too_small
    lease = _parse(LeaseDoc, lease_raw) if lease_raw else None
    if lease is not None:
        fetcher["leader"] = {
            "holder": lease.holder,
            "token": lease.token,
            "renewed_at": _time(lease.renewed_at),
            "expires_at": _time(lease.expires_at),
            "active": as_utc(lease.expires_at) > now,
        }
    fetcher |= await channel_status(db, now)
    indexed: int | None = None
    if stores.es_available:
        try:
            indexed = await stores.es.count()
        except StoreUnavailableError as exc:
            stores.mark_es_down(str(exc))
    return {
        "generated_at": format_rfc3339(now),
        "served_by": stores.served_by(),
        "fetcher": fetcher,
        "indexer": {"queue": queue, "dead_letters": dead},
        "videos": {"stored": stored, "indexed": indexed},
    }


async def _query_state(
    stores: Stores, configured: list[str]
) -> tuple[dict[str, QueryStateDoc], BudgetDoc | None, list[QueryStateDoc]]:
    """The configured queries' documents, the budget, and the documents of the queries it planned."""
    try:
        db = stores.mongo.database
        budget_raw = await db[BUDGET_COLLECTION].find_one({"_id": BUDGET_ID})
        budget = _parse(BudgetDoc, budget_raw) if budget_raw else None
        names = sorted({*configured, *(budget.planned_queries if budget else [])})
        docs = await db[QUERY_STATE_COLLECTION].find({"_id": {"$in": names}}).to_list()
    except PyMongoError as exc:
        logger.warning("queries: mongodb unavailable", extra={"error": f"{type(exc).__name__}: {exc}"})
        return {}, None, []
    parsed = [s for s in (_parse(QueryStateDoc, d) for d in docs) if s is not None]
    return {s.query: s for s in parsed if s.query in configured}, budget, parsed


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


async def query_statuses(stores: Stores, configured: list[str]) -> dict[str, Any]:
    states, budget, planned = await _query_state(stores, configured)
    plan = plan_from_state(budget, planned) if budget is not None else None
    counts: dict[str, int] | None
    try:
        counts, _ = await stores.with_fallback(
            "query_counts", lambda es: es.query_counts(configured), lambda mongo: mongo.query_counts(configured)
        )
    except StoreUnavailableError:
        counts = None
    now = utc_now()
    items = []
    for query in configured:
        state = states.get(query)
        planned_item = plan.by_name.get(query) if plan is not None else None
        sample, (p50, p99) = (
            freshness_digest(state.freshness).window_percentiles(now, (0.5, 0.99)) if state else (None, (None, None))
        )
        items.append(
            {
                "query": query,
                "videos_stored": None if counts is None else counts.get(query, 0),
                "last_poll_at": _time(state.last_poll_at) if state else None,
                "last_sweep_at": _time(state.last_sweep_at) if state else None,
                "watermark": _time(state.watermark) if state else None,
                "videos_published": state.videos_published if state else None,
                "upload_rate_per_hour": _round(planned_item.upload_rate * 3600, 3) if planned_item else None,
                "planned_interval_seconds": _round(planned_item.interval) if planned_item else None,
                "calls_per_day": _round(planned_item.calls_per_day, 2) if planned_item else None,
                "expected_mean_delay_seconds": _round(planned_item.expected_mean_delay) if planned_item else None,
                "freshness_videos": sample,
                "freshness_p50_seconds": _round(p50),
                "freshness_p99_seconds": _round(p99),
            }
        )
    return {"items": items}
