"""WebSub push against the emulated hub on loopback, the real broker and MongoDB.

The fetcher runs in this process on the emulator's clock (at real speed, moved by jumps where a
lease or a backoff must pass); the indexer's queue is tapped, so every published message is seen.
"""

from __future__ import annotations

import io
from typing import Any

import aio_pika
from pymongo.asynchronous.database import AsyncDatabase

from services.common.settings import StackSettings
from services.common.timefmt import parse_rfc3339
from services.common.topology import QueueNames
from services.common.websub_state import topic_url
from tests.conftest import free_port
from tests.integration.fetcher_support import EmulatorDrivenClock, queue_tap, running_emulator
from tests.integration.websub_support import (
    ATOM,
    CHANNEL,
    MAX_CHANNEL_INTERVAL,
    START,
    PushRig,
    fetcher_on_port,
    hub_settings,
    inject,
    notice_queues_removed,
    push_env,
    push_rig,
    sign,
)
from tests.unit.test_websub_push import BILLION_LAUGHS, EXTERNAL_ENTITY, entry, tombstone
from tests.waiting import wait_until

# A channel read at most every 10 minutes, so its stretched interval (twice that) is plain to see.
PLANNED = 600


async def stretched(rig: PushRig) -> None:
    """Wait until the channel's next read is further away than its planned interval (push works)."""
    channels = rig.fetcher.leader.others[0]

    async def far() -> bool:
        due = channels.next_cycle_at
        return due is not None and due.timestamp() - rig.emulator.state.now() > PLANNED * 1.5

    await wait_until(far, within=30, what="the channel's reads stretched")


async def test_a_pushed_upload_is_published_via_push_and_a_lost_push_is_found_by_polling(
    stack: StackSettings,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    amqp: aio_pika.abc.AbstractRobustConnection,
) -> None:
    async with push_rig(stack, queue_names, mongo_db, amqp, min_channel_interval_seconds=PLANNED) as rig:
        status = await rig.until_state("subscribed")
        assert status["lease_expires_at"] is not None
        assert (await rig.hub_subscription())["state"] == "active"
        await stretched(rig)
        reads_before = len([c for c in rig.emulator.calls if c.method == "playlistItems"])

        now = rig.emulator.state.now()
        await inject(rig.emulator, "pushedVid01", now + 1, title="pushed within seconds")
        message = await rig.published("pushedVid01", "push")
        assert message["found_by"] == {"source": "channel", "channel_id": CHANNEL, "via": "push", "query": None}
        assert message["title"] == "pushed within seconds"
        # Push was the path: the uploads playlist was not read meanwhile.
        assert len([c for c in rig.emulator.calls if c.method == "playlistItems"]) == reads_before
        videos_calls = [c for c in rig.emulator.calls if c.method == "videos" and "pushedVid01" in c.params["id"]]
        assert len(videos_calls) == 1

        async def counted() -> bool:
            pushed = await rig.subscription()
            return pushed["pushes_accepted"] >= 1 and pushed["last_push_at"] is not None

        await wait_until(counted, within=10, what="the push in the channel's status")

        # The hub loses every push of the channel from now on: the stretched reads still find the upload.
        await rig.emulator.admin("POST", "/admin/websub/config", json={"lose_all_channels": [CHANNEL]})
        await inject(rig.emulator, "lostPush001", rig.emulator.state.now() + 1)
        rig.emulator.advance(MAX_CHANNEL_INTERVAL + 5)
        found = await rig.published("lostPush001", "poll")
        assert found["found_by"]["via"] == "poll"
        assert [m["found_by"]["via"] for m in rig.messages_of("pushedVid01")] == ["push"]


