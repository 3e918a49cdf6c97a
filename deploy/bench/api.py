"""``make bench-api``: the API's throughput and latency at 1,000,000 videos, measured with wrk.

Loads ``--videos`` synthetic videos with the indexer's own Elasticsearch bulk helper
(``services.indexer.es_bulk.bulk_index``) and a bulk MongoDB insert of the documents the indexer
would have stored, into a private database and alias; starts the API as production does
(``python -m services.api`` with ``API_WORKERS``); walks a cursor ``--deep`` items deep; then runs
``wrk -t2 -c16`` for ``--seconds`` on each scenario: the first page, the deep page, a common-word
q, a rare-word q and a filtered list — once as deployed (1 s micro-cache of identical responses)
and once with every request reaching Elasticsearch. Results are printed and written to
``.local/bench/api.json``; the private database and index are removed afterwards unless
``--keep-data`` (then a later run reuses them and skips the load).

The single-URL scenarios repeat one URL, so the micro-cache and Elasticsearch's request cache answer
nearly every request: they are cache figures. The crowd scenarios (deploy/bench/api_crowd.py) are
what users meet: ``--crowd-urls`` distinct URLs (searches, words being typed, cursors at many depths,
channels, one-day windows, relevance walks) picked at random by wrk, on a still catalogue and while
``--arrival-rate`` new videos a second arrive through a real indexer.

A benchmark, not a test: figures depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import aiohttp
import psutil
from elasticsearch import AsyncElasticsearch
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from tqdm import tqdm

from deploy.bench.api_crowd import arrivals, crowd_urls, wrk_urls
from deploy.bench.processes import CpuMeter, server_processes, with_children
from services.common.catalogue import VIDEOS_COLLECTION, alias_indexes, ensure_mongo_indexes, ensure_search_index
from services.common.events import Thumbnail, VideoEvent
from services.common.settings import PROJECT_ROOT, StackSettings
from services.indexer.es_bulk import bulk_index

RESULTS = PROJECT_ROOT / ".local" / "bench" / "api.json"
BENCH_NAME = "tubewatch-bench-api"
BASE_TIME = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
COMMON_WORD = "highlights"  # in ~90% of titles
RARE_WORD = "zanzibarite"  # in ~1 video in 100,000
CHANNELS = 2000
_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
WORDS = [
    "cricket",
    "world",
    "cup",
    "final",
    "test",
    "match",
    "innings",
    "wicket",
    "bowler",
    "batsman",
    "century",
    "spin",
    "pace",
    "stadium",
    "crowd",
    "fans",
    "review",
    "analysis",
    "live",
    "stream",
    "replay",
    "super",
    "over",
    "boundary",
    "six",
    "four",
    "catch",
    "drop",
    "run",
    "out",
    "umpire",
    "captain",
    "series",
    "league",
    "trophy",
    "semi",
    "quarter",
    "qualifier",
    "record",
    "debut",
    "farewell",
    "press",
    "conference",
    "training",
    "nets",
]


def make_event(number: int, rng: random.Random, now: datetime | None = None) -> VideoEvent:
    """A synthetic video: published within the year before BASE_TIME, or at ``now`` (a new arrival)."""
    video_id = "".join(rng.choice(_ID_ALPHABET) for _ in range(8)) + "".join(
        _ID_ALPHABET[(number >> shift) & 63] for shift in (12, 6, 0)
    )
    words = rng.sample(WORDS, rng.randrange(3, 8))
    if rng.random() < 0.9:
        words.insert(rng.randrange(len(words) + 1), COMMON_WORD)
    if number % 100_000 == 7 or rng.random() < 0.00001:
        words.append(RARE_WORD)
    channel = rng.randrange(CHANNELS)
    return VideoEvent(
        video_id=video_id,
        query=rng.choice(("cricket", "world cup", "test match")),
        title=" ".join(words).capitalize(),
        description=" ".join(rng.choices(WORDS, k=rng.randrange(10, 30))),
        published_at=now or BASE_TIME - timedelta(seconds=rng.randrange(365 * 86_400)),
        channel_id=f"UC{channel:022d}",
        channel_title=f"Channel {channel}",
        thumbnails={"default": Thumbnail(url=f"https://i.ytimg.com/vi/{video_id}/default.jpg", width=120, height=90)},
        fetched_at=now or BASE_TIME,
        view_count=rng.randrange(1_000_000),
        duration_seconds=rng.randrange(30, 7200),
    )


def stored_document(event: VideoEvent, now: datetime) -> dict[str, Any]:
    """The MongoDB document the indexer's merge makes of a first sighting (fields, queries, times, rev 1)."""
    doc = event.model_dump(mode="python", exclude={"schema_version", "query"})
    return doc | {"queries": [event.query], "first_seen_at": now, "updated_at": now, "rev": 1}


