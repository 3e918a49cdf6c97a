"""``make bench-indexer``: how fast videos go through RabbitMQ into both stores, and how fast a reindex is.

Phase 1 (pipeline): publishes ``--events`` realistic video events to a private exchange/queue, then
starts ``--indexers`` real indexer processes (``python -m services.indexer``) on the backlog and
measures the sustained rate from the first stored video to the last one present in both MongoDB and
Elasticsearch, plus the batch latency the indexers report in /metrics.

Phase 2 (a catalogue that has run for months): fills MongoDB with ``--catalogue-videos`` videos
(inserted directly, then the catalogue's indexes built, not timed), times ``python -m services.indexer
reindex`` building the search index from them (the reindex figure), then runs phase 1 again into that
full catalogue, beside the empty one.

Each pipeline run reports the CPU each process spent per video (MongoDB, Elasticsearch, RabbitMQ,
the indexers) and each store's size per video; the results carry the WiredTiger cache MongoDB ran with.

``--percolation both`` (default) runs phase 1 twice, without and with ``INDEX_ATTRIBUTION``: the
``--channel-share`` of events found through a channel percolated against ``--queries`` queries;
``--rounds N`` repeats the pair, alternating which goes first, and reports the median ratio (one pair
on a 2-core machine varies by several percent).

Everything uses private names (database, alias, queue) and is removed afterwards. Results are printed
and written to ``.local/bench/indexer.json``. A benchmark, not a test: figures depend on the machine
and on what else runs on it.
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
import socket
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import psutil
from elasticsearch import AsyncElasticsearch
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from deploy.bench.processes import cpu_percent_of, cpu_seconds_of, server_processes
from services.common.catalogue import MONGO_TEXT_INDEX, VIDEOS_COLLECTION, ensure_mongo_indexes, ensure_text_index
from services.common.events import FoundBy, Thumbnail, VideoEvent
from services.common.settings import PROJECT_ROOT, StackSettings
from services.common.topology import ROUTING_KEY_VIDEO_FOUND, QueueNames, declare_index_queue
from services.indexer.mongo_documents import new_document
from services.youtube_emulator.content import CHANNEL_NAMES, make_text, search_snippet

RESULTS = PROJECT_ROOT / ".local" / "bench" / "indexer.json"
QUERIES = ("cricket", "world cup", "ipl final", "test match", "t20 highlights")
_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
BASE_TIME = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def configured_queries(count: int) -> list[str]:
    """``count`` queries: the bench's own, then two-word ones of cricket vocabulary."""
    words = ("bowling", "batting", "wicket", "innings", "stumps", "captain", "spin", "pace", "catch", "century")
    return [*QUERIES, *(f"{a} {b}" for a in words for b in words if a < b)][:count]


