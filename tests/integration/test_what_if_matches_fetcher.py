"""The admin API's what-if plan is the plan the running fetcher then polls by (done-when of issue 18).

An in-process fetcher polls two queries against the emulator (its clock frozen and moved by the
test) until it has measured them and saved its planner's inputs; the API over the same database
is asked what adding a query would do, the query is added through the admin API, and the first
plan the fetcher makes with it must give every query the what-if's "after" interval.
"""

from __future__ import annotations

from typing import Any

import aio_pika
from pymongo.asynchronous.database import AsyncDatabase

from services.common.poll_plan import PollPlan
from services.common.settings import StackSettings
from services.common.topology import QueueNames
from services.fetcher.budget import Plan
from services.youtube_emulator.testing import quiet_settings
from tests.integration.admin_support import AUTH, admin_api, json_of
from tests.integration.fetcher_support import (
    EmulatorDrivenClock,
    advance_to_next_cycle,
    epoch,
    fake_key,
    fetcher_env,
    in_process_fetcher,
    queue_tap,
    running_emulator,
)
from tests.waiting import wait_until

DAY_START = epoch("2026-11-24T08:00:01Z")  # a whole quota day ahead
QUERIES = ("cricket", "world cup")


async def test_the_what_if_of_adding_a_query_is_the_plan_the_fetcher_then_uses(
    stack: StackSettings,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    es_alias: str,
    amqp: aio_pika.abc.AbstractRobustConnection,
) -> None:
    settings = quiet_settings(
        search_queries=list(QUERIES),
        # chess uploads so seldom that its first search finds nothing: the what-if cannot know the rate
        # of a query never searched, and plans it as the fetcher does until a poll measures one (zero)
        emulator_query_videos_per_minute={"cricket": 25.0, "world cup": 1.0, "chess": 0.0001},
        emulator_search_calls_per_day=100_000,
    )
    async with (
        running_emulator(settings, now=DAY_START, frozen=True) as emulator,
        queue_tap(amqp, queue_names),
    ):
        env = fetcher_env(
            stack,
            queue_names,
            mongo_db.name,
            emulator,
            youtube_api_keys=fake_key("what-if"),
            search_queries=",".join(QUERIES),
            poll_interval_seconds=10,
            initial_lookback_seconds=3600,
            lease_ttl_seconds=3600,  # the frozen clock is the lease's clock too
            youtube_search_calls_per_day=3500,  # tight enough that intervals sit between the bounds
        )
        async with in_process_fetcher(env, EmulatorDrivenClock(emulator)) as fetcher:
            for _ in range(12):  # measured rates: the plan is the rate-weighted one, not the first guess
                await advance_to_next_cycle(emulator, fetcher)
            budget = fetcher.scheduler.budget
            plans: list[Plan] = []
            refresh = budget.refresh

            def recording(*args: Any, **kwargs: Any) -> Plan:
                plan = refresh(*args, **kwargs)
                plans.append(plan)
                return plan

            budget.refresh = recording  # type: ignore[method-assign]
            async with admin_api(stack, mongo_db, es_alias, search_queries=",".join(QUERIES)) as api:
                what_if = await json_of(
                    await api.get("/api/v1/admin/plan", params={"add_query": "chess"}, headers=AUTH), 200
                )
                await json_of(await api.post("/api/v1/admin/queries", json={"text": "chess"}, headers=AUTH), 201)

            def planned_with_chess() -> PollPlan | None:
                return next((p.polls for p in plans if "chess" in p.polls.by_name), None)

            async def planned() -> bool:
                return planned_with_chess() is not None

            # no clock move: the fetcher wakes for the change and plans the new query at once
            await wait_until(planned, within=30, what="a plan with chess")
    after = {row["name"]: row["after"]["interval_seconds"] for row in what_if["queries"] if row["after"]}
    used = planned_with_chess()
    assert used is not None
    assert set(after) == {"cricket", "world cup", "chess"} == set(used.by_name)
    for name, item in used.by_name.items():
        assert abs(item.interval - after[name]) <= 0.05 * after[name], (name, item.interval, after)
    # the measured queries' intervals are the planner's, not two plans pinned at a bound
    assert 10 < after["cricket"] < after["world cup"] < 3600, what_if