async def test_hostile_pushes_and_verifications_publish_nothing_and_are_counted(
    stack: StackSettings,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    amqp: aio_pika.abc.AbstractRobustConnection,
) -> None:
    async with push_rig(stack, queue_names, mongo_db, amqp) as rig:
        await rig.until_state("subscribed")
        sub_id, secret = await rig.secret()
        client = rig.fetcher.client
        path = f"/websub/youtube/{sub_id}"
        # An old upload of the channel: published only if one of these pushes were taken.
        body = entry("history0001", CHANNEL)

        bad = await client.post(path, data=body, headers={**ATOM, "X-Hub-Signature": "sha1=" + "0" * 40})
        assert bad.status == 202
        unsigned = await client.post(path, data=body, headers=ATOM)
        assert unsigned.status == 202
        other_secret = await client.post(path, data=body, headers=sign("not this subscription's secret", body))
        assert other_secret.status == 202
        unknown = await client.post("/websub/youtube/0123456789abcdef", data=body, headers=sign(secret, body))
        assert unknown.status == 404
        huge = b"<feed>" + b" " * (1024 * 1024) + b"</feed>"
        oversized = await client.post(path, data=io.BytesIO(huge), headers=sign(secret, huge))
        assert oversized.status == 413
        for hostile in (b"<feed><entry>", BILLION_LAUGHS, EXTERNAL_ENTITY):
            answer = await client.post(path, data=hostile, headers=sign(secret, hostile))
            assert answer.status == 202
        other_channel = entry("history0001", "UCsomeoneElsesChannelBBB")
        answer = await client.post(path, data=other_channel, headers=sign(secret, other_channel))
        assert answer.status == 202

        # Verifications nobody asked for: another topic, this topic with nothing pending, no such subscription.
        challenge = {"hub.mode": "subscribe", "hub.challenge": "chosen-by-a-stranger", "hub.lease_seconds": "999"}
        for target, topic in [
            (path, topic_url("UCsomeoneElsesChannelBBB")),
            (path, topic_url(CHANNEL)),
            ("/websub/youtube/0123456789abcdef", topic_url(CHANNEL)),
        ]:
            refused = await client.get(target, params={**challenge, "hub.topic": topic})
            assert refused.status == 404
            assert "chosen-by-a-stranger" not in await refused.text()

        # The fetcher still works: a real push after all that is published, and nothing before it was.
        await inject(rig.emulator, "afterHostil", rig.emulator.state.now() + 1)
        await rig.published("afterHostil", "push")
        assert rig.messages_of("history0001") == []

        expected = {"bad_signature": 3, "oversized": 1, "malformed_xml": 1, "forbidden_xml": 2, "wrong_channel": 1}

        async def counted() -> bool:
            return bool((await rig.subscription())["pushes_ignored"] == expected)

        await wait_until(counted, within=10, what=f"the ignored pushes counted as {expected}")
        metrics = await rig.fetcher.metrics()
        assert 'tubewatch_fetcher_websub_pushes_total{channel="unknown",outcome="unknown_subscription"} 1.0' in metrics
        assert 'tubewatch_fetcher_websub_verifications_total{outcome="refused"} 3.0' in metrics
        assert f'tubewatch_fetcher_websub_subscription_state{{channel="{CHANNEL}",state="subscribed"}} 1.0' in metrics


async def test_a_deleted_video_of_the_channel_is_published_as_one_removal_and_forged_tombstones_as_none(
    stack: StackSettings,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    amqp: aio_pika.abc.AbstractRobustConnection,
) -> None:
    async with push_rig(stack, queue_names, mongo_db, amqp) as rig:
        await rig.until_state("subscribed")
        sub_id, secret = await rig.secret()
        path = f"/websub/youtube/{sub_id}"
        now = rig.emulator.state.now()
        await inject(rig.emulator, "keptVideo01", now + 1)
        await inject(rig.emulator, "goneVideo01", now + 1)
        await rig.published("keptVideo01", "push")
        await rig.published("goneVideo01", "push")
        [token] = {m.lease_token for m in rig.tap.messages if m.video_id == "keptVideo01"}

        # Tombstones of a video of the channel that is not deleted: unsigned, with a bad signature,
        # naming another channel; and a signed one of a video that is not the channel's.
        forged = tombstone("keptVideo01")
        unsigned = await rig.fetcher.client.post(path, data=forged, headers=ATOM)
        bad = await rig.fetcher.client.post(path, data=forged, headers={**ATOM, "X-Hub-Signature": "sha1=" + "0" * 40})
        elsewhere = tombstone("keptVideo01", "UCsomeoneElsesChannelBBB")
        by_other = await rig.fetcher.client.post(path, data=elsewhere, headers=sign(secret, elsewhere))
        stranger = tombstone("strangerV01")
        not_ours = await rig.fetcher.client.post(path, data=stranger, headers=sign(secret, stranger))
        assert (unsigned.status, bad.status, by_other.status, not_ours.status) == (202, 202, 202, 204)

        deleted = await rig.emulator.admin("POST", "/admin/videos/goneVideo01/delete")
        assert deleted["tombstones_queued"] == 1

        def removals() -> list[dict[str, Any]]:
            return [
                m.body | {"lease_token": m.lease_token} for m in rig.tap.messages if m.body.get("kind") == "removed"
            ]

        async def removed() -> bool:
            return bool(removals())

        await wait_until(removed, within=30, what="the removal of goneVideo01")
        await rig.emulator.admin("POST", "/admin/websub/flush")

        async def unknown_counted() -> bool:
            metrics = await rig.fetcher.metrics()
            return f'websub_confirms_total{{channel="{CHANNEL}",outcome="tombstone_unknown"}} 1.0' in metrics

        await wait_until(unknown_counted, within=10, what="the stranger's tombstone dropped and counted")
        [removal] = removals()
        assert removal["video_id"] == "goneVideo01"
        assert parse_rfc3339(removal["removed_at"]) == parse_rfc3339(deleted["deletedAt"])
        assert removal["channel_id"] == CHANNEL
        observed = parse_rfc3339(removal["observed_at"]).timestamp()
        assert parse_rfc3339(deleted["deletedAt"]).timestamp() <= observed <= rig.emulator.state.now()
        assert removal["lease_token"] == token and token is not None
        metrics = await rig.fetcher.metrics()
        assert f'websub_confirms_total{{channel="{CHANNEL}",outcome="removed"}} 1.0' in metrics
        ignored = (await rig.subscription())["pushes_ignored"]
        assert ignored == {"bad_signature": 2, "wrong_channel": 1}


