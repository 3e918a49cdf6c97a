"""The what-if plan: the intervals now are the fetcher's plan, and after a change they are the plan the fetcher
would make over the changed set (plan_from_state over the same saved inputs), within 5%."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from elasticsearch import AsyncElasticsearch
from pymongo.asynchronous.database import AsyncDatabase

from services.api.admin_models import WhatIfPlan
from services.common.fetcher_state import (
    BUDGET_COLLECTION,
    QUERY_STATE_COLLECTION,
    BudgetDoc,
    PollStatsDoc,
    QueryStateDoc,
    plan_from_state,
)
from services.common.poll_stats import PollStats
from services.common.settings import StackSettings
from services.common.timefmt import utc_now
from tests.integration.admin_support import AUTH, admin_api, json_of
from tests.integration.api_support import prepare_stores


def _stats(videos: int) -> PollStatsDoc:
    stats = PollStats()
    stats.record(videos=videos, calls=1, seconds=3600, cost_decay=0.9)
    return PollStatsDoc.of(stats)


async def test_the_what_if_plan_is_the_planners_plan_over_the_changed_set(
    stack: StackSettings, mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> None:
    await prepare_stores(mongo_db, es, es_alias)
    now = utc_now()
    budget = BudgetDoc(
        calls_left_today=100,
        effective_interval_seconds=600,
        reset_at=now + timedelta(hours=12),
        keys_live=1,
        keys_parked=0,
        keys_disabled=0,
        updated_at=now,
        poll_interval_seconds=10,
        max_query_interval_seconds=7200,
        max_calls_per_poll=20,
        planned_queries=["cricket", "chess"],
    )
    states = [
        QueryStateDoc(query="cricket", poll_stats=_stats(40)),
        QueryStateDoc(query="chess", poll_stats=_stats(4)),
    ]
    await mongo_db[BUDGET_COLLECTION].insert_one(budget.model_dump(by_alias=True))
    await mongo_db[QUERY_STATE_COLLECTION].insert_many([s.model_dump(by_alias=True) for s in states])
    async with admin_api(stack, mongo_db, es_alias, search_queries="cricket,chess") as api:
        queries = (await json_of(await api.get("/api/v1/admin/queries", headers=AUTH), 200))["items"]
        chess_id = next(q["id"] for q in queries if q["text"] == "chess")
        answer = await api.get(
            "/api/v1/admin/plan", params={"add_query": " world cup ", "remove_query": chess_id}, headers=AUTH
        )
        plan = WhatIfPlan.model_validate(await json_of(answer, 200))
        unknown = await api.get("/api/v1/admin/plan", params={"remove_query": "q_0000000000000000"}, headers=AUTH)
        assert (await json_of(unknown, 400))["error"]["parameter"] == "remove_query"

    now_plan = plan_from_state(budget, states)
    after_plan = plan_from_state(
        budget.model_copy(update={"planned_queries": ["cricket", "world cup"]}),
        [states[0], QueryStateDoc(query="world cup")],
    )
    assert now_plan is not None and after_plan is not None
    rows = {row.name: row for row in plan.queries}
    assert set(rows) == {"cricket", "chess", "world cup"}
    assert rows["chess"].id == chess_id and rows["chess"].after is None
    assert rows["world cup"].now is None and rows["world cup"].id is None
    for name in ("cricket", "chess"):
        figures = rows[name].now
        assert figures is not None
        assert abs(figures.interval_seconds - now_plan.by_name[name].interval) <= 0.05 * now_plan.by_name[name].interval
    for name in ("cricket", "world cup"):
        figures = rows[name].after
        assert figures is not None
        expected = after_plan.by_name[name].interval
        assert abs(figures.interval_seconds - expected) <= 0.05 * expected, name
    # Removing the slow query leaves more calls to the others: cricket is polled more often after.
    assert rows["cricket"].after is not None and rows["cricket"].now is not None
    assert rows["cricket"].after.interval_seconds <= rows["cricket"].now.interval_seconds
    assert plan.search.based_on is not None
    assert plan.units.based_on is None and plan.channels == []


async def test_a_fresh_install_has_a_what_if_of_nothing_measured(
    stack: StackSettings, mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> None:
    await prepare_stores(mongo_db, es, es_alias)
    async with admin_api(stack, mongo_db, es_alias) as api:
        answer = await api.get("/api/v1/admin/plan", params={"add_channel": "UC" + "q" * 22}, headers=AUTH)
        plan = WhatIfPlan.model_validate(await json_of(answer, 200))
    assert [(row.name, row.now, row.after) for row in plan.channels] == [("UC" + "q" * 22, None, None)]
    assert plan.search.mean_delay_now_seconds is None and plan.search.based_on is None


async def test_the_what_if_of_a_reweight_is_the_planners_plan_with_the_new_weight(
    stack: StackSettings, mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> None:
    await prepare_stores(mongo_db, es, es_alias)
    now = utc_now()
    budget = BudgetDoc(
        calls_left_today=100,
        effective_interval_seconds=600,
        reset_at=now + timedelta(hours=12),
        keys_live=1,
        keys_parked=0,
        keys_disabled=0,
        updated_at=now,
        poll_interval_seconds=10,
        max_query_interval_seconds=7200,
        max_calls_per_poll=20,
        planned_queries=["cricket", "chess"],
    )
    states = [
        QueryStateDoc(query="cricket", poll_stats=_stats(40)),
        QueryStateDoc(query="chess", poll_stats=_stats(4)),
    ]
    await mongo_db[BUDGET_COLLECTION].insert_one(budget.model_dump(by_alias=True))
    await mongo_db[QUERY_STATE_COLLECTION].insert_many([s.model_dump(by_alias=True) for s in states])
    async with admin_api(stack, mongo_db, es_alias, search_queries="cricket,chess") as api:
        queries = (await json_of(await api.get("/api/v1/admin/queries", headers=AUTH), 200))["items"]
        chess_id = next(q["id"] for q in queries if q["text"] == "chess")
        answer = await api.get("/api/v1/admin/plan", params={"reweight_query": f"{chess_id}:4"}, headers=AUTH)
        plan = WhatIfPlan.model_validate(await json_of(answer, 200))
        for bad in (f"{chess_id}:40", f"{chess_id}:heavy", chess_id, "q_0000000000000000:2"):
            refused = await api.get("/api/v1/admin/plan", params={"reweight_query": bad}, headers=AUTH)
            error = (await json_of(refused, 400))["error"]
            assert (error["code"], error["parameter"]) == ("invalid_parameter", "reweight_query"), bad

    after_plan = plan_from_state(budget, [states[0], states[1].model_copy(update={"weight": 4.0})])
    assert after_plan is not None
    rows = {row.name: row for row in plan.queries}
    for name in ("cricket", "chess"):
        figures = rows[name].after
        assert figures is not None
        expected = after_plan.by_name[name].interval
        assert abs(figures.interval_seconds - expected) <= 0.05 * expected, name
    # a heavier chess takes calls from cricket: chess polled more often, cricket less
    chess, cricket = rows["chess"], rows["cricket"]
    assert chess.now is not None and chess.after is not None and cricket.now is not None and cricket.after is not None
    assert chess.after.interval_seconds < chess.now.interval_seconds
    assert cricket.after.interval_seconds > cricket.now.interval_seconds
