"""Harness for the fetcher's WebSub push: the emulator's hub on loopback, in-process fetchers on known ports.

A fetcher's push endpoint must be reachable at the WEBSUB_CALLBACK_URL it subscribes with, so each
fetcher here listens on a port chosen first (and the same port again after a restart). The notice
queue beside the test's exchange is deleted after the test.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aio_pika
from aiohttp.test_utils import TestClient, TestServer
from pymongo.asynchronous.database import AsyncDatabase

from services.common.settings import StackSettings
from services.common.topology import QueueNames
from services.common.websub_state import WEBSUB_COLLECTION
from services.fetcher.app import create_app
from services.fetcher.websub_notices import notice_queue_name
from services.youtube_emulator.testing import quiet_settings
from services.youtube_emulator.timestamps import format_timestamp
from tests.conftest import free_port
from tests.integration.fetcher_support import (
    EmulatorDrivenClock,
    InProcessFetcher,
    QueueTap,
    RunningEmulator,
    epoch,
    fake_key,
    fetcher_env,
    fetcher_settings,
    queue_tap,
    running_emulator,
)
from tests.waiting import wait_until

START = epoch("2026-11-24T18:00:00Z")
CHANNEL = "UCfollowedChannelAAAAAAA"
# Long enough that no read of a stretched channel falls inside a test unless the test moves the clock.
MAX_CHANNEL_INTERVAL = 3600
ATOM = {"Content-Type": "application/atom+xml"}


def hub_settings(**overrides: Any) -> Any:
    """The emulator with a quick, faultless hub (a test sets faults through /admin/websub/config)."""
    return quiet_settings(
        emulator_videos_per_minute=0.5,
        emulator_backfill_seconds=0,
        emulator_search_calls_per_day=1_000_000,
        emulator_units_per_day=1_000_000,
        emulator_websub_lost_fraction=0.0,
        emulator_websub_delay_min_seconds=0.5,
        emulator_websub_delay_max_seconds=1.0,
        emulator_websub_verify_delay_seconds=0.0,
        **overrides,
    )


async def inject(emulator: RunningEmulator, video_id: str, published: float, title: str | None = None) -> None:
    body = {
        "video_id": video_id,
        "channel_id": CHANNEL,
        "channel": "The Followed Channel",
        "title": title or f"upload {video_id}",
        "published_at": format_timestamp(published),
    }
    await emulator.admin("POST", "/admin/videos", json=body)


def sign(secret: str, body: bytes) -> dict[str, str]:
    """The headers of a push signed as the hub signs it: Atom, ``X-Hub-Signature`` under ``secret``."""
    return {**ATOM, "X-Hub-Signature": "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()}


def push_env(
    stack: StackSettings,
    queue_names: QueueNames,
    database: str,
    emulator: RunningEmulator,
    port: int,
    *,
    callback_port: int | None = None,
    **overrides: object,
) -> dict[str, str]:
    """A fetcher following CHANNEL with push on, listening on ``port`` (callbacks to ``callback_port``)."""
    settings: dict[str, object] = {
        "fetcher_port": port,
        "search_queries": "",
        "youtube_api_keys": fake_key("websub"),
        "follow_channels": CHANNEL,
        "youtube_units_per_day": 1_000_000,
        "min_channel_interval_seconds": 1,
        "max_channel_interval_seconds": MAX_CHANNEL_INTERVAL,
        "initial_lookback_seconds": 600,
        "websub_callback_url": f"http://127.0.0.1:{callback_port or port}",
        "websub_hub_url": f"{emulator.url}/subscribe",
    }
    return fetcher_env(stack, queue_names, database, emulator, **{**settings, **overrides})


@asynccontextmanager
async def fetcher_on_port(env: dict[str, str], clock: EmulatorDrivenClock) -> AsyncIterator[InProcessFetcher]:
    app = create_app(fetcher_settings(env), clock)
    server = TestServer(app, host="127.0.0.1", port=int(env["FETCHER_PORT"]))
    async with TestClient(server) as client:
        yield InProcessFetcher(app, client)


@dataclass
class PushRig:
    emulator: RunningEmulator
    fetcher: InProcessFetcher
    tap: QueueTap
    db: AsyncDatabase[dict[str, Any]]

    async def subscription(self) -> dict[str, Any]:
        """The channel's subscription as the leader's /healthz shows it ({} before there is one)."""
        health = await self.fetcher.health()
        channel: dict[str, Any] = health.get("websub", {}).get("channels", {}).get(CHANNEL, {})
        return channel

    async def until_state(self, state: str, within: float = 30) -> dict[str, Any]:
        async def reached() -> bool:
            return (await self.subscription()).get("state") == state

        await wait_until(reached, within=within, what=f"the channel's subscription {state}")
        return await self.subscription()

    async def secret(self) -> tuple[str, str]:
        """The subscription's id and secret, read where the fetcher keeps them."""
        doc = await self.db[WEBSUB_COLLECTION].find_one({"channel_id": CHANNEL})
        assert doc is not None
        return str(doc["_id"]), str(doc["secret"])

    async def hub_subscription(self) -> dict[str, Any]:
        listed = await self.emulator.admin("GET", "/admin/websub")
        [sub] = [s for s in listed["subscriptions"] if s["channel_id"] == CHANNEL]
        return dict(sub)

    def messages_of(self, video_id: str) -> list[dict[str, Any]]:
        return [m.body for m in self.tap.messages if m.video_id == video_id]

    async def published(self, video_id: str, via: str, within: float = 30) -> dict[str, Any]:
        async def seen() -> bool:
            return any(m["found_by"].get("via") == via for m in self.messages_of(video_id))

        await wait_until(seen, within=within, what=f"{video_id} published via {via}")
        return next(m for m in self.messages_of(video_id) if m["found_by"].get("via") == via)


@asynccontextmanager
async def notice_queues_removed(
    amqp: aio_pika.abc.AbstractRobustConnection, queue_names: QueueNames
) -> AsyncIterator[None]:
    try:
        yield
    finally:
        name = notice_queue_name(queue_names.exchange)
        channel = await amqp.channel()
        for queue in (name, f"{name}.dead"):
            await channel.queue_delete(queue)
        await channel.exchange_delete(f"{name}.dead")
        await channel.close()


@asynccontextmanager
async def push_rig(
    stack: StackSettings,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    amqp: aio_pika.abc.AbstractRobustConnection,
    *,
    hub: dict[str, Any] | None = None,
    now: float = START,
    **fetcher_overrides: object,
) -> AsyncIterator[PushRig]:
    """The emulator knowing CHANNEL (one old upload), its hub configured with ``hub``, a tap, one fetcher;
    the emulator's clock (the fetcher's too) starts at ``now``."""
    async with (
        notice_queues_removed(amqp, queue_names),
        running_emulator(hub_settings(), now=now) as emulator,
        queue_tap(amqp, queue_names) as tap,
    ):
        await inject(emulator, "history0001", now - 7200)
        if hub:
            await emulator.admin("POST", "/admin/websub/config", json=hub)
        env = push_env(
            stack, queue_names, mongo_db.name, emulator, free_port(), callback_port=None, **fetcher_overrides
        )
        async with fetcher_on_port(env, EmulatorDrivenClock(emulator)) as fetcher:
            yield PushRig(emulator, fetcher, tap, mongo_db)
