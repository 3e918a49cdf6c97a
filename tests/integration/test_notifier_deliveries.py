"""Webhook deliveries against real RabbitMQ and MongoDB and a real receiver on loopback that checks every
signature: signed with every valid secret, retried through RabbitMQ until the receiver recovers, 410
pauses, other 4xx and redirects dead-letter (and replay-dead brings them back), a host one slow
receiver holds up does not hold up the others, and the address check runs at every delivery."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import pytest
from prometheus_client import CollectorRegistry
from pymongo.asynchronous.database import AsyncDatabase

from services.common.catalogue import REMOVED_AT_FIELD, VIDEOS_COLLECTION
from services.common.saved_searches import WebhookSecret, get_saved_search
from services.common.settings import StackSettings
from services.common.webhook_target import WebhookTargetRefused, resolve_webhook_target
from services.notifier.deliveries import DEAD_REASON_HEADER, delivery_id_for
from services.notifier.delivery_replay import replay_dead
from tests.integration.delivery_support import (
    DeliveryQueues,
    requests_for,
    running_worker,
    saved_search_with_webhook,
)
from tests.integration.webhook_receiver import WebhookReceiver
from tests.waiting import wait_until


@pytest.fixture
async def queues(amqp: aio_pika.abc.AbstractRobustConnection, unique_name: str) -> AsyncIterator[DeliveryQueues]:
    queues = DeliveryQueues(amqp, f"{unique_name}.deliveries")
    yield queues
    await queues.delete()


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver() as receiver:
        yield receiver
    assert receiver.bad_signatures == [], "every request carries a signature the receiver accepts"


def outcome(registry: CollectorRegistry, name: str) -> float:
    return registry.get_sample_value("tubewatch_notifier_deliveries_total", {"outcome": name}) or 0.0


def dead_cause(registry: CollectorRegistry, cause: str) -> float:
    return registry.get_sample_value("tubewatch_notifier_dead_letters_total", {"cause": cause}) or 0.0


def reason(message: aio_pika.abc.AbstractIncomingMessage) -> str:
    value = (message.headers or {}).get(DEAD_REASON_HEADER)
    return value.decode() if isinstance(value, bytes) else str(value)


async def test_every_delivery_is_posted_once_signed_with_each_secret_still_valid(
    queues: DeliveryQueues, receiver: WebhookReceiver, mongo_db: AsyncDatabase[dict[str, Any]]
) -> None:
    now = datetime.now(UTC)
    rotated_out = WebhookSecret(
        value="old-secret-still-valid", created_at=now - timedelta(days=3), expires_at=now + timedelta(hours=20)
    )
    expired = WebhookSecret(
        value="expired-secret", created_at=now - timedelta(days=9), expires_at=now - timedelta(hours=1)
    )
    cricket, _ = await saved_search_with_webhook(
        mongo_db, receiver.url("/hooks/cricket"), secrets=[rotated_out, expired]
    )
    # A receiver that has not switched to the new secret yet still verifies every delivery.
    receiver.add_secret(cricket.id, rotated_out.value)
    chess, chess_secret = await saved_search_with_webhook(mongo_db, receiver.url("/hooks/chess"), name="chess")
    receiver.add_secret(chess.id, chess_secret)
    requests = requests_for(cricket, 20) + requests_for(chess, 20)

    async with running_worker(queues, mongo_db, queues.settings()) as (_, registry):
        await queues.publish(requests)
        await receiver.wait_delivered({r.delivery_id for r in requests})

        # The worker counts a delivery once it has read the receiver's answer, a moment after the
        # receiver recorded the request.
        async def all_counted() -> bool:
            latencies = registry.get_sample_value("tubewatch_notifier_delivery_latency_seconds_count") or 0
            return outcome(registry, "delivered") == latencies == len(requests)

        await wait_until(all_counted, within=10, what="every delivery counted as delivered, with its latency")

    assert len(receiver.requests) == len(requests)  # each once: nothing failed, nothing repeated
    by_id = {r.delivery_id: r for r in receiver.requests}
    names = {cricket.id: "cricket", chess.id: "chess"}
    for request in requests:
        received = by_id[request.delivery_id]
        assert request.delivery_id == delivery_id_for(request.saved_search_id, request.video_id)
        assert received.payload == {
            "delivery_id": request.delivery_id,
            "saved_search": {"id": request.saved_search_id, "name": names[request.saved_search_id]},
            "video": request.video,
        }
        assert received.headers["Content-Type"] == "application/json"
        assert received.headers["X-Tubewatch-Delivery"] == request.delivery_id
        # One v1 per valid secret: the new one and the rotated-out one, never the expired one.
        signatures = [part for part in received.headers["X-Tubewatch-Signature"].split(",") if part.startswith("v1=")]
        assert len(signatures) == (2 if request.saved_search_id == cricket.id else 1)
    assert await queues.counts() == {"work": 0, "dead": 0, "delayed": 0}


async def test_a_video_removed_after_its_delivery_was_queued_is_skipped_and_never_posted(
    queues: DeliveryQueues, receiver: WebhookReceiver, mongo_db: AsyncDatabase[dict[str, Any]]
) -> None:
    saved, secret = await saved_search_with_webhook(mongo_db, receiver.url("/hook"))
    receiver.add_secret(saved.id, secret)
    removed, live = requests_for(saved, 2)
    now = datetime.now(UTC)
    await mongo_db[VIDEOS_COLLECTION].insert_many(
        [{"video_id": removed.video_id, REMOVED_AT_FIELD: now}, {"video_id": live.video_id, REMOVED_AT_FIELD: None}]
    )

    async with running_worker(queues, mongo_db, queues.settings()) as (_, registry):
        await queues.publish([removed, live])
        await receiver.wait_delivered({live.delivery_id})

        async def settled() -> bool:
            return outcome(registry, "skipped") == 1

        await wait_until(settled, within=10, what="the removed video's delivery skipped")

    assert [r.delivery_id for r in receiver.requests] == [live.delivery_id]
    assert await queues.counts() == {"work": 0, "dead": 0, "delayed": 0}


async def test_a_receiver_answering_503_for_60_seconds_gets_every_delivery_once_it_answers_200(
    queues: DeliveryQueues, receiver: WebhookReceiver, mongo_db: AsyncDatabase[dict[str, Any]]
) -> None:
    saved, secret = await saved_search_with_webhook(mongo_db, receiver.url())
    receiver.add_secret(saved.id, secret)
    requests = requests_for(saved, 30)
    loop = asyncio.get_running_loop()
    recovers_at = loop.time() + 60
    receiver.answer = lambda request: 503 if loop.time() < recovers_at else 200

    # Backoff 1 s doubling to 4 s: a retry within 4 s of the recovery.
    async with running_worker(
        queues, mongo_db, queues.settings(webhook_retry_base_seconds=1, webhook_retry_max_seconds=4)
    ) as (_, registry):
        await queues.publish(requests)
        await receiver.wait_delivered({r.delivery_id for r in requests}, within=90)
        assert loop.time() >= recovers_at
        assert outcome(registry, "retried") >= len(requests) * 5  # each waited in RabbitMQ, many times
        assert outcome(registry, "dead_lettered") == 0

    assert {r.status for r in receiver.requests} == {503, 200}
    assert await queues.counts() == {"work": 0, "dead": 0, "delayed": 0}


async def test_a_429_and_a_receiver_that_does_not_answer_in_time_are_retried_until_delivered(
    queues: DeliveryQueues, receiver: WebhookReceiver, mongo_db: AsyncDatabase[dict[str, Any]]
) -> None:
    busy, busy_secret = await saved_search_with_webhook(mongo_db, receiver.url("/busy"), name="busy")
    slow, slow_secret = await saved_search_with_webhook(mongo_db, receiver.url("/slow"), name="slow")
    receiver.add_secret(busy.id, busy_secret)
    receiver.add_secret(slow.id, slow_secret)
    busy_answers = iter([429, 429])
    receiver.answer = lambda request: next(busy_answers, 200) if request.path == "/busy" else 200
    receiver.held_paths.add("/slow")
    requests = requests_for(busy, 1) + requests_for(slow, 1)

    async with running_worker(queues, mongo_db, queues.settings(webhook_timeout_seconds=1)) as (_, registry):
        await queues.publish(requests)
        # The first POST to /slow got no answer within WEBHOOK_TIMEOUT_SECONDS; its retry arrived.
        await receiver.wait_in_flight("/slow", 2)
        receiver.held_paths.clear()
        receiver.release.set()
        await receiver.wait_delivered({r.delivery_id for r in requests})
        await wait_until(lambda: _settled(queues), within=10, what="no delivery left queued")
        assert outcome(registry, "retried") >= 3
        assert outcome(registry, "dead_lettered") == 0

    assert [r.status for r in receiver.requests if r.path == "/busy"] == [429, 429, 200]


async def _settled(queues: DeliveryQueues) -> bool:
    return await queues.counts() == {"work": 0, "dead": 0, "delayed": 0}


async def test_410_pauses_the_webhook_and_no_later_delivery_reaches_it(
    queues: DeliveryQueues, receiver: WebhookReceiver, mongo_db: AsyncDatabase[dict[str, Any]]
) -> None:
    saved, secret = await saved_search_with_webhook(mongo_db, receiver.url("/gone"))
    receiver.add_secret(saved.id, secret)
    receiver.answer = lambda request: 410

    async with running_worker(queues, mongo_db, queues.settings()) as (_, registry):
        await queues.publish(requests_for(saved, 1))

        async def paused() -> bool:
            found = await get_saved_search(mongo_db, saved.id)
            return found is not None and found.webhook is not None and found.webhook.paused

        await wait_until(paused, within=30, what="the webhook paused")
        await queues.publish(requests_for(saved, 5, first=1))

        async def all_skipped() -> bool:
            return outcome(registry, "skipped") == 5

        await wait_until(all_skipped, within=30, what="the 5 later deliveries skipped")
        assert outcome(registry, "gone") == 1

    found = await get_saved_search(mongo_db, saved.id)
    assert found is not None and found.webhook is not None
    assert found.webhook.paused_reason is not None and "410" in found.webhook.paused_reason
    assert len(receiver.requests) == 1
    assert await queues.counts() == {"work": 0, "dead": 0, "delayed": 0}


async def test_a_400_is_dead_lettered_at_once_with_its_reason_and_replay_dead_delivers_it_after_the_fix(
    queues: DeliveryQueues, receiver: WebhookReceiver, mongo_db: AsyncDatabase[dict[str, Any]], stack: StackSettings
) -> None:
    saved, secret = await saved_search_with_webhook(mongo_db, receiver.url())
    receiver.add_secret(saved.id, secret)
    receiver.answer = lambda request: 400
    requests = requests_for(saved, 3)

    async with running_worker(queues, mongo_db, queues.settings()) as (_, registry):
        await queues.publish(requests)
        await queues.wait_dead_letters(3)
        assert dead_cause(registry, "rejected") == 3
        assert outcome(registry, "retried") == 0
        assert len(receiver.requests) == 3  # no retry

        listing = io.StringIO()
        report = await replay_dead(stack.amqp_url, queues.prefix, dry_run=True, limit=None, out=listing)
        assert report.found == 3 and report.replayed == 0
        assert all('"reason": "400 Bad Request"' in line for line in listing.getvalue().splitlines())

        receiver.answer = lambda request: 200  # the receiver is fixed
        report = await replay_dead(stack.amqp_url, queues.prefix, dry_run=False, limit=None, out=io.StringIO())
        assert report.replayed == 3
        await receiver.wait_delivered({r.delivery_id for r in requests})

    assert await queues.counts() == {"work": 0, "dead": 0, "delayed": 0}


async def test_a_redirect_is_not_followed_and_the_delivery_is_dead_lettered(
    queues: DeliveryQueues, receiver: WebhookReceiver, mongo_db: AsyncDatabase[dict[str, Any]]
) -> None:
    saved, secret = await saved_search_with_webhook(mongo_db, receiver.url("/moved"))
    receiver.add_secret(saved.id, secret)
    receiver.answer = lambda request: 302 if request.path == "/moved" else 200

    async with running_worker(queues, mongo_db, queues.settings()) as (_, registry):
        await queues.publish(requests_for(saved, 1))
        await queues.wait_dead_letters(1)
        assert dead_cause(registry, "redirect") == 1

    assert [r.path for r in receiver.requests] == ["/moved"]  # /redirected was never asked
    [dead] = await queues.take_dead_letters()
    assert reason(dead) == "302 Found: redirects are not followed"


async def test_still_failing_after_webhook_retry_hours_is_dead_lettered_with_the_last_error(
    queues: DeliveryQueues, receiver: WebhookReceiver, mongo_db: AsyncDatabase[dict[str, Any]]
) -> None:
    saved, secret = await saved_search_with_webhook(mongo_db, receiver.url())
    receiver.add_secret(saved.id, secret)
    receiver.answer = lambda request: 503
    settings = queues.settings(webhook_retry_hours=2 / 3600)  # two seconds

    async with running_worker(queues, mongo_db, settings) as (_, registry):
        await queues.publish(requests_for(saved, 1))
        await queues.wait_dead_letters(1)
        assert dead_cause(registry, "expired") == 1

    [dead] = await queues.take_dead_letters()
    assert reason(dead).startswith("still failing after ")
    assert reason(dead).endswith("the last: 503 Service Unavailable")
    assert len(receiver.requests) >= 2


async def test_a_slow_receiver_holds_at_most_its_per_host_slots_and_other_hosts_go_on(
    queues: DeliveryQueues, receiver: WebhookReceiver, mongo_db: AsyncDatabase[dict[str, Any]]
) -> None:
    async with WebhookReceiver() as other:
        slow, slow_secret = await saved_search_with_webhook(mongo_db, receiver.url("/slow"), name="slow")
        receiver.add_secret(slow.id, slow_secret)
        receiver.held_paths.add("/slow")
        fast, fast_secret = await saved_search_with_webhook(mongo_db, other.url("/fast"), name="fast")
        other.add_secret(fast.id, fast_secret)
        slow_requests, fast_requests = requests_for(slow, 40), requests_for(fast, 40)

        settings = queues.settings(webhook_timeout_seconds=30, webhook_concurrency_per_host=3)
        async with running_worker(queues, mongo_db, settings):
            await queues.publish(slow_requests)
            await receiver.wait_in_flight("/slow", 3)
            await queues.publish(fast_requests)
            await other.wait_delivered({r.delivery_id for r in fast_requests})
            assert receiver.in_flight["/slow"] == 3  # still held: the fast host never waited for it
            receiver.release.set()
            await receiver.wait_delivered({r.delivery_id for r in slow_requests})

        assert receiver.max_in_flight["/slow"] == 3
        assert other.bad_signatures == []


async def test_a_name_that_turns_to_a_loopback_address_after_saving_is_refused_at_delivery(
    queues: DeliveryQueues, receiver: WebhookReceiver, mongo_db: AsyncDatabase[dict[str, Any]]
) -> None:
    # hooks.example.test stands for a receiver's name whose DNS answer the test controls (an injected
    # resolver: the name is in no allow list, so only its answer decides).
    answer = ["93.184.215.14"]

    async def resolver(host: str, port: int) -> list[str]:
        assert host == "hooks.example.test"
        return list(answer)

    url = f"https://hooks.example.test:{receiver.port}/hook"
    assert await resolve_webhook_target(url, frozenset(), resolver) == answer  # accepted when saved
    saved, secret = await saved_search_with_webhook(mongo_db, url)
    receiver.add_secret(saved.id, secret)
    answer[:] = ["127.0.0.1"]  # the name's answer changes after saving
    with pytest.raises(WebhookTargetRefused):
        await resolve_webhook_target(url, frozenset(), resolver)

    async with running_worker(queues, mongo_db, queues.settings(), allow_hosts=frozenset(), resolver=resolver) as (
        _,
        registry,
    ):
        await queues.publish(requests_for(saved, 1))
        await queues.wait_dead_letters(1)
        assert dead_cause(registry, "refused") == 1

    assert receiver.requests == []
    [dead] = await queues.take_dead_letters()
    assert "127.0.0.1" in reason(dead) and "loopback" in reason(dead)


async def test_a_delivery_connects_to_the_address_its_check_returned(
    queues: DeliveryQueues, receiver: WebhookReceiver, mongo_db: AsyncDatabase[dict[str, Any]]
) -> None:
    # receiver.test is in the allow list and resolves (through the check's resolver alone) to the
    # loopback receiver: no system DNS knows it, so the POST can only have gone to the checked address.
    async def resolver(host: str, port: int) -> list[str]:
        return ["127.0.0.1"] if host == "receiver.test" else []

    saved, secret = await saved_search_with_webhook(mongo_db, f"http://receiver.test:{receiver.port}/hook")
    receiver.add_secret(saved.id, secret)
    requests = requests_for(saved, 2)

    async with running_worker(
        queues, mongo_db, queues.settings(), allow_hosts=frozenset({"receiver.test"}), resolver=resolver
    ):
        await queues.publish(requests)
        await receiver.wait_delivered({r.delivery_id for r in requests})

    assert {r.headers["Host"] for r in receiver.requests} == {f"receiver.test:{receiver.port}"}