def make_events(count: int, seed: int, channel_share: float = 0.0) -> list[VideoEvent]:
    """Realistic events (emulator titles, search.list-length descriptions, 500 channels), a share by channel."""
    rng = random.Random(seed)
    events = []
    for i in range(count):
        query = rng.choice(QUERIES)
        published = BASE_TIME - timedelta(seconds=rng.randrange(30 * 86_400))
        text = make_text(query, rng, live=False, year=published.year, month=published.month, day=published.day)
        video_id = "".join(rng.choice(_ID_ALPHABET) for _ in range(10)) + _ID_ALPHABET[i % 64]
        channel = rng.randrange(500)
        by_channel = rng.random() < channel_share
        events.append(
            VideoEvent(
                video_id=video_id,
                found_by=FoundBy.channel(f"UC{channel:022d}") if by_channel else FoundBy.search(query),
                title=text.title,
                description=search_snippet(text.description),
                published_at=published,
                channel_id=f"UC{channel:022d}",
                channel_title=CHANNEL_NAMES[channel % len(CHANNEL_NAMES)],
                thumbnails={
                    name: Thumbnail(url=f"https://i.ytimg.com/vi/{video_id}/{name}.jpg", width=w, height=h)
                    for name, w, h in (("default", 120, 90), ("medium", 320, 180), ("high", 480, 360))
                },
                fetched_at=published + timedelta(minutes=1),
            )
        )
    return events


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def publish(amqp_url: str, names: QueueNames, bodies: list[bytes]) -> float:
    """Publish with confirms, many in flight; returns messages per second."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await declare_index_queue(channel, names)
        exchange = await channel.get_exchange(names.exchange)
        started = time.perf_counter()
        for start in range(0, len(bodies), 5000):
            await asyncio.gather(
                *(
                    exchange.publish(
                        aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                        ROUTING_KEY_VIDEO_FOUND,
                    )
                    for body in bodies[start : start + 5000]
                )
            )
        return len(bodies) / (time.perf_counter() - started)


def indexer_env(
    stack: StackSettings, names: QueueNames, database: str, alias: str, port: int, *, queries: list[str] | None = None
) -> dict[str, str]:
    return {
        **os.environ,
        "AMQP_URL": stack.amqp_url,
        "AMQP_EXCHANGE": names.exchange,
        "AMQP_QUEUE": names.queue,
        "MONGODB_URL": stack.mongodb_url,
        "MONGODB_DATABASE": database,
        "ELASTICSEARCH_URL": stack.elasticsearch_url,
        "ELASTICSEARCH_INDEX": alias,
        "INDEXER_PORT": str(port),
        "LOG_LEVEL": "WARNING",
        "REINDEX_OLD_INDEX_GRACE_SECONDS": "0",
        "INDEX_ATTRIBUTION": "true" if queries else "false",
        "SEARCH_QUERIES": ",".join(queries or QUERIES),
    }


def histogram(metrics_text: str, name: str) -> tuple[list[tuple[float, float]], float, float]:
    """(cumulative buckets, sum, count) of a Prometheus histogram in exposition text."""
    buckets = [
        (float("inf") if le == "+Inf" else float(le), float(value))
        for le, value in re.findall(rf'^{name}_bucket{{le="([^"]+)"}} (\S+)$', metrics_text, re.MULTILINE)
    ]
    total = float(re.search(rf"^{name}_sum (\S+)$", metrics_text, re.MULTILINE).group(1))  # type: ignore[union-attr]
    count = float(re.search(rf"^{name}_count (\S+)$", metrics_text, re.MULTILINE).group(1))  # type: ignore[union-attr]
    return buckets, total, count


def _labelled(metrics_text: str, name: str, store: str) -> float:
    match = re.search(rf'^{name}{{store="{store}"}} (\S+)$', metrics_text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def quantile_bound(buckets: list[tuple[float, float]], count: float, q: float) -> float:
    """The upper bound of the bucket holding quantile ``q`` (Prometheus buckets are cumulative)."""
    for bound, cumulative in buckets:
        if cumulative >= q * count:
            return bound
    return float("inf")


async def wait_for_count(
    db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, alias: str, expected: int, within: float
) -> tuple[float, float]:
    """Poll until both stores hold ``expected`` videos; returns (first stored, all stored) timestamps."""
    first: float | None = None
    deadline = time.monotonic() + within
    mongo_done = False
    while time.monotonic() < deadline:
        if not mongo_done:
            count = await db[VIDEOS_COLLECTION].estimated_document_count()
            if count and first is None:
                first = time.monotonic()
            mongo_done = count >= expected
        # Counting in ES sees what is refreshed: the default 1 s refresh interval bounds the delay.
        if mongo_done and (await es.count(index=alias))["count"] >= expected:
            assert first is not None
            return first, time.monotonic()
        await asyncio.sleep(0.05)
    raise TimeoutError(f"not all {expected} videos stored within {within}s")


async def wiredtiger_cache_bytes(mongo: AsyncMongoClient[dict[str, Any]]) -> int:
    status = await mongo.admin.command("serverStatus")
    return int(status["wiredTiger"]["cache"]["maximum bytes configured"])


async def store_sizes(
    mongo: AsyncMongoClient[dict[str, Any]], es: AsyncElasticsearch, database: str, alias: str
) -> dict[str, Any]:
    """Each store's bytes per video: MongoDB's data and indexes (each), Elasticsearch's primary store."""
    await es.indices.refresh(index=alias)
    stats = await es.indices.stats(index=alias, metric="store,docs")
    primaries = stats["_all"]["primaries"]
    collection = await mongo[database].command("collstats", VIDEOS_COLLECTION)
    count = max(int(collection["count"]), 1)
    return {
        "videos": int(collection["count"]),
        "mongodb_data_bytes_per_video": round(collection["storageSize"] / count),
        "mongodb_index_bytes_per_video": round(collection["totalIndexSize"] / count),
        "mongodb_index_bytes_per_video_by_index": {
            name: round(size / count) for name, size in collection["indexSizes"].items()
        },
        "elasticsearch_bytes_per_video": round(
            primaries["store"]["size_in_bytes"] / max(primaries["docs"]["count"], 1)
        ),
    }


