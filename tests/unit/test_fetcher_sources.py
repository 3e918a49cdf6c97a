"""The scheduler under changing sources: an item unregistered mid-cycle is skipped, one registered is due at once."""

from __future__ import annotations

import asyncio

from tests.unit.test_fetcher_scheduler import Item, make


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