async def test_a_hub_refusing_subscriptions_leaves_polling_on_until_it_recovers(
    stack: StackSettings,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    amqp: aio_pika.abc.AbstractRobustConnection,
) -> None:
    async with push_rig(stack, queue_names, mongo_db, amqp, hub={"subscribe_503_fraction": 1.0}) as rig:
        failing = await rig.until_state("failing")
        assert failing["failures"] >= 1 and failing["last_error"].startswith("503")
        # Polling goes on at the channel's usual interval meanwhile.
        await inject(rig.emulator, "whileRefusd", rig.emulator.state.now() - 1)
        await rig.published("whileRefusd", "poll")

        await rig.emulator.admin("POST", "/admin/websub/config", json={"subscribe_503_fraction": 0.0})
        assert (await rig.subscription())["state"] == "failing"  # no retry before the backoff ends
        rig.emulator.advance(3600)  # past the longest backoff
        await rig.until_state("subscribed")
        assert (await rig.hub_subscription())["state"] == "active"


async def test_a_lease_is_renewed_before_expiry_by_the_next_leader_after_a_restart(
    stack: StackSettings,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    amqp: aio_pika.abc.AbstractRobustConnection,
) -> None:
    """A leads and subscribes; A stops and B takes the lead; A restarts as a standby on the push URL,
    where the hub verifies B's renewal four and a half days on."""
    first_port, second_port = free_port(), free_port()
    async with (
        notice_queues_removed(amqp, queue_names),
        running_emulator(hub_settings(), now=START) as emulator,
        queue_tap(amqp, queue_names) as tap,
    ):
        await inject(emulator, "history0001", START - 7200)
        clock = EmulatorDrivenClock(emulator)

        def env(port: int) -> dict[str, str]:
            return push_env(stack, queue_names, mongo_db.name, emulator, port, callback_port=first_port)

        async def hub_sub() -> dict[str, Any]:
            [sub] = (await emulator.admin("GET", "/admin/websub"))["subscriptions"]
            return dict(sub)

        async with fetcher_on_port(env(first_port), clock) as first:
            await wait_until(_role(first, "leader"), within=30, what="the first fetcher leading")
            async with fetcher_on_port(env(second_port), clock) as second:
                rig = PushRig(emulator, first, tap, mongo_db)
                await rig.until_state("subscribed")
                subscribed = await hub_sub()
                lease_end = subscribed["expires_at"]
                # The first one stops (releasing its lease) and comes back on the same port, standing by.
                await first.client.close()
                await wait_until(_role(second, "leader"), within=30, what="the second fetcher leading")
                async with fetcher_on_port(env(first_port), clock) as restarted:
                    await wait_until(_role(restarted, "standby"), within=30, what="the restarted one standing by")
                    emulator.advance(4.5 * 86400)  # less than a day of the five-day lease left

                    async def renewed() -> bool:
                        return (await hub_sub())["expires_at"] > lease_end

                    await wait_until(renewed, within=30, what="the lease renewed")
                    renewal = await hub_sub()
                    assert renewal["id"] == subscribed["id"] and renewal["state"] == "active"
                    status = (await second.health())["websub"]["channels"][CHANNEL]
                    assert status["state"] == "subscribed"
                    assert status["subscription_id"] == (await rig.secret())[0]


def _role(fetcher: Any, role: str) -> Any:
    async def holds() -> bool:
        return bool((await fetcher.health()).get("role") == role)

    return holds
