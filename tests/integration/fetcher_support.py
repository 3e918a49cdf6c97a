"""Test harness for the fetcher: an emulator on a real port that records every API call, the
fetcher in-process (driven by the emulator's clock) or as a real process, and a queue tap.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.typedefs import Handler

from services.common.settings import PROJECT_ROOT, StackSettings
from services.common.topology import QueueNames, declare_index_queue
from services.fetcher.app import LEADER, SCHEDULER, create_app
from services.fetcher.leader import Leader
from services.fetcher.publisher import FENCING_HEADER
from services.fetcher.scheduler import Scheduler
from services.fetcher.settings import Settings as FetcherSettings
from services.youtube_emulator.app import create_app as create_emulator_app
from services.youtube_emulator.clock import Clock as EmulatorClock
from services.youtube_emulator.settings import Settings as EmulatorSettings
from services.youtube_emulator.state import STATE, EmulatorState
from services.youtube_emulator.timestamps import parse_rfc3339
from tests.conftest import free_port


def fake_key(tag: str) -> str:
    """Shaped like a real key (``AIza`` + 35 characters) and plainly fake; distinct per ``tag``."""
    return "AIzaFAKE" + hashlib.sha256(tag.encode()).hexdigest()[:31]


def epoch(text: str) -> float:
    value = parse_rfc3339(text)
    assert value is not None, text
    return value


# The emulator -------------------------------------------------------------------------------


@dataclass
class RecordedCall:
    method: str  # search or videos
    key: str | None
    params: dict[str, str]  # without the key
    at: float  # the emulator's clock
    monotonic: float  # the test process's monotonic clock
    status: int = 0
    reasons: tuple[str, ...] = ()
    item_ids: tuple[str, ...] = ()

    @property
    def window_and_page(self) -> tuple[str | None, str | None, str | None, str | None]:
        return (
            self.params.get("q"),
            self.params.get("publishedAfter"),
            self.params.get("publishedBefore"),
            self.params.get("pageToken"),
        )


# An intercept may answer a call in the emulator's place (redirects, stale tokens, odd bodies).
Intercept = Callable[[web.Request, list["RecordedCall"]], web.StreamResponse | None]


@dataclass
class RunningEmulator:
    url: str
    api_url: str
    state: EmulatorState
    calls: list[RecordedCall]
    client: TestClient[web.Request, web.Application]
    intercept: Intercept | None = None

    def calls_with(self, key: str) -> list[RecordedCall]:
        return [call for call in self.calls if call.key == key]

    async def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.client.request(method, path, **kwargs)
        assert response.status < 300, await response.text()
        return await response.json()

    async def visible(self, query: str = "cricket") -> dict[str, dict[str, Any]]:
        body = await self.admin("GET", "/admin/visible", params={"query": query})
        return {video["videoId"]: video for video in body["videos"]}

    def set_clock(self, moment: float, *, frozen: bool | None = None) -> None:
        self.state.clock.set(moment, frozen=frozen)

    def advance(self, seconds: float) -> None:
        self.state.clock.advance(seconds)


def _recorder(emulator: dict[str, RunningEmulator]) -> Any:
    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/youtube/v3/"):
            return await handler(request)
        running = emulator["it"]
        params = {k: v for k, v in request.query.items() if k != "key"}
        call = RecordedCall(
            method=request.path.rsplit("/", 1)[-1],
            key=request.headers.get("X-Goog-Api-Key") or request.query.get("key"),
            params=params,
            at=running.state.now(),
            monotonic=time.monotonic(),
        )
        running.calls.append(call)
        response = running.intercept(request, running.calls) if running.intercept else None
        if response is None:
            response = await handler(request)
        call.status = response.status
        if isinstance(response, web.Response) and isinstance(response.body, bytes):
            try:
                body = json.loads(response.body)
            except ValueError:
                body = None
            if isinstance(body, dict) and isinstance(body.get("error"), dict):
                call.reasons = tuple(str(e.get("reason")) for e in body["error"].get("errors", []))
            elif isinstance(body, dict) and isinstance(body.get("items"), list):
                call.item_ids = tuple(_item_id(item) for item in body["items"])
        return response

    return record


def _item_id(item: Any) -> str:
    """An item's video id as text; "None" where a hostile answer dropped or mangled it."""
    ident = item.get("id") if isinstance(item, dict) else None
    return str(ident.get("videoId")) if isinstance(ident, dict) else str(ident)


