"""The fetcher under changing sources: an item unregistered mid-cycle is skipped, one registered is due at once;
the query roster follows the source set's searched queries and their weights."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any, cast

import pytest

from services.common.settings import load_settings
from services.common.sources import QuerySource, SourceSet
from services.fetcher.query_roster import QueryRoster
from services.fetcher.settings import Settings as FetcherSettings
from tests.unit.test_fetcher_scheduler import NOON, Item, make


async def test_an_item_unregistered_during_a_cycle_is_not_polled_later_in_it() -> None:
    scheduler, clock, _, _, items, polls = make(names=("a", "b", "c"))
    # The sources change while "a" is polled: "b" is paused, "d" added.
    added = Item("d", clock, polls)

    def change() -> None:
        scheduler.unregister("b")
        scheduler.register(added)

    items[0].on_poll = change
    await scheduler.turn(asyncio.Event())
    assert [name for name, _ in polls] == ["a", "c"]
    assert [item.name for item in scheduler.items] == ["a", "c", "d"]

    polls.clear()
    await scheduler.turn(asyncio.Event())
    assert [name for name, _ in polls] == ["d"], "the new item is due at once, the others at their interval"


def _query(text: str, *, weight: float = 1.0, paused: bool = False) -> QuerySource:
    return QuerySource.model_validate(
        {
            "_id": "q_" + hashlib.sha256(text.encode()).hexdigest()[:16],
            "text": text,
            "weight": weight,
            "paused": paused,
            "created_at": NOON,
            "updated_at": NOON,
        }
    )


async def test_the_query_roster_searches_the_sources_queries_with_their_weights() -> None:
    scheduler, *_ = make(names=())
    # Parts are used only by a query's load and polls; a known query's change needs neither.
    roster = QueryRoster(policy=cast(Any, None), parts=cast(Any, None))
    await roster.follow(SourceSet((_query("cricket"), _query("football"), _query("golf", paused=True))), NOON)
    await roster.prepare(scheduler, NOON)
    assert [item.name for item in scheduler.items] == ["cricket", "football"], "a paused query is not searched"

    await roster.follow(SourceSet((_query("cricket", weight=3.0), _query("football", paused=True))), NOON)
    assert [item.name for item in scheduler.items] == ["cricket"]
    assert [item.plan_inputs().weight for item in scheduler.items] == [3.0], "the weight goes into the plan"


def test_a_fetcher_with_no_query_and_no_channel_is_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sources in MongoDB say what is searched: an empty SEARCH_QUERIES seeds none and is no error."""
    monkeypatch.setenv("SEARCH_QUERIES", " , ")
    monkeypatch.setenv("FOLLOW_CHANNELS", "")
    settings = load_settings(FetcherSettings)
    assert settings.search_queries == []
    assert settings.follow_channels == []
    assert settings.sources_from_env == "first"
