"""/api/v1/admin/plan: what a change of the sources would do to every interval, before making it.

``add_query`` takes texts (normalised as a new query's), ``remove_query`` ids of followed queries,
``reweight_query`` ``<id>:<weight>`` of followed queries (the weight within the sources' bounds),
``add_channel`` and ``remove_channel`` channel ids. The plans come from services/api/what_if.py
over the inputs the fetcher saved; ``now`` is the plan the fetcher polls by.
"""

from __future__ import annotations

from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError
from pymongo.asynchronous.database import AsyncDatabase

from services.api.admin_models import PlanParams
from services.api.appkeys import SOURCES_ADMIN, STORES
from services.api.errors import invalid
from services.api.responses import json_response
from services.api.what_if import compare, rows, search_inputs, summary, units_inputs
from services.common.fetcher_state import (
    BUDGET_COLLECTION,
    BUDGET_ID,
    CHANNEL_STATE_COLLECTION,
    QUERY_STATE_COLLECTION,
    UNITS_BUDGET_ID,
    BudgetDoc,
    ChannelStateDoc,
    QueryStateDoc,
    UnitsBudgetDoc,
)
from services.common.sources import MAX_WEIGHT, MIN_WEIGHT, QuerySource, normalize_query_text, query_text_problem

M = TypeVar("M", bound=BaseModel)


def _parsed(model: type[M], raw: dict[str, Any] | None) -> M | None:
    if raw is None:
        return None
    try:
        return model.model_validate(raw)
    except ValidationError:
        return None


async def _all(db: AsyncDatabase[dict[str, Any]], collection: str, model: type[M]) -> list[M]:
    found = []
    async for raw in db[collection].find({}, {"known_videos": 0, "freshness": 0, "gaps": 0}):
        doc = _parsed(model, raw)
        if doc is not None:
            found.append(doc)
    return found


def _reweights(values: list[str], by_id: dict[str, QuerySource]) -> dict[str, float]:
    """Each ``<id>:<weight>`` as the query's text and its new weight; a 400 naming reweight_query otherwise."""
    weights: dict[str, float] = {}
    for value in values:
        ident, _, number = value.partition(":")
        try:
            weight = float(number)
        except ValueError:
            weight = float("nan")
        if not MIN_WEIGHT <= weight <= MAX_WEIGHT:  # NaN fails too
            raise invalid(
                "reweight_query", f"reweight_query {value!r}: <query id>:<weight {MIN_WEIGHT} to {MAX_WEIGHT}>"
            )
        if ident not in by_id:
            raise invalid("reweight_query", f"reweight_query: no query {ident} is followed")
        weights[by_id[ident].text] = weight
    return weights


async def what_if_plan(request: web.Request, params: PlanParams) -> web.Response:
    db = request.app[STORES].mongo.database
    admin = request.app[SOURCES_ADMIN]
    added_texts = []
    for text in params.add_query:
        normalised = normalize_query_text(text)
        problem = query_text_problem(normalised)
        if problem is not None:
            raise invalid("add_query", f"add_query {text!r}: {problem}")
        added_texts.append(normalised)
    queries = await admin.queries()
    by_id = {q.id: q for q in queries}
    unknown = [q for q in params.remove_query if q not in by_id]
    if unknown:
        raise invalid("remove_query", f"remove_query: no query {unknown[0]} is followed")
    reweights = _reweights(params.reweight_query, by_id)
    budget = _parsed(BudgetDoc, await db[BUDGET_COLLECTION].find_one({"_id": BUDGET_ID}))
    units = _parsed(UnitsBudgetDoc, await db[BUDGET_COLLECTION].find_one({"_id": UNITS_BUDGET_ID}))
    page_cap = budget.max_calls_per_poll if budget and budget.max_calls_per_poll else float("inf")

    search_now, search_after = compare(
        search_inputs(budget, await _all(db, QUERY_STATE_COLLECTION, QueryStateDoc)),
        budget.scheduling if budget else "rate",
        added_texts,
        [by_id[q].text for q in params.remove_query],
        max_calls_per_poll=page_cap,
        reweight=reweights,
    )
    units_now, units_after = compare(
        units_inputs(units, await _all(db, CHANNEL_STATE_COLLECTION, ChannelStateDoc), page_cap),
        "rate",
        params.add_channel,
        params.remove_channel,
        max_calls_per_poll=page_cap,
    )
    ids = {q.text: q.id for q in queries}
    query_names = [*(budget.planned_queries if budget else []), *(q.text for q in queries), *added_texts]
    channel_names = [*(units.planned_channels if units else []), *params.add_channel]
    return json_response(
        {
            "queries": rows(search_now, search_after, query_names, ids),
            "channels": rows(units_now, units_after, channel_names, {}),
            "search": summary(search_now, search_after, budget.updated_at if budget else None),
            "units": summary(units_now, units_after, units.updated_at if units else None),
        }
    )