@asynccontextmanager
async def running_emulator(
    settings: EmulatorSettings, *, now: float | None = None, frozen: bool = False
) -> AsyncIterator[RunningEmulator]:
    """The emulator on a free loopback port, recording every API call; ``now`` sets its clock."""
    holder: dict[str, RunningEmulator] = {}
    app = create_emulator_app(settings, EmulatorClock())
    app.middlewares.append(_recorder(holder))
    state = app[STATE]
    state.reset(now=now, frozen=frozen)
    server = TestServer(app, host="127.0.0.1", port=free_port())
    async with TestClient(server) as client:
        url = str(server.make_url("")).rstrip("/")
        holder["it"] = RunningEmulator(url=url, api_url=f"{url}/youtube/v3", state=state, calls=[], client=client)
        yield holder["it"]


class EmulatorDrivenClock:
    """The fetcher's clock reading the emulator's: a test moves time for both at once."""

    def __init__(self, emulator: RunningEmulator) -> None:
        self._emulator = emulator

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._emulator.state.clock.now(), tz=UTC)

    async def sleep_until(self, moment: datetime) -> None:
        left = moment.timestamp() - self._emulator.state.clock.now()
        while left > 0:
            # Polled: a test moves this clock by jumps, and a jump must wake the sleeper.
            await asyncio.sleep(0.005)
            left = moment.timestamp() - self._emulator.state.clock.now()


# The fetcher --------------------------------------------------------------------------------


def fetcher_env(
    stack: StackSettings, queue_names: QueueNames, database: str, emulator: RunningEmulator, **overrides: object
) -> dict[str, str]:
    """Environment for a fetcher against the test's emulator, queue and database."""
    env = {
        "YOUTUBE_API_URL": emulator.api_url,
        "SEARCH_QUERIES": "cricket",
        "AMQP_URL": stack.amqp_url,
        "AMQP_EXCHANGE": queue_names.exchange,
        "AMQP_QUEUE": queue_names.queue,
        "MONGODB_URL": stack.mongodb_url,
        "MONGODB_DATABASE": database,
        "FETCHER_PORT": str(free_port()),
        "POLL_INTERVAL_SECONDS": "0.5",
        "YOUTUBE_SEARCH_CALLS_PER_DAY": "1000000",
        "YOUTUBE_RETRY_MAX_SECONDS": "0.2",
        "YOUTUBE_REQUEST_TIMEOUT_SECONDS": "5",
        # The shared MongoDB can take seconds to answer while other suites run: a short TTL would
        # make the leader stand down and re-take its lease all the time.
        "LEASE_TTL_SECONDS": "10",
        "LOG_LEVEL": "INFO",
        # Search alone unless a test follows channels: auto-follow would read channels it found.
        "AUTO_FOLLOW_CHANNELS": "0",
    }
    env.update({name.upper(): str(value) for name, value in overrides.items()})
    return env


def fetcher_settings(env: dict[str, str]) -> FetcherSettings:
    return FetcherSettings(**{name.lower(): value for name, value in env.items()})  # type: ignore[arg-type]


@dataclass
class InProcessFetcher:
    app: web.Application
    client: TestClient[web.Request, web.Application]

    @property
    def leader(self) -> Leader:
        return self.app[LEADER]

    @property
    def scheduler(self) -> Scheduler:
        return self.app[SCHEDULER]

    async def health(self) -> dict[str, Any]:
        body: dict[str, Any] = await (await self.client.get("/healthz")).json()
        return body

    async def metrics(self) -> str:
        return await (await self.client.get("/metrics")).text()


