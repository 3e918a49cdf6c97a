"""A channel channels.list does not know is asked again once its source document changes, not before.

The fetcher runs in this process against the emulator (tests/integration/test_fetcher_sources.py's
rig); changes are made as the admin API makes them, on this test's own database.
"""

from __future__ import annotations

from typing import Any

import aio_pika
from pymongo.asynchronous.database import AsyncDatabase

from services.common.settings import StackSettings
from services.common.topology import QueueNames
from tests.integration.test_fetcher_sources import ACTOR, CHANNEL_B, Rig, rig
from tests.waiting import wait_until

UNKNOWN = "UC" + "Z" * 22  # no channel of the emulator's world


def _asked(r: Rig) -> int:
    return len([c for c in r.emulator.calls if c.method == "channels" and c.params.get("id") == UNKNOWN])


async def _asked_at_least(r: Rig, count: int, why: str) -> None:
    async def enough() -> bool:
        health = await r.fetcher.health()
        status = health.get("channels", {}).get(UNKNOWN, {}).get("status")
        return _asked(r) >= count and status == "not_found"

    await wait_until(enough, within=30, what=f"channels.list asked about the unknown channel {why}")


async def test_following_an_unknown_channel_again_through_the_sources_asks_channels_list_again(
    stack: StackSettings,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    amqp: aio_pika.abc.AbstractRobustConnection,
) -> None:
    # B followed from the start: the channels' scheduler turns throughout.
    async with rig(stack, queue_names, mongo_db, amqp, poll_interval_seconds=600, follow_channels=CHANNEL_B) as r:
        await r.admin.follow_channel(ACTOR, UNKNOWN, r.now())
        await _asked_at_least(r, 1, "once followed")
        await r.channel_cycles(3)
        assert _asked(r) == 1, "not_found: not asked again while nothing changed"

        revision = await r.revision()
        await r.admin.remove_channel(ACTOR, UNKNOWN, r.now())
        await r.applied_after(revision)
        await r.admin.follow_channel(ACTOR, UNKNOWN, r.now())
        await _asked_at_least(r, 2, "once unfollowed and followed again")

        # A change of its source document while it is still followed (pinned) asks again too.
        await r.admin.patch_channel(ACTOR, UNKNOWN, {"pinned": True}, r.now())
        await _asked_at_least(r, 3, "once pinned")
        await r.channel_cycles(3)
    assert _asked(r) == 3