async def load(
    es: AsyncElasticsearch, db: AsyncDatabase[dict[str, Any]], index: str, *, count: int, batch: int, concurrency: int
) -> float:
    """Bulk-load with the indexer's own Elasticsearch bulk helper and an unordered MongoDB insert.

    The indexer's per-batch upsert-and-read-back (VideoWriter.write_batch) runs at a few hundred
    videos a second on this shared machine (MongoDB's 0.25 GB cache against its text index): too
    slow for a million, and the API benchmark needs the documents, not the merge.
    """
    rng = random.Random(20261124)
    now = datetime.now(UTC)
    started = time.perf_counter()
    queue: asyncio.Queue[list[dict[str, Any]] | None] = asyncio.Queue(maxsize=concurrency * 2)

    async def produce() -> None:
        for start in range(0, count, batch):
            docs = [stored_document(make_event(n, rng), now) for n in range(start, min(count, start + batch))]
            await queue.put(docs)
        for _ in range(concurrency):
            await queue.put(None)

    async def consume(progress: tqdm[Any]) -> None:
        while (docs := await queue.get()) is not None:
            rejected = await bulk_index(es, index, docs)
            if rejected:
                raise SystemExit(f"bench-api: Elasticsearch rejected videos: {list(rejected.values())[:3]}")
            await db[VIDEOS_COLLECTION].insert_many([dict(d) for d in docs], ordered=False)
            progress.update(len(docs))

    with tqdm(total=count, unit="videos", desc="loading", file=sys.stderr) as progress:
        await asyncio.gather(produce(), *(consume(progress) for _ in range(concurrency)))
    await ensure_mongo_indexes(db)
    return time.perf_counter() - started


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_ready(url: str, process: asyncio.subprocess.Process) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            if process.returncode is not None:
                raise SystemExit("bench-api: the API exited at start")
            try:
                async with session.get(f"{url}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit("bench-api: the API did not become ready")


async def deep_cursor(url: str, depth: int) -> tuple[str, float]:
    """Walk ``depth`` items with limit=100 pages; returns the cursor there and the mean page time."""
    cursor, seen, started = None, 0, time.perf_counter()
    async with aiohttp.ClientSession() as session:
        while seen < depth:
            params = {"limit": "100"} | ({"cursor": cursor} if cursor else {})
            async with session.get(f"{url}/api/v1/videos", params=params) as response:
                body = await response.json()
            seen += len(body["items"])
            cursor = body["next_cursor"]
            if cursor is None:
                raise SystemExit(f"bench-api: only {seen} videos to walk")
    assert cursor is not None
    return cursor, (time.perf_counter() - started) / (depth / 100)


_LATENCY_LINE = re.compile(r"^\s*(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def run_wrk(url: str, seconds: int) -> dict[str, Any]:
    command = ["wrk", "-t2", "-c16", f"-d{seconds}s", "--latency", "--timeout", "5s", url]
    return wrk_figures(subprocess.run(command, capture_output=True, text=True, check=True).stdout)


def wrk_figures(output: str) -> dict[str, Any]:
    """Requests/s, errors and latency percentiles (ms) of a wrk --latency report."""
    percentiles = {f"p{p}_ms": float(v) * _UNITS[u] for p, v, u in _LATENCY_LINE.findall(output)}
    requests = re.search(r"([\d.]+) requests in", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: (.*)", output)
    return {
        "requests_per_second": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        "requests": int(float(requests.group(1))) if requests else 0,
        "errors": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else None,
        **percentiles,
    }


def cpu_meter(api: asyncio.subprocess.Process, indexer: asyncio.subprocess.Process | None = None) -> CpuMeter:
    """A meter of the stores, the API (all its workers), the arrivals' indexer if any, and wrk."""
    groups: dict[str, list[psutil.Process]] = {"api": with_children(api.pid), **server_processes()}
    if indexer is not None:
        groups["arrivals_indexer"] = with_children(indexer.pid)
    return CpuMeter(groups, reaped_children="wrk")


async def search_stats(es: AsyncElasticsearch) -> dict[str, int]:
    stats = await es.indices.stats(index=BENCH_NAME, metric="search")
    return dict(stats["_all"]["primaries"]["search"])


async def measured_wrk(
    es: AsyncElasticsearch, url: str, paths: Sequence[str], seconds: int, meter: CpuMeter
) -> dict[str, Any]:
    """wrk over ``paths``, with the CPU each process spent per request and Elasticsearch's search times.

    ``es_query_ms`` / ``es_fetch_ms``: the mean time of a search's query and fetch phases in
    Elasticsearch (waiting for a core included), from the index's search statistics.
    """
    workdir = RESULTS.parent / "crowd"
    before = await search_stats(es)
    meter.start()
    figures = wrk_figures(await asyncio.to_thread(wrk_urls, url, paths, seconds, workdir))
    meter.stop()
    after = await search_stats(es)
    requests = max(figures["requests"], 1)
    delta = {key: after[key] - before[key] for key in after if isinstance(after[key], int)}
    return figures | {
        "cpu_ms_per_request": meter.ms_per(requests) | {"all": round(1000 * sum(meter.seconds.values()) / requests, 3)},
        "machine_busy_percent": round(100 * meter.machine_busy_share, 1),
        "searches_per_request": round(delta["query_total"] / requests, 2),
        "es_query_ms": round(delta["query_time_in_millis"] / max(delta["query_total"], 1), 2),
        "es_fetch_ms": round(delta["fetch_time_in_millis"] / max(delta["fetch_total"], 1), 2),
    }


async def crowd_scenario(
    args: argparse.Namespace,
    stack: StackSettings,
    es: AsyncElasticsearch,
    url: str,
    *,
    api: asyncio.subprocess.Process,
    database: str,
    rate: float,
    by_kind: bool = False,
) -> dict[str, Any]:
    """wrk over a freshly drawn crowd of URLs, with ``rate`` new videos a second arriving (0: none).

    ``by_kind``: then each kind of URL alone (``--kind-seconds`` each), to show what each costs.
    """
    drawn = time.perf_counter()
    crowd = await crowd_urls(
        url,
        count=args.crowd_urls,
        vocabulary=[*WORDS, COMMON_WORD],
        channels=[f"UC{n:022d}" for n in range(CHANNELS)],
        first_day=BASE_TIME - timedelta(days=365),
        days=365,
        deep_pages=args.crowd_deep_pages,
    )
    drawn = time.perf_counter() - drawn
    about: dict[str, Any] = {"crowd": crowd.summary(), "seconds_to_draw": round(drawn, 1)}
    if not rate:
        figures = await measured_wrk(es, url, crowd.paths, args.seconds, cpu_meter(api))
        if by_kind:
            about["by_kind"] = {}
            for kind, paths in sorted(crowd.paths_by_kind.items()):
                kind_figures = await measured_wrk(es, url, paths, args.kind_seconds, cpu_meter(api))
                about["by_kind"][kind] = kind_figures | {"distinct_urls": len(paths)}
                print(f"bench-api: crowd kind {kind} alone: {json.dumps(kind_figures)}", file=sys.stderr)
        return figures | about
    indexer_port = free_port()
    async with arrivals(
        stack, database=database, alias=BENCH_NAME, rate=rate, make_event=make_event, indexer_port=indexer_port
    ) as arrived:
        await wait_indexer_ready(f"http://127.0.0.1:{indexer_port}")
        before = arrived.published
        started = time.perf_counter()
        figures = await measured_wrk(es, url, crowd.paths, args.seconds, cpu_meter(api, arrived.indexer))
        published = arrived.published - before
        elapsed = time.perf_counter() - started
    return figures | about | {"arrivals_per_second": round(published / elapsed, 1)}


async def wait_indexer_ready(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(600):
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"{url}/readyz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.2)
    raise SystemExit("bench-api: the arrivals' indexer did not become ready")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=1_000_000)
    parser.add_argument("--deep", type=int, default=200_000)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument(
        "--workers",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[1, 2],
        help="API_WORKERS values to measure, comma-separated",
    )
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--keep-data", action="store_true", help="keep the private database and index")
    parser.add_argument("--crowd-urls", type=int, default=6000, help="distinct URLs of the crowd scenarios")
    parser.add_argument(
        "--crowd-deep-pages", type=int, default=1000, help="pages of 100 the crowd's deepest walk goes down"
    )
    parser.add_argument("--arrival-rate", type=float, default=50.0, help="new videos a second while the crowd runs")
    parser.add_argument("--only-crowd", action="store_true", help="leave out the single-URL scenarios (cache figures)")
    parser.add_argument(
        "--kind-seconds", type=int, default=8, help="seconds of each kind of crowd URL alone (0: leave them out)"
    )
    parser.add_argument(
        "--refresh-interval",
        default=None,
        help="the catalogue index's refresh interval for this run, e.g. 5s (default: the index's own, 1s)",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench-api: wrk is not installed (apt-get install -y wrk)")
    stack = StackSettings()
    database = BENCH_NAME.replace("-", "_")
    es = AsyncElasticsearch(stack.elasticsearch_url, request_timeout=120)
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongodb_url, tz_aware=True)
    db = mongo[database]
    process: asyncio.subprocess.Process | None = None
    results: dict[str, Any] = {}
    try:
        present = 0
        if await alias_indexes(es, BENCH_NAME):
            present = int((await es.count(index=BENCH_NAME))["count"])
        load_seconds = None
        if present < args.videos:
            for name in await alias_indexes(es, BENCH_NAME):
                await es.indices.delete(index=name)
            await mongo.drop_database(database)
            index = await ensure_search_index(es, BENCH_NAME)
            await es.indices.put_settings(index=index, settings={"refresh_interval": "-1"})
            load_seconds = await load(es, db, index, count=args.videos, batch=args.batch, concurrency=args.concurrency)
            await es.indices.put_settings(index=index, settings={"refresh_interval": None})
            await es.indices.refresh(index=index)
        present = int((await es.count(index=BENCH_NAME))["count"])
        stored = await db[VIDEOS_COLLECTION].estimated_document_count()
        print(f"bench-api: {present} videos indexed, {stored} stored", file=sys.stderr)

        if args.refresh_interval is not None:
            await es.indices.put_settings(index=BENCH_NAME, settings={"refresh_interval": args.refresh_interval})
        channel = f"UC{7:022d}"
        measured: dict[str, Any] = {}
        kinds_measured = args.kind_seconds <= 0
        walk_page_seconds = 0.0
        cursor = ""
        # Per API_WORKERS value, twice: as deployed (the 1 s micro-cache of identical responses on), and
        # with every request reaching Elasticsearch (API_PAGE_CACHE_SECONDS=0; its request cache still applies).
        configurations = [
            (f"workers_{workers}_page_cache_{'on' if cache == '1' else 'off'}", workers, cache)
            for workers in args.workers
            for cache in ("1", "0")
        ]
        for label, workers, cache_seconds in configurations:
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            env = {
                **os.environ,
                "API_PORT": str(port),
                "API_WORKERS": str(workers),
                "API_PAGE_CACHE_SECONDS": cache_seconds,
                "MONGODB_DATABASE": database,
                "ELASTICSEARCH_INDEX": BENCH_NAME,
                "LOG_LEVEL": "WARNING",
            }
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "services.api", cwd=PROJECT_ROOT, env=env
            )
            await wait_ready(url, process)
            if not cursor:
                cursor, walk_page_seconds = await deep_cursor(url, args.deep)
            scenarios = {
                "first_page": {"limit": "20"},
                "deep_page": {"limit": "20", "cursor": cursor},
                "common_word_q": {"limit": "20", "q": COMMON_WORD},
                "rare_word_q": {"limit": "20", "q": RARE_WORD},
                "filtered_list": {"limit": "20", "channel_id": channel, "published_after": "2026-06-01"},
            }
            measured[label] = {}
            for name, params in ({} if args.only_crowd else scenarios).items():
                target = f"{url}/api/v1/videos?{urlencode(params)}"
                measured[label][name] = await asyncio.to_thread(run_wrk, target, args.seconds)
                print(f"bench-api: {label} {name}: {json.dumps(measured[label][name])}", file=sys.stderr)
            for name, rate in (("crowd_still", 0.0), ("crowd_arriving", args.arrival_rate)):
                # Each kind alone once: in the first configuration with every request reaching Elasticsearch.
                by_kind = not rate and cache_seconds == "0" and not kinds_measured
                measured[label][name] = await crowd_scenario(
                    args, stack, es, url, api=process, database=database, rate=rate, by_kind=by_kind
                )
                kinds_measured = kinds_measured or by_kind
                print(f"bench-api: {label} {name}: {json.dumps(measured[label][name])}", file=sys.stderr)
            process.terminate()
            await process.wait()
        results = {
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {
                "cpus": os.cpu_count(),
                "memory_gb": round(psutil.virtual_memory().total / 2**30),
                "python": platform.python_version(),
            },
            "videos": present,
            "load_seconds": load_seconds,
            "load_videos_per_second": round(args.videos / load_seconds) if load_seconds else None,
            "walk_to_deep_page": {"depth": args.deep, "mean_page_of_100_ms": round(walk_page_seconds * 1000, 2)},
            "wrk": {"threads": 2, "connections": 16, "seconds": args.seconds, "kind_seconds": args.kind_seconds},
            "refresh_interval": args.refresh_interval or "1s",
            "load_average_at_end": os.getloadavg(),
            "scenarios": measured,
        }
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
        print(json.dumps(results, indent=2))
        print(f"bench-api: results in {RESULTS}", file=sys.stderr)
    finally:
        if process is not None and process.returncode is None:
            process.terminate()
            await process.wait()
        if args.keep_data and args.refresh_interval is not None:
            # A later run without --refresh-interval measures the index's own interval again.
            await es.indices.put_settings(index=BENCH_NAME, settings={"refresh_interval": None})
        if not args.keep_data:
            for name in await alias_indexes(es, BENCH_NAME):
                await es.indices.delete(index=name)
            await mongo.drop_database(database)
        await es.close()
        await mongo.close()


if __name__ == "__main__":
    asyncio.run(main())