async def advance_to_next_cycle(emulator: RunningEmulator, fetcher: InProcessFetcher, *, within: float = 120) -> None:
    """Wait until the fetcher sleeps, move the frozen clock to the moment it wakes, wait for that cycle."""
    scheduler = fetcher.scheduler
    await _until(lambda: scheduler.next_cycle_at is not None or scheduler.resume_at is not None, within, "a sleep")
    wake = scheduler.next_cycle_at or scheduler.resume_at
    assert wake is not None
    cycles = scheduler.cycles
    emulator.set_clock(wake.timestamp() + 0.001, frozen=True)
    # the cycle ran and the fetcher sleeps again (or every key is parked until the reset)
    await _until(
        lambda: scheduler.cycles > cycles and (scheduler.next_cycle_at is not None or scheduler.resume_at is not None),
        within,
        "the next cycle",
    )


async def _until(condition: Callable[[], bool], within: float, what: str) -> None:
    """Polled finely: the scheduler's own attributes are the signal, and a cycle is milliseconds of work."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            raise TimeoutError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.002)


@asynccontextmanager
async def in_process_fetcher(env: dict[str, str], clock: EmulatorDrivenClock) -> AsyncIterator[InProcessFetcher]:
    app = create_app(fetcher_settings(env), clock)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield InProcessFetcher(app, client)


@dataclass
class FetcherProcess:
    env: dict[str, str]
    log: Path
    process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.env['FETCHER_PORT']}"

    async def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                str(PROJECT_ROOT / ".venv/bin/python"),
                "-m",
                "services.fetcher",
                cwd=PROJECT_ROOT,
                env={**_base_env(), **self.env},
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
            )

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    async def wait(self, within: float = 60) -> int:
        assert self.process is not None
        return await asyncio.wait_for(self.process.wait(), timeout=within)

    async def stop(self) -> None:
        """Make sure the process is gone (SIGCONT first: a stopped process ignores SIGTERM until then)."""
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGCONT)
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), timeout=30)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()

    async def get(self, path: str) -> tuple[int, str]:
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
                session.get(self.url + path) as response,
            ):
                return response.status, await response.text()
        except (aiohttp.ClientError, TimeoutError):
            return 0, ""

    async def health(self) -> dict[str, Any]:
        status, text = await self.get("/healthz")
        return json.loads(text) if status == 200 else {}


def _base_env() -> dict[str, str]:
    # The test's own environment minus anything that would configure the fetcher behind our back.
    prefixes = (
        *("YOUTUBE_", "EMULATOR_", "SEARCH_", "POLL_", "LEASE_", "LATE_", "OVERLAP_", "INITIAL_", "MAX_PAGES"),
        *("FOLLOW_", "AUTO_FOLLOW_", "UNITS_", "MIN_CHANNEL_", "MAX_CHANNEL_"),
    )
    return {k: v for k, v in os.environ.items() if not k.upper().startswith(prefixes)}


# The queue ----------------------------------------------------------------------------------


@dataclass
class Delivered:
    video_id: str
    query: str
    lease_token: int | None
    body: dict[str, Any]
    monotonic: float


@dataclass
class QueueTap:
    """Consumes the indexer's queue (declared like the fetcher does) and keeps every message."""

    messages: list[Delivered] = field(default_factory=list)

    def counts(self) -> Counter[str]:
        return Counter(m.video_id for m in self.messages)

    def ids(self) -> set[str]:
        return {m.video_id for m in self.messages}

    async def on_message(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        body = json.loads(message.body)
        token = message.headers.get(FENCING_HEADER)
        self.messages.append(
            Delivered(
                video_id=str(message.message_id),
                query=str(body.get("query")),
                lease_token=int(token) if isinstance(token, int) else None,
                body=body,
                monotonic=time.monotonic(),
            )
        )
        await message.ack()


@asynccontextmanager
async def queue_tap(connection: aio_pika.abc.AbstractRobustConnection, names: QueueNames) -> AsyncIterator[QueueTap]:
    tap = QueueTap()
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=1000)
    queue = await declare_index_queue(channel, names)
    tag = await queue.consume(tap.on_message)
    try:
        yield tap
    finally:
        await queue.cancel(tag)
        await channel.close()
