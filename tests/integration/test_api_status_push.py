"""A followed channel's WebSub push in /api/v1/status, as a running fetcher saved it in MongoDB.

The fetcher runs in this process against the emulated hub (its clock at the real time, so that the
API, which reads the real clock, judges the lease as the fetcher does); the API reads the
subscription documents the fetcher wrote, never their secret.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import aio_pika
from aiohttp.test_utils import TestClient, TestServer
from pymongo.asynchronous.database import AsyncDatabase

from services.api.app import create_app
from services.api.channel_status import PushStatus
from services.common.fetcher_state import as_utc
from services.common.settings import StackSettings
from services.common.topology import QueueNames
from services.common.websub_state import WEBSUB_COLLECTION
from tests.integration.api_support import api_settings
from tests.integration.websub_support import CHANNEL, inject, push_rig, sign
from tests.unit.test_websub_push import entry
from tests.waiting import wait_until


@asynccontextmanager
async def status_api(
    stack: StackSettings, queue_names: QueueNames, database: str, es_alias: str
) -> AsyncIterator[TestClient[Any, Any]]:
    settings = api_settings(
        mongodb_url=stack.mongodb_url,
        mongodb_database=database,
        elasticsearch_url=stack.elasticsearch_url,
        elasticsearch_index=es_alias,
        amqp_url=stack.amqp_url,
        amqp_exchange=queue_names.exchange,
        amqp_queue=queue_names.queue,
    )
    async with TestClient(TestServer(create_app(settings))) as api:
        yield api


async def channel_push(api: TestClient[Any, Any]) -> dict[str, Any] | None:
    """The followed channel's ``push`` as /api/v1/status shows it (None until it is listed with one)."""
    response = await api.get("/api/v1/status")
    assert response.status == 200, await response.text()
    followed = (await response.json())["fetcher"]["followed_channels"]
    listed = [c["push"] for c in followed if c["channel_id"] == CHANNEL]
    return listed[0] if listed else None


def moment(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


async def until_push(api: TestClient[Any, Any], check: Any, what: str) -> dict[str, Any]:
    async def reached() -> bool:
        push = await channel_push(api)
        return push is not None and bool(check(push))

    await wait_until(reached, within=30, what=what)
    push = await channel_push(api)
    assert push is not None
    return push


async def test_status_shows_a_subscribed_channels_lease_last_push_and_ignored_pushes(
    stack: StackSettings,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    es_alias: str,
    amqp: aio_pika.abc.AbstractRobustConnection,
) -> None:
    async with (
        push_rig(stack, queue_names, mongo_db, amqp, now=time.time()) as rig,
        status_api(stack, queue_names, mongo_db.name, es_alias) as api,
    ):
        await rig.until_state("subscribed")
        sub_id, secret = await rig.secret()
        await inject(rig.emulator, "pushedVid01", rig.emulator.state.now() + 1)
        await rig.published("pushedVid01", "push")
        body = entry("history0001")
        path = f"/websub/youtube/{sub_id}"
        bad = await rig.fetcher.client.post(path, data=body, headers=sign("not the secret", body))
        wrong = await rig.fetcher.client.post(path, data=b"{}", headers={"Content-Type": "application/json"})
        assert (bad.status, wrong.status) == (202, 202)

        counted = {"bad_signature": 1, "content_type": 1}
        push = await until_push(
            api, lambda p: p["pushes_ignored"] == counted and p["pushes_accepted"] == 1, "the pushes counted"
        )
        saved = await mongo_db[WEBSUB_COLLECTION].find_one({"channel_id": CHANNEL})
        assert saved is not None
        response_text = await (await api.get("/api/v1/status")).text()

    PushStatus.model_validate(push)
    assert push["state"] == "subscribed"
    assert moment(push["lease_expires_at"]) == as_utc(saved["lease_expires_at"])
    expires_at = moment(push["lease_expires_at"])
    assert expires_at is not None and expires_at > datetime.now(UTC)
    assert push["last_push_at"] is not None and moment(push["last_push_at"]) == as_utc(saved["last_push_at"])
    assert (push["failures"], push["next_attempt_at"], push["last_error"]) == (0, None, None)
    assert secret not in response_text


async def test_status_shows_a_channel_whose_subscription_the_hub_refuses_as_failing(
    stack: StackSettings,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    es_alias: str,
    amqp: aio_pika.abc.AbstractRobustConnection,
) -> None:
    async with (
        push_rig(stack, queue_names, mongo_db, amqp, hub={"subscribe_503_fraction": 1.0}, now=time.time()),
        status_api(stack, queue_names, mongo_db.name, es_alias) as api,
    ):
        push = await until_push(api, lambda p: p["state"] == "failing", "the subscription failing")

    assert push["failures"] >= 1
    assert push["last_error"].startswith("503")
    retry_at = moment(push["next_attempt_at"])
    assert retry_at is not None and retry_at > datetime.now(UTC)
    assert (push["lease_expires_at"], push["last_push_at"], push["pushes_accepted"]) == (None, None, 0)