async def pipeline_phase(
    args: argparse.Namespace,
    stack: StackSettings,
    run_id: str,
    *,
    percolation: bool = False,
    catalogue: tuple[str, str, int] | None = None,
) -> dict[str, Any]:
    """Phase 1 into a new, empty catalogue, or into ``catalogue`` (database, alias, videos it holds)."""
    names = QueueNames(exchange=f"{run_id}.videos", queue=f"{run_id}.videos.index")
    database, alias, held = catalogue or (run_id.replace("-", "_"), run_id, 0)
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongodb_url, tz_aware=True)
    es = AsyncElasticsearch(stack.elasticsearch_url, request_timeout=120)
    processes: list[asyncio.subprocess.Process] = []
    try:
        print(f"generating {args.events:,} events ...", flush=True)
        bodies = [e.model_dump_json().encode() for e in make_events(args.events, 1, args.channel_share)]
        print(f"publishing {len(bodies):,} events to {names.exchange} ...", flush=True)
        publish_rate = await publish(stack.amqp_url, names, bodies)
        print(f"  published at {publish_rate:,.0f} msg/s", flush=True)
        ports = [free_port() for _ in range(args.indexers)]
        for port in ports:
            queries = configured_queries(args.queries) if percolation else None
            env = indexer_env(stack, names, database, alias, port, queries=queries)
            command = (sys.executable, "-m", "services.indexer")
            processes.append(await asyncio.create_subprocess_exec(*command, cwd=PROJECT_ROOT, env=env))
        cpu = [psutil.Process(p.pid) for p in processes]
        servers = server_processes()
        for proc in [*cpu, *(p for procs in servers.values() for p in procs)]:
            cpu_percent_of(proc)
        server_seconds = {name: sum(cpu_seconds_of(p) for p in procs) for name, procs in servers.items()}
        psutil.cpu_percent()
        started = time.monotonic()
        first, done = await wait_for_count(
            mongo[database], es, alias, held + args.events, within=args.events / 100 + 120
        )
        cpu_percent = [proc.cpu_percent() for proc in cpu]
        server_cpu = {name: round(sum(cpu_percent_of(proc) for proc in procs)) for name, procs in servers.items()}
        machine_cpu = psutil.cpu_percent()
        # Per video, from the indexers' start to the last video stored (their startup included).
        cpu_ms_per_video = {
            name: round(1000 * (sum(cpu_seconds_of(p) for p in procs) - server_seconds[name]) / args.events, 3)
            for name, procs in servers.items()
        }
        cpu_ms_per_video["indexers"] = round(1000 * sum(cpu_seconds_of(p) for p in cpu) / args.events, 3)
        async with aiohttp.ClientSession() as session:
            texts = []
            for port in ports:
                async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                    texts.append(await response.text())
        latency_buckets: dict[float, float] = {}
        latency_sum = latency_count = size_sum = size_count = 0.0
        for text in texts:
            buckets, total, count = histogram(text, "tubewatch_indexer_batch_seconds")
            for bound, value in buckets:
                latency_buckets[bound] = latency_buckets.get(bound, 0) + value
            latency_sum, latency_count = latency_sum + total, latency_count + count
            _, total, count = histogram(text, "tubewatch_indexer_batch_size")
            size_sum, size_count = size_sum + total, size_count + count
        merged = sorted(latency_buckets.items())
        store_ms: dict[str, float | None] = {}
        for store in ("mongodb", "elasticsearch"):
            total = sum(_labelled(text, "tubewatch_indexer_store_seconds_sum", store) for text in texts)
            count = sum(_labelled(text, "tubewatch_indexer_store_seconds_count", store) for text in texts)
            store_ms[store] = round(1000 * total / count, 1) if count else None
        result = {
            "percolation": {"queries": args.queries, "channel_share": args.channel_share} if percolation else None,
            "catalogue_videos_before": held,
            "events": args.events,
            "indexers": args.indexers,
            "publish_msgs_per_second": round(publish_rate),
            "sustained_videos_per_second": round(args.events / (done - first)),
            "end_to_end_videos_per_second_incl_startup": round(args.events / (done - started)),
            "seconds_first_to_last_stored": round(done - first, 2),
            "batches": int(latency_count),
            "mean_batch_size": round(size_sum / size_count, 1) if size_count else None,
            "batch_latency_mean_ms": round(1000 * latency_sum / latency_count, 1) if latency_count else None,
            "batch_latency_p50_ms_at_most": 1000 * quantile_bound(merged, latency_count, 0.5),
            "batch_latency_p95_ms_at_most": 1000 * quantile_bound(merged, latency_count, 0.95),
            "store_latency_mean_ms": store_ms,
            "indexer_cpu_percent": [round(c) for c in cpu_percent],
            # Of one core (200 = both cores of this machine), over the whole run, startup included.
            "server_cpu_percent": server_cpu,
            "machine_cpu_percent_of_all_cores": round(machine_cpu),
            "cpu_ms_per_video": cpu_ms_per_video,
            "load_average_1m_at_end": round(os.getloadavg()[0], 1),
            "settings": {k: v for k, v in os.environ.items() if k.startswith("INDEX_")},
            "sizes": await store_sizes(mongo, es, database, alias),
        }
        return result
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            await process.wait()
        channel_connection = await aio_pika.connect(stack.amqp_url)
        async with channel_connection:
            channel = await channel_connection.channel()
            for queue in (names.queue, names.dead_queue):
                await channel.queue_delete(queue)
            for exchange in (names.exchange, names.dead_exchange):
                await channel.exchange_delete(exchange)
        if not args.keep and catalogue is None:
            await drop(mongo, es, database, alias)
        await es.close()
        await mongo.close()


