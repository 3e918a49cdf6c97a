"""Traffic shaped like a crowd for ``make bench-api``: thousands of distinct URLs, and new videos arriving.

One URL repeated measures the caches (the API's micro-cache, Elasticsearch's request cache). A crowd
sends many different requests: one- and two-word searches from the catalogue's vocabulary, words
still being typed, pages at many depths of many walks, channels, one-day windows, relevance walks.
``crowd_urls`` draws such a set (each URL at most once, so under wrk's uniform pick none takes more
than a small share of the requests), collecting real cursors from the running API; ``wrk_urls``
runs wrk over it through a Lua script. ``Arrivals`` keeps new videos arriving through the real
indexer (a ``python -m services.indexer`` process on private queues) at a steady rate while wrk runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aio_pika
import aiohttp

from services.common.events import VideoEvent
from services.common.settings import PROJECT_ROOT, StackSettings
from services.common.topology import ROUTING_KEY_VIDEO_FOUND, QueueNames, declare_index_queue

# Picks one line of the URL file at random per request, a different random sequence per thread.
WRK_SCRIPT = """\
local paths = {}
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("seed", counter)
end
function init(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  math.randomseed(os.time() * 1000 + seed)
end
function request()
  return wrk.format("GET", paths[math.random(#paths)])
end
"""

# Shares of the crowd's URLs by kind (of ``count``); cursors come from walks of the other kinds.
_SHARES = {
    "q_words": 0.22,
    "q_prefix": 0.12,
    "channel": 0.12,
    "day_window": 0.12,
    "listing_variant": 0.04,
    "cursor": 0.30,
    "relevance": 0.08,
}
_DEPTH_LIMITS = (10, 20, 50)


@dataclass
class CrowdUrls:
    """The crowd's paths (with query strings), how many of each kind, and the depths of its cursors."""

    paths: list[str] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)
    cursor_depths: list[int] = field(default_factory=list)
    paths_by_kind: dict[str, list[str]] = field(default_factory=dict)

    def add(self, kind: str, params: dict[str, str]) -> None:
        path = f"/api/v1/videos?{urlencode(params)}"
        self.paths.append(path)
        self.kinds[kind] += 1
        self.paths_by_kind.setdefault(kind, []).append(path)

    def summary(self) -> dict[str, Any]:
        depths = sorted(self.cursor_depths)
        return {
            "distinct_urls": len(set(self.paths)),
            "by_kind": dict(self.kinds),
            "cursor_depths": {
                "min": depths[0] if depths else None,
                "median": depths[len(depths) // 2] if depths else None,
                "max": depths[-1] if depths else None,
            },
        }


def _prefix(rng: random.Random, word: str) -> str:
    return word[: rng.randrange(2, len(word))] if len(word) > 3 else word


def _searches(rng: random.Random, vocabulary: Sequence[str]) -> Callable[[], str]:
    def draw() -> str:
        words = rng.sample(vocabulary, rng.choice((1, 1, 2)))
        return " ".join(words)

    return draw


async def _walk(
    session: aiohttp.ClientSession, base: str, params: dict[str, str], pages: int, limit: int
) -> list[tuple[int, str]]:
    """(depth, cursor) of each page of a walk of ``params``, up to ``pages`` pages of ``limit``."""
    found: list[tuple[int, str]] = []
    cursor: str | None = None
    depth = 0
    for _ in range(pages):
        query = {**params, "limit": str(limit)} | ({"cursor": cursor} if cursor else {})
        async with session.get(f"{base}/api/v1/videos", params=query) as response:
            if response.status != 200:
                raise SystemExit(f"bench-api: a walk of {params} answered {response.status}: {await response.text()}")
            body = await response.json()
        depth += len(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
        found.append((depth, cursor))
    return found


async def crowd_urls(
    base: str,
    *,
    count: int,
    vocabulary: Sequence[str],
    channels: Sequence[str],
    first_day: datetime,
    days: int,
    deep_pages: int,
    seed: int = 20261203,
) -> CrowdUrls:
    """About ``count`` distinct URLs drawn like a crowd's, with cursors collected from ``base``.

    The cursors come from walks: one of the whole catalogue ``deep_pages`` pages of 100 deep (pages at
    every depth down to ``deep_pages`` * 100), and short walks of searches, channels and days. Relevance
    cursors hold a point in time that expires (API_PIT_KEEP_ALIVE_SECONDS): draw the set again shortly
    before each run.
    """
    rng = random.Random(seed)
    search = _searches(rng, vocabulary)
    crowd = CrowdUrls()
    seen: set[str] = set()

    def add(kind: str, params: dict[str, str]) -> bool:
        key = urlencode(sorted(params.items()))
        if key in seen:
            return False
        seen.add(key)
        crowd.add(kind, params)
        return True

    def fill(kind: str, make: Callable[[], dict[str, str]]) -> None:
        wanted, tries = round(count * _SHARES[kind]), 0
        while crowd.kinds[kind] < wanted and tries < wanted * 20:
            tries += 1
            add(kind, make())

    def limit() -> str:
        return str(rng.choice(_DEPTH_LIMITS))

    def day_window() -> dict[str, str]:
        day = first_day + timedelta(days=rng.randrange(days))
        return {"published_after": day.isoformat(), "published_before": (day + timedelta(days=1)).isoformat()}

    fill("q_words", lambda: {"q": search(), "limit": limit()})
    fill("q_prefix", lambda: {"q": " ".join([*search().split()[:-1], _prefix(rng, rng.choice(vocabulary))])})
    fill("channel", lambda: {"channel_id": rng.choice(channels), "limit": limit()})
    fill("day_window", lambda: day_window() | ({"q": search()} if rng.random() < 0.3 else {}))
    fill(
        "listing_variant",
        lambda: {"limit": str(rng.randrange(1, 101)), "sort": rng.choice(("-published_at", "published_at"))},
    )
    async with aiohttp.ClientSession() as session:
        walks: list[tuple[dict[str, str], int]] = [({}, deep_pages)]
        walks += [({"q": search()}, 20) for _ in range(20)]
        walks += [({"channel_id": rng.choice(channels)}, 10) for _ in range(20)]
        walks += [(day_window(), 20) for _ in range(10)]
        cursors: list[tuple[dict[str, str], int, str]] = []
        for params, pages in walks:
            cursors += [(params, depth, cursor) for depth, cursor in await _walk(session, base, params, pages, 100)]
        rng.shuffle(cursors)
        for params, depth, cursor in cursors[: round(count * _SHARES["cursor"])]:
            if add("cursor", {**params, "cursor": cursor, "limit": limit()}):
                crowd.cursor_depths.append(depth)
        wanted = round(count * _SHARES["relevance"])
        while crowd.kinds["relevance"] < wanted:
            params = {"q": search(), "sort": "relevance"}
            add("relevance", {**params, "limit": "20"})
            for depth, cursor in await _walk(session, base, params, 3, 20):
                if add("relevance", {**params, "cursor": cursor, "limit": "20"}):
                    crowd.cursor_depths.append(depth)
    rng.shuffle(crowd.paths)
    return crowd


def wrk_urls(base: str, paths: Sequence[str], seconds: int, workdir: Path) -> str:
    """wrk -t2 -c16 over ``paths`` (picked at random per request); returns wrk's report."""
    workdir.mkdir(parents=True, exist_ok=True)
    script, urls = workdir / "crowd.lua", workdir / "crowd-urls.txt"
    script.write_text(WRK_SCRIPT)
    urls.write_text("\n".join(paths) + "\n")
    command = ["wrk", "-t2", "-c16", f"-d{seconds}s", "--latency", "--timeout", "5s", "-s", str(script), base]
    return subprocess.run([*command, "--", str(urls)], capture_output=True, text=True, check=True).stdout


@dataclass
class ArrivalStats:
    published: int = 0
    seconds: float = 0.0
    indexer: asyncio.subprocess.Process | None = None

    @property
    def per_second(self) -> float:
        return self.published / self.seconds if self.seconds else 0.0


@contextlib.asynccontextmanager
async def arrivals(
    stack: StackSettings,
    *,
    database: str,
    alias: str,
    rate: float,
    make_event: Callable[[int, random.Random, datetime], VideoEvent],
    indexer_port: int,
) -> AsyncIterator[ArrivalStats]:
    """New videos published at ``rate`` a second to private queues, indexed by a real indexer process."""
    run_id = f"bench-api-arrivals-{uuid.uuid4().hex[:8]}"
    names = QueueNames(exchange=f"{run_id}.videos", queue=f"{run_id}.videos.index")
    env = {
        "AMQP_URL": stack.amqp_url,
        "AMQP_EXCHANGE": names.exchange,
        "AMQP_QUEUE": names.queue,
        "MONGODB_URL": stack.mongodb_url,
        "MONGODB_DATABASE": database,
        "ELASTICSEARCH_URL": stack.elasticsearch_url,
        "ELASTICSEARCH_INDEX": alias,
        "INDEXER_PORT": str(indexer_port),
        "INDEX_ATTRIBUTION": "false",
        "LOG_LEVEL": "WARNING",
    }
    stats = ArrivalStats()
    connection = await aio_pika.connect(stack.amqp_url)
    indexer: asyncio.subprocess.Process | None = None
    try:
        channel = await connection.channel(publisher_confirms=True)
        await declare_index_queue(channel, names)
        exchange = await channel.get_exchange(names.exchange)
        indexer = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.indexer", cwd=PROJECT_ROOT, env={**os.environ, **env}
        )
        stats.indexer = indexer
        rng = random.Random(run_id)
        stop = asyncio.Event()

        async def publish() -> None:
            started = time.monotonic()
            while not stop.is_set():
                due = int((time.monotonic() - started) * rate) - stats.published
                for _ in range(due):
                    event = make_event(10_000_000 + stats.published, rng, datetime.now(UTC))
                    message = aio_pika.Message(
                        event.model_dump_json().encode(), delivery_mode=aio_pika.DeliveryMode.PERSISTENT
                    )
                    await exchange.publish(message, ROUTING_KEY_VIDEO_FOUND)
                    stats.published += 1
                stats.seconds = time.monotonic() - started
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=0.02)

        publisher = asyncio.create_task(publish())
        try:
            yield stats
        finally:
            stop.set()
            await publisher
    finally:
        if indexer is not None and indexer.returncode is None:
            indexer.terminate()
            await indexer.wait()
        channel = await connection.channel()
        for queue in (names.queue, names.dead_queue):
            await channel.queue_delete(queue)
        for name in (names.exchange, names.dead_exchange, names.stored_exchange):
            await channel.exchange_delete(name)
        await connection.close()
