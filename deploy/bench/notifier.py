"""``make bench-notifier``: how fast the notifier matches stored videos against 10,000 saved searches, and
how long a match takes from the indexer's acknowledgement of its batch to the webhook receiver's 2xx.

Setup: a catalogue vocabulary of ``--vocabulary`` words (used Zipf-like, as words are), video titles
and descriptions drawn from it, and ``--saved-searches`` saved searches of one to three words drawn
from it, each drawn from one sample video and kept if it matches one or two of ``--calibration`` other
sample videos (counted on other videos than the one its words came from, which every such text matches
and which would bias the figure low), so that a video matches about two on average (the figure measured
is printed). Every saved search has a webhook to a receiver of this process on loopback, which answers
200 at once; the receiver listens on ``--receiver-hosts`` loopback addresses (127.0.0.1, 127.0.0.2, …,
all in ``WEBHOOK_ALLOW_HOSTS``) and the webhooks are spread over them, as 10,000 saved searches'
webhooks are spread over many receivers (each host gets WEBHOOK_CONCURRENCY_PER_HOST requests at once).
``--notifiers`` (2: one per core of this machine kind) real notifier processes (``python -m
services.notifier``, competing for the stored events and the deliveries) and a real indexer process
(``python -m services.indexer``) run on private names; the videos go through RabbitMQ and the indexer.

Phase 1 (throughput): ``--videos`` videos are published as a backlog and stored by the indexer while
the notifier is stopped (its durable queue keeps the stored events), then the notifier is started
again: videos percolated per second (the notifier's own counter, from the first to the last), so the
figure is the notifier's and not the indexer's pace, and deliveries received per second.
Phase 2 (latency): ``--rate`` videos a second for ``--seconds`` seconds, once phase 1's deliveries
have all arrived; each of its deliveries' latency is its arrival at the receiver minus its batch's
``stored_at`` (the indexer publishes the stored event just before it acknowledges the batch; this
process reads the same events from a queue of its own): p50 and p99.

Everything uses private names and is removed afterwards. Results are printed and written to
``.local/bench/notifier.json``. A benchmark, not a test: figures depend on the machine and on what
else runs on it.
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
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import psutil
from aiohttp import web
from elasticsearch import AsyncElasticsearch
from pymongo import AsyncMongoClient

from deploy.bench.indexer import free_port, publish
from services.common.catalogue import ensure_search_index
from services.common.events import FoundBy, Thumbnail, VideoEvent
from services.common.saved_searches import (
    SAVED_SEARCHES_COLLECTION,
    Webhook,
    WebhookSecret,
    new_saved_search,
    new_webhook_secret,
)
from services.common.settings import PROJECT_ROOT, StackSettings
from services.common.stored_events import VideosStored
from services.common.topology import ROUTING_KEY_VIDEO_FOUND, QueueNames, declare_index_queue, declare_stored_exchange
from services.common.video_filters import VideoFilters
from services.notifier.deliveries import DEFER_MS, DeliveryQueueNames
from services.notifier.metrics import STAGES
from services.notifier.webhook_settings import DeliverySettings

RESULTS = PROJECT_ROOT / ".local" / "bench" / "notifier.json"
_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_SYLLABLES = [c + v for c in "bcdfghklmnprstvz" for v in "aeiou"]
_WORD = re.compile(r"[a-z]+")


def vocabulary(size: int, rng: random.Random) -> list[str]:
    """``size`` distinct made-up words of two to four syllables (no English stop word among them)."""
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


class Catalogue:
    """Titles and descriptions of words drawn Zipf-like (rank r with weight 1/r) from the vocabulary."""

    def __init__(self, words: list[str], rng: random.Random) -> None:
        self.words = words
        self._weights = [1 / (rank + 1) for rank in range(len(words))]
        self._rng = rng

    def text(self, count: int) -> list[str]:
        return self._rng.choices(self.words, weights=self._weights, k=count)

    def event(self, index: int, now: datetime) -> VideoEvent:
        rng = self._rng
        video_id = (
            "".join(rng.choice(_ID_ALPHABET) for _ in range(9))
            + _ID_ALPHABET[index // 64 % 64]
            + _ID_ALPHABET[index % 64]
        )
        channel = rng.randrange(500)
        return VideoEvent(
            video_id=video_id,
            found_by=FoundBy.search("bench"),
            title=" ".join(self.text(rng.randint(5, 9))).capitalize(),
            description=" ".join(self.text(rng.randint(15, 25))),
            published_at=now - timedelta(seconds=rng.randrange(3600)),
            channel_id=f"UC{channel:022d}",
            channel_title=f"Channel {channel}",
            thumbnails={
                "default": Thumbnail(url=f"https://i.ytimg.com/vi/{video_id}/default.jpg", width=120, height=90)
            },
            fetched_at=now,
        )


def saved_search_texts(catalogue: Catalogue, count: int, calibration: int, rng: random.Random) -> list[str]:
    """``count`` texts of one to three words, each found (as whole words) in one or two of ``calibration``
    sample videos: so a video matches about ``count * 1.5 / calibration`` of them."""
    now = datetime.now(UTC)
    sample = [catalogue.event(i, now) for i in range(2 * calibration)]
    docs = [set(_WORD.findall(f"{e.title} {e.description}".lower())) for e in sample]
    sources, counted = docs[:calibration], docs[calibration:]
    postings: dict[str, set[int]] = {}
    for position, words in enumerate(counted):
        for word in words:
            postings.setdefault(word, set()).add(position)
    texts: list[str] = []
    seen: set[str] = set()
    while len(texts) < count:
        doc = sorted(rng.choice(sources))
        chosen = rng.sample(doc, k=min(len(doc), rng.choice((1, 2, 2, 3, 3))))
        matching = set.intersection(*(postings.get(w, set()) for w in chosen))
        text = " ".join(chosen)
        if 1 <= len(matching) <= 2 and text not in seen:
            seen.add(text)
            texts.append(text)
    return texts


class Receiver:
    """The webhook receiver on ``hosts`` loopback addresses: 200 at once, each delivery's arrival (wall
    clock) recorded."""

    def __init__(self, hosts: int) -> None:
        self.arrivals: list[tuple[float, str, str]] = []  # (time, delivery_id, video_id)
        self.hosts = [f"127.0.0.{n + 1}" for n in range(hosts)]
        self.port = free_port()
        self._runner: web.AppRunner | None = None
        self._arrived = asyncio.Event()
        self._wanted = 0

    async def wait_for(self, count: int, within: float) -> None:
        """Until ``count`` deliveries arrived in all (or ``within`` seconds passed)."""
        self._wanted = count
        self._arrived.clear()
        if len(self.arrivals) < count:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), timeout=within)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        for host in self.hosts:
            await web.TCPSite(self._runner, host, self.port).start()

    def url(self, n: int) -> str:
        """The webhook URL of the ``n``-th saved search."""
        return f"http://{self.hosts[n % len(self.hosts)]}:{self.port}/hook"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.arrivals.append((time.time(), body["delivery_id"], body["video"]["video_id"]))
        if len(self.arrivals) >= self._wanted:
            self._arrived.set()
        return web.Response(status=200)


class StoredWatch:
    """This process's own queue of the stored events: each video's ``stored_at``."""

    def __init__(self) -> None:
        self.stored_at: dict[str, float] = {}
        self.events = 0

    async def consume(self, connection: aio_pika.abc.AbstractConnection, names: QueueNames) -> None:
        channel = await connection.channel()
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(await declare_stored_exchange(channel, names))

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            event = VideosStored.model_validate_json(message.body)
            self.events += 1
            moment = event.stored_at.timestamp()
            for video_id in event.video_ids:
                self.stored_at.setdefault(video_id, moment)
            await message.ack()

        await queue.consume(on_message)


def process_env(
    stack: StackSettings, run_id: str, names: QueueNames, port: int, receiver: Receiver, **extra: str
) -> dict[str, str]:
    return {
        **os.environ,
        "AMQP_URL": stack.amqp_url,
        "AMQP_EXCHANGE": names.exchange,
        "AMQP_QUEUE": names.queue,
        "MONGODB_URL": stack.mongodb_url,
        "MONGODB_DATABASE": run_id.replace("-", "_"),
        "ELASTICSEARCH_URL": stack.elasticsearch_url,
        "ELASTICSEARCH_INDEX": run_id,
        "LOG_LEVEL": "WARNING",
        "NOTIFIER_QUEUE": f"{run_id}.notify",
        "DELIVERY_QUEUE_PREFIX": f"{run_id}.deliveries",
        "WEBHOOK_ALLOW_HOSTS": ",".join(receiver.hosts),
        "INDEX_ATTRIBUTION": "false",
        "NOTIFIER_PORT": str(port),
        "INDEXER_PORT": str(port),
        **extra,
    }


async def metric(session: aiohttp.ClientSession, port: int | list[int], name: str) -> float:
    """A metric's value, summed over the processes of ``port`` (a list: each notifier's)."""
    total = 0.0
    for one in port if isinstance(port, list) else [port]:
        async with session.get(f"http://127.0.0.1:{one}/metrics") as response:
            text = await response.text()
        match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
        total += float(match.group(1)) if match else 0.0
    return total


class CpuSeconds:
    """CPU seconds (user and system) each process took since the last ``taken``: this benchmark's
    processes, and the servers found listening on the stack's ports (shared: other clients count too)."""

    def __init__(self, pids: dict[str, int], stack: StackSettings) -> None:
        self._processes = {name: psutil.Process(pid) for name, pid in pids.items()}
        ports = {
            "elasticsearch": _first_port(stack.elasticsearch_url, 9200),
            "mongodb": _first_port(stack.mongodb_url, 27017),
            "rabbitmq": _first_port(stack.amqp_url, 5672),
        }
        with contextlib.suppress(psutil.Error):
            for connection in psutil.net_connections("tcp"):
                for name, port in ports.items():
                    address = connection.laddr
                    listening = connection.status == psutil.CONN_LISTEN and connection.pid
                    if listening and isinstance(address, tuple) and address[1:2] == (port,):
                        self._processes.setdefault(name, psutil.Process(connection.pid))
        self._last = self._times()

    def _times(self) -> dict[str, float]:
        times = {}
        for name, process in self._processes.items():
            with contextlib.suppress(psutil.Error):
                used = process.cpu_times()
                times[name] = used.user + used.system
        return times

    def taken(self) -> dict[str, float]:
        now = self._times()
        taken = {name: round(now[name] - self._last.get(name, 0.0), 1) for name in now}
        self._last = now
        return taken