async def full_catalogue_phase(args: argparse.Namespace, stack: StackSettings, run_id: str) -> dict[str, Any]:
    """Phase 2: ``--catalogue-videos`` in MongoDB, the reindex building the search index from them
    (timed), then phase 1 into that full catalogue."""
    database, alias = f"{run_id}_full".replace("-", "_"), f"{run_id}-full"
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongodb_url, tz_aware=True)
    es = AsyncElasticsearch(stack.elasticsearch_url, request_timeout=120)
    try:
        reindexed = await fill_and_reindex(args, stack, mongo=mongo, es=es, database=database, alias=alias)
        print("reindex", json.dumps(reindexed, indent=2), flush=True)
        print(f"pipeline into the catalogue of {args.catalogue_videos:,} videos ...", flush=True)
        pipeline = await pipeline_phase(
            args, stack, f"{run_id}-into-full", catalogue=(database, alias, args.catalogue_videos)
        )
        return {"reindex": reindexed, "pipeline": pipeline}
    finally:
        if not args.keep:
            await drop(mongo, es, database, alias)
        await es.close()
        await mongo.close()


async def fill_and_reindex(
    args: argparse.Namespace,
    stack: StackSettings,
    *,
    mongo: AsyncMongoClient[dict[str, Any]],
    es: AsyncElasticsearch,
    database: str,
    alias: str,
) -> dict[str, Any]:
    """MongoDB filled directly (not timed), then ``python -m services.indexer reindex`` into ``alias``."""
    db = mongo[database]
    total = args.catalogue_videos
    print(f"inserting {total:,} videos into MongoDB (not timed) ...", flush=True)
    now = datetime.now(UTC)
    chunk = 20_000
    inserting: asyncio.Task[Any] | None = None
    for start in range(0, total, chunk):
        # The next chunk is generated while MongoDB inserts the previous one.
        docs = [new_document(e, now) for e in make_events(min(chunk, total - start), seed=1000 + start)]
        if inserting is not None:
            await inserting
        inserting = asyncio.create_task(db[VIDEOS_COLLECTION].insert_many(docs, ordered=False))
    if inserting is not None:
        await inserting
    # Built once at the end (much faster than maintained per insert), as a long-running catalogue has them.
    print("building MongoDB's indexes (not timed) ...", flush=True)
    building = time.monotonic()
    await ensure_mongo_indexes(db)
    index_build_seconds = time.monotonic() - building
    text_started = time.monotonic()
    await db[VIDEOS_COLLECTION].drop_index(MONGO_TEXT_INDEX.document["name"])
    await ensure_text_index(db)
    text_index_build_seconds = time.monotonic() - text_started
    env = indexer_env(stack, QueueNames("unused", "unused"), database, alias, free_port())
    print("python -m services.indexer reindex ...", flush=True)
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.indexer", "reindex", cwd=PROJECT_ROOT, env=env
    )
    watched = psutil.Process(process.pid)
    cpu_seconds = 0.0
    while process.returncode is None:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = watched.cpu_times()
            cpu_seconds = times.user + times.system
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), timeout=0.5)
    if process.returncode != 0:
        raise RuntimeError("reindex failed")
    seconds = time.monotonic() - started
    indexed = (await es.count(index=alias))["count"]
    return {
        "documents": total,
        "indexed": indexed,
        "seconds": round(seconds, 1),
        "documents_per_second": round(total / seconds),
        "reindex_process_cpu_seconds": round(cpu_seconds, 1),
        "mongodb_index_build_seconds": round(index_build_seconds, 1),
        "mongodb_text_index_build_seconds": round(text_index_build_seconds, 1),
        "sizes": await store_sizes(mongo, es, database, alias),
    }


async def drop(mongo: AsyncMongoClient[dict[str, Any]], es: AsyncElasticsearch, database: str, alias: str) -> None:
    await mongo.drop_database(database)
    found = await es.indices.get(index=f"{alias}-v*", expand_wildcards="all", allow_no_indices=True)
    if found.body:
        await es.indices.delete(index=",".join(found.body))


async def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m deploy.bench.indexer", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000, help="events through RabbitMQ (phase 1)")
    parser.add_argument("--indexers", type=int, default=1, help="indexer processes sharing the queue")
    parser.add_argument(
        "--catalogue-videos",
        type=int,
        default=1_000_000,
        help="videos the full catalogue holds (phase 2: reindexed, then written into); 0 skips",
    )
    parser.add_argument("--percolation", choices=("both", "on", "off"), default="both", help="attribution in phase 1")
    parser.add_argument("--queries", type=int, default=20, help="configured queries percolated against")
    parser.add_argument("--channel-share", type=float, default=0.5, help="share of events found through a channel")
    parser.add_argument(
        "--rounds", type=int, default=1, help="repeat phase 1 (with --percolation both: alternating the order)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database and index (for inspection)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    stack = StackSettings()
    run_id = f"bench-{uuid.uuid4().hex[:8]}"
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30),
            "python": platform.python_version(),
            "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
        },
    }
    probe: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongodb_url, tz_aware=True)
    async with probe:
        results["machine"]["mongodb_wiredtiger_cache_gb"] = round(await wiredtiger_cache_bytes(probe) / 2**30, 2)
    runs = {"both": (False, True), "on": (True,), "off": (False,)}[args.percolation]
    ratios: list[dict[str, Any]] = []
    for round_number in range(args.rounds if args.events else 0):
        # Alternate the order, so a machine that warms up or slows down favours neither side.
        for percolation in runs if round_number % 2 == 0 else runs[::-1]:
            key = "pipeline_with_percolation" if percolation else "pipeline"
            run = f"{run_id}-{round_number}-{int(percolation)}"
            results[key] = await pipeline_phase(args, stack, run, percolation=percolation)
            print(key, json.dumps(results[key], indent=2), flush=True)
        if len(runs) == 2:
            off, on = (results[key]["sustained_videos_per_second"] for key in ("pipeline", "pipeline_with_percolation"))
            ratios.append({"without": off, "with": on, "ratio": round(on / off, 3)})
            print(f"throughput with percolation: {on:,} videos/s, without: {off:,} ({on / off:.0%})", flush=True)
    if ratios:
        results["percolation_rounds"] = ratios
        results["percolation_throughput_ratio"] = statistics.median(r["ratio"] for r in ratios)
        print(f"median ratio over {len(ratios)} round(s): {results['percolation_throughput_ratio']:.0%}", flush=True)
    if args.catalogue_videos:
        full = await full_catalogue_phase(args, stack, run_id)
        results["reindex"] = full["reindex"]
        results["pipeline_into_full_catalogue"] = full["pipeline"]
        print("pipeline_into_full_catalogue", json.dumps(full["pipeline"], indent=2), flush=True)
        if "pipeline" in results:
            empty, into_full = (r["sustained_videos_per_second"] for r in (results["pipeline"], full["pipeline"]))
            print(
                f"sustained into an empty catalogue: {empty:,} videos/s; into {args.catalogue_videos:,}: {into_full:,}",
                flush=True,
            )
    results["machine"]["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results written to {args.out}")


if __name__ == "__main__":
    asyncio.run(main())