def _first_port(url: str, default: int) -> int:
    """The port of a URL's first host (``scheme://[user@]host:port[,host:port…]/…``)."""
    hosts = url.partition("://")[2].split("/")[0].rpartition("@")[2]
    host = hosts.split(",")[0]
    return int(host.rpartition(":")[2]) if ":" in host and host.rpartition(":")[2].isdigit() else default


async def mean(session: aiohttp.ClientSession, port: int | list[int], histogram: str) -> float:
    """A histogram's mean (``name`` or ``name{labels}``), in seconds."""
    name, _, labels = histogram.partition("{")
    labels = "{" + labels if labels else ""
    total = await metric(session, port, f"{name}_sum{labels}")
    return round(total / max(1.0, await metric(session, port, f"{name}_count{labels}")), 3)


async def wait_ready(session: aiohttp.ClientSession, port: int, within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                if response.status == 200:
                    return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"the process on port {port} was not ready within {within}s")


async def settled_matches(session: aiohttp.ClientSession, port: list[int], events: int, within: float) -> float:
    """The queued matches once the notifier matched ``events`` stored events (all of the backlog's)."""
    deadline = time.monotonic() + within
    matched = 'tubewatch_notifier_stored_events_total{outcome="matched"}'
    while await metric(session, port, matched) < events:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the notifier did not match the {events} stored events in time")
        await asyncio.sleep(0.1)
    return await metric(session, port, 'tubewatch_notifier_matches_total{outcome="queued"}')


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    stack = StackSettings()
    run_id = f"bench-notifier-{uuid.uuid4().hex[:8]}"
    names = QueueNames(exchange=f"{run_id}.videos", queue=f"{run_id}.videos.index")
    database = run_id.replace("-", "_")
    rng = random.Random(20)
    # Chosen before any connection opens: minutes of computing on a busy machine would let the AMQP
    # connection's heartbeat lapse.
    catalogue = Catalogue(vocabulary(args.vocabulary, rng), rng)
    print(f"choosing {args.saved_searches:,} saved searches ...", flush=True)
    texts = saved_search_texts(catalogue, args.saved_searches, args.calibration, rng)
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongodb_url, tz_aware=True)
    es = AsyncElasticsearch(stack.elasticsearch_url, request_timeout=120)
    connection = await aio_pika.connect(stack.amqp_url)
    receiver = Receiver(args.receiver_hosts)
    processes: list[asyncio.subprocess.Process] = []
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
    try:
        await receiver.start()
        created = datetime.now(UTC) - timedelta(hours=1)
        documents = []
        for n, text in enumerate(texts):
            hook = Webhook(
                url=receiver.url(n),
                secrets=[WebhookSecret(value=new_webhook_secret(), created_at=created)],
            )
            documents.append(new_saved_search(text, VideoFilters(q=text), hook, created).document())
        await mongo[database][SAVED_SEARCHES_COLLECTION].insert_many(documents)
        await ensure_search_index(es, run_id)
        channel = await connection.channel()
        await declare_index_queue(channel, names)
        watch = StoredWatch()
        await watch.consume(connection, names)

        # Competing consumers of the stored events and of the deliveries, each with its port.
        notifier_ports, indexer_port = [free_port() for _ in range(args.notifiers)], free_port()
        notifier_port = notifier_ports[0]

        async def start_notifier(port: int) -> asyncio.subprocess.Process:
            started = time.monotonic()
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "services.notifier",
                cwd=PROJECT_ROOT,
                env=process_env(stack, run_id, names, port, receiver),
            )
            processes.append(process)
            await wait_ready(session, port, within=300)
            print(f"notifier ready with {len(texts):,} saved searches in {time.monotonic() - started:.1f}s", flush=True)
            return process

        # Started once to build the percolator index and declare its queue, then stopped: the backlog's
        # stored events wait in that queue while the indexer stores the videos.
        notifier = await start_notifier(notifier_port)
        notifier.terminate()
        await notifier.wait()
        processes.remove(notifier)

        # Phase 1: a backlog through the indexer, then through the notifier.
        now = datetime.now(UTC)
        backlog = [catalogue.event(i, now) for i in range(args.videos)]
        await publish(stack.amqp_url, names, [e.model_dump_json().encode() for e in backlog])
        indexer = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.indexer",
            cwd=PROJECT_ROOT,
            env=process_env(stack, run_id, names, indexer_port, receiver),
        )
        processes.append(indexer)
        stored_deadline = time.monotonic() + args.videos / 100 + 120
        backlog_ids = {e.video_id for e in backlog}
        while not backlog_ids <= watch.stored_at.keys():
            if time.monotonic() > stored_deadline:
                raise TimeoutError("the indexer did not store the backlog in time")
            await asyncio.sleep(0.2)
        print(f"backlog of {args.videos:,} stored by the indexer", flush=True)
        notifiers = list(await asyncio.gather(*(start_notifier(port) for port in notifier_ports)))
        cpu_notifiers = [psutil.Process(n.pid) for n in notifiers]
        for cpu_notifier in cpu_notifiers:
            cpu_notifier.cpu_percent()
        notifier_pids = {
            "notifier" if len(notifiers) == 1 else f"notifier{n + 1}": notifier.pid
            for n, notifier in enumerate(notifiers)
        }
        cpu = CpuSeconds({**notifier_pids, "indexer": indexer.pid, "bench_and_receiver": os.getpid()}, stack)
        psutil.cpu_percent()
        percolated = "tubewatch_notifier_videos_percolated_total"
        first = last = None
        deadline = time.monotonic() + args.videos / 50 + 120
        while time.monotonic() < deadline:
            count = await metric(session, notifier_ports, percolated)
            if count and first is None:
                first = time.monotonic()
            if count >= args.videos:
                last = time.monotonic()
                break
            await asyncio.sleep(0.25)  # each poll is a /metrics scrape, work for the notifier
        if first is None or last is None:
            raise TimeoutError("the backlog was not percolated in time")
        percolate_cpu = {
            "notifier_cpu_percent": round(sum(c.cpu_percent() for c in cpu_notifiers)),
            "machine_cpu_percent_of_all_cores": round(psutil.cpu_percent()),
        }
        queued = await settled_matches(session, notifier_ports, watch.events, within=args.videos / 50 + 120)
        # Where an event's time went: the whole event against each of its stages (wait_synced, read,
        # percolate, record, publish with confirms, mark_queued), as the notifier's own histograms saw them.
        timings: dict[str, Any] = {
            name: await mean(session, notifier_ports, f"tubewatch_notifier_{name}")
            for name in ("percolate_seconds", "event_seconds")
        }
        timings["stages"] = {
            stage: await mean(session, notifier_ports, f'tubewatch_notifier_event_stage_seconds{{stage="{stage}"}}')
            for stage in STAGES
        }
        await receiver.wait_for(int(queued), within=max(120, queued / 50))
        phase_cpu = cpu.taken()
        arrivals = [t for t, _, _ in receiver.arrivals]
        throughput = {
            "videos": args.videos,
            "notifiers": args.notifiers,
            "videos_percolated_per_second": round(args.videos / (last - first)),
            "matches_queued": int(queued),
            "matches_per_video": round(queued / args.videos, 2),
            "deliveries_received": len(arrivals),
            "deliveries_per_second": round(len(arrivals) / (max(arrivals) - min(arrivals)))
            if len(arrivals) > 1
            else None,
            "while_percolating": percolate_cpu,
            "cpu_seconds_until_delivered": phase_cpu,
            "mean_seconds_per_event": timings,
        }
        print("throughput", json.dumps(throughput, indent=2), flush=True)

        # Phase 2: a steady rate, latency from the batch's stored_at to the receiver's 2xx.
        receiver.arrivals.clear()
        total = args.rate * args.seconds
        paced = [catalogue.event(args.videos + i, datetime.now(UTC)) for i in range(total)]
        paced_ids = {e.video_id for e in paced}
        publisher = await connection.channel(publisher_confirms=True)
        exchange = await publisher.get_exchange(names.exchange)
        tick = 0.1
        per_tick = max(1, round(args.rate * tick))
        begin = time.monotonic()
        for start in range(0, total, per_tick):
            await asyncio.gather(
                *(
                    exchange.publish(
                        aio_pika.Message(e.model_dump_json().encode(), delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                        ROUTING_KEY_VIDEO_FOUND,
                    )
                    for e in paced[start : start + per_tick]
                )
            )
            await asyncio.sleep(max(0.0, begin + (start // per_tick + 1) * tick - time.monotonic()))
        before = queued
        settle_deadline = time.monotonic() + 60
        while time.monotonic() < settle_deadline:
            queued = await metric(session, notifier_ports, 'tubewatch_notifier_matches_total{outcome="queued"}')
            if (
                await metric(session, notifier_ports, percolated) >= args.videos + total
                and len(receiver.arrivals) >= queued - before
            ):
                break
            await asyncio.sleep(0.1)
        phase_cpu = cpu.taken()
        latencies = [
            t - watch.stored_at[video_id]
            for t, _, video_id in receiver.arrivals
            if video_id in paced_ids and video_id in watch.stored_at
        ]
        latency = {
            "rate_videos_per_second": args.rate,
            "seconds": args.seconds,
            "deliveries": len(latencies),
            "p50_seconds": round(percentile(latencies, 0.5), 3) if latencies else None,
            "p99_seconds": round(percentile(latencies, 0.99), 3) if latencies else None,
            "max_seconds": round(max(latencies), 3) if latencies else None,
            "cpu_seconds": phase_cpu,
        }
        print("latency", json.dumps(latency, indent=2), flush=True)
        return {
            "saved_searches": len(texts),
            "vocabulary": args.vocabulary,
            "throughput": throughput,
            "latency": latency,
        }
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            await process.wait()
        await session.close()
        await receiver.close()
        await cleanup(connection, names, run_id)
        await connection.close()
        await mongo.drop_database(database)
        found = await es.indices.get(index=f"{run_id}*", expand_wildcards="all", allow_no_indices=True)
        if found.body:
            await es.indices.delete(index=",".join(found.body))
        await es.close()
        await mongo.close()


async def cleanup(connection: aio_pika.abc.AbstractConnection, names: QueueNames, run_id: str) -> None:
    channel = await connection.channel()
    deliveries = f"{run_id}.deliveries"
    queues = [
        names.queue,
        names.dead_queue,
        f"{run_id}.notify",
        f"{run_id}.notify.dead",
        f"{deliveries}.work",
        f"{deliveries}.dead",
    ]
    for queue in queues:
        await channel.queue_delete(queue)
    for exchange in (
        names.exchange,
        names.dead_exchange,
        names.stored_exchange,
        f"{run_id}.notify.dead",
        deliveries,
        f"{deliveries}.dead",
    ):
        await channel.exchange_delete(exchange)
    for delay_ms in {DEFER_MS, *DeliverySettings().retry_policy.delays_ms}:
        await channel.queue_delete(DeliveryQueueNames(deliveries).delay_queue(delay_ms))
    await channel.close()


async def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m deploy.bench.notifier", description=__doc__.split("\n\n")[0])
    parser.add_argument("--saved-searches", type=int, default=10_000)
    parser.add_argument("--vocabulary", type=int, default=20_000, help="words of the catalogue")
    parser.add_argument("--calibration", type=int, default=7_500, help="sample videos the saved searches are chosen on")
    parser.add_argument("--videos", type=int, default=10_000, help="videos of phase 1 (throughput)")
    parser.add_argument("--rate", type=int, default=100, help="videos a second in phase 2 (latency)")
    parser.add_argument("--seconds", type=int, default=30, help="length of phase 2")
    parser.add_argument("--receiver-hosts", type=int, default=8, help="loopback addresses the webhooks spread over")
    parser.add_argument(
        "--notifiers", type=int, default=2, help="notifier processes (competing consumers; 2: one per core here)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30),
            "python": platform.python_version(),
            "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
        },
    }
    results |= await run(args)
    results["machine"]["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results written to {args.out}")


if __name__ == "__main__":
    asyncio.run(main())
