"""The chaos soak: the whole system under faults and load, then every video reconciled.

Everything runs on private servers (its own MongoDB, Elasticsearch and RabbitMQ node on free
ports), so stopping a server never disturbs anything else on the machine.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import secrets
import string
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import aiohttp
import psutil
from elasticsearch import AsyncElasticsearch
from elasticsearch.helpers import async_scan
from pymongo import AsyncMongoClient

from services.common.catalogue import VIDEOS_COLLECTION
from services.common.clients import connect_amqp_robust, split_urls
from services.common.fetcher_state import LEASE_COLLECTION, LEASE_ID
from tests.conftest import free_port
from tests.private_stack import PrivateStack, Server
from tests.soak.processes import ServiceProcess
from tests.soak.report import write_chart, write_summary

logger = logging.getLogger("soak")

QUERIES = ("cricket", "football", "tennis")
FAULT_KINDS = (
    "kill_fetcher",
    "kill_indexer",
    "kill_api",
    "stop_elasticsearch",
    "stop_mongodb",
    "stop_rabbitmq",
    "pause_leader",
)
# API errors are excused only while something the API needs is down (and a short grace after).
DEPENDENCY_FAULTS = frozenset({"kill_api", "stop_elasticsearch", "stop_mongodb", "stop_rabbitmq"})
ERROR_GRACE_SECONDS = 10.0
LEASE_TTL_SECONDS = 6
SEARCH_WORDS = ("highlights", "cricket", "final", "match", "goal", "tennis")


@dataclass
class SoakConfig:
    seconds: float
    report_dir: Path
    fault_repeats: int = 2
    seed: int = 20261124
    videos_per_minute: int = 300  # per query: 5/s, a brisk but plausible upload rate
    drain_timeout: float = 240.0
    # How long a stopped server stays down (drawn uniformly), on top of its own stop and start.
    outage_seconds: tuple[float, float] = (5.0, 12.0)
    # How often the stored count and the processes' memory are read (the chart's resolution).
    sample_seconds: float = 2.0
    # Load and arrivals go on this long after the last fault, before the world is frozen and drained.
    tail_seconds: float = 0.0


@dataclass
class FaultWindow:
    kind: str
    target: str
    started: float
    ended: float = 0.0
    # What the fault cost, as the harness timed it (seconds): an election, a rejoin...
    measures: dict[str, float] = field(default_factory=dict)


@dataclass
class ApiSample:
    t: float
    kind: str
    status: int
    latency_ms: float
    served_by: str


@dataclass
class Sample:
    t: float
    videos_in_mongo: int | None
    rss_mib: dict[str, float | None]
    # The machine's 1-minute load average: what else ran beside the soak.
    load_1m: float | None = None


@dataclass
class SoakResult:
    passed: bool
    verdict: str
    counts: dict[str, Any]
    faults: list[FaultWindow] = field(default_factory=list)
    api: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def fake_key(rng: random.Random) -> str:
    """Shaped like a Google API key and plainly fake: the leak scan looks for these exact strings."""
    alphabet = string.ascii_letters + string.digits + "-_"
    return "AIza" + "".join(rng.choice(alphabet) for _ in range(35))


class Soak:
    """The single-node soak: private servers, two fetchers and indexers, one API; every fault kind."""

    fault_kinds: tuple[str, ...] = FAULT_KINDS
    # Faults during which (and ERROR_GRACE_SECONDS after) a failed API read is excused.
    excused_kinds: frozenset[str] = DEPENDENCY_FAULTS
    report_stem = "soak"
    chart_title = "tubewatch soak: ingest, API latency, memory; shaded: fault windows"
    # Where the services keep their data: a database, an alias and a work queue.
    database = "tubewatch"
    index = "videos"
    queue = "tubewatch.videos.index"

    def __init__(self, config: SoakConfig, stack: PrivateStack | None = None) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.report_dir = config.report_dir
        self.logs_dir = config.report_dir / "logs"
        # A stack handed in (a test session's) is shared: the soak starts what it needs of it and
        # leaves it running; without one it makes its own and removes it at the end.
        if stack is not None and not stack.own_broker:
            raise ValueError("the soak stops RabbitMQ: a shared stack needs a broker of its own (amqp_port)")
        self._stack: PrivateStack | None = stack
        self._own_stack = stack is None
        self.keys = {"exhausted": fake_key(self.rng), "big_a": fake_key(self.rng), "big_b": fake_key(self.rng)}
        self.ports = {name: free_port() for name in ("api", "emulator", "fetcher1", "fetcher2", "indexer1", "indexer2")}
        self.processes: dict[str, ServiceProcess] = {}
        self.faults: list[FaultWindow] = []
        self.api_samples: list[ApiSample] = []
        self.samples: list[Sample] = []
        self.t0 = time.monotonic()
        self._stop_load = asyncio.Event()
        self.cursor_secret = secrets.token_hex(32)
        self.problems: list[str] = []

    # ---- setup ---------------------------------------------------------------------------------

    def now(self) -> float:
        return time.monotonic() - self.t0

    @property
    def stack(self) -> PrivateStack:
        """The private servers (made on first use: a subclass with servers of its own never makes them)."""
        if self._stack is None:
            self._stack = PrivateStack(mongodb_port=free_port(), elasticsearch_port=free_port(), amqp_port=free_port())
        return self._stack

    # The servers' URLs (comma-separated lists where a cluster has several nodes).
    @property
    def mongodb_url(self) -> str:
        return self.stack.mongodb_url

    @property
    def elasticsearch_url(self) -> str:
        return self.stack.elasticsearch_url

    @property
    def amqp_url(self) -> str:
        return self.stack.amqp_url

    def servers_env(self) -> dict[str, str]:
        return {
            "AMQP_URL": self.amqp_url,
            "MONGODB_URL": self.mongodb_url,
            "ELASTICSEARCH_URL": self.elasticsearch_url,
        }

    def _env(self, **extra: str) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("YOUTUBE_", "EMULATOR_", "SEARCH_"))}
        return {
            **base,
            **self.servers_env(),
            "SEARCH_QUERIES": ",".join(QUERIES),
            "LOG_LEVEL": "DEBUG",
            "LOG_FORMAT": "json",
            "CURSOR_SECRET": self.cursor_secret,
            **extra,
        }

    def _service(self, name: str, module: str, **extra: str) -> ServiceProcess:
        process = ServiceProcess(name, module, self._env(**extra), self.logs_dir / f"{name}.log")
        self.processes[name] = process
        return process

    async def start_servers(self) -> None:
        servers: tuple[Server, ...] = ("rabbitmq", "mongodb", "elasticsearch")
        for server in servers:
            await asyncio.to_thread(self.stack.start, server)

    async def close_servers(self) -> None:
        if self._own_stack:
            await asyncio.to_thread(self.stack.close)
            return
        # A shared stack stays up: only what the services made in it goes (its RabbitMQ is the
        # soak's alone, removed with the stack).
        await self.drop_stores(f"{self.index}*")

    async def drop_stores(self, indices: str) -> None:
        """Drop the services' database in MongoDB and the indices matching ``indices`` in Elasticsearch."""
        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(self.mongodb_url, serverSelectionTimeoutMS=30000)
        try:
            await mongo.drop_database(self.database)
        finally:
            await mongo.close()
        es = AsyncElasticsearch(split_urls(self.elasticsearch_url), request_timeout=60, max_retries=3)
        try:
            found = await es.indices.get(index=indices, allow_no_indices=True, expand_wildcards="all")
            if found.body:
                await es.indices.delete(index=",".join(found.body))
        finally:
            await es.close()

    async def start(self) -> None:
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        await self.start_servers()
        emulator_url = f"http://127.0.0.1:{self.ports['emulator']}"
        self._service(
            "emulator",
            "youtube_emulator",
            EMULATOR_PORT=str(self.ports["emulator"]),
            SEARCH_QUERIES=",".join(QUERIES),
            EMULATOR_SEED=str(self.config.seed),
            EMULATOR_VIDEOS_PER_MINUTE=str(self.config.videos_per_minute),
            EMULATOR_BACKFILL_SECONDS="60",
            EMULATOR_LATE_FRACTION="0.05",
            EMULATOR_LATE_MAX_SECONDS="120",
            EMULATOR_DUPLICATE_RATE="0.05",
            EMULATOR_FAULT_5XX="0.05",
            EMULATOR_SEARCH_CALLS_PER_DAY="1000000",
            EMULATOR_UNITS_PER_DAY="100000000",
            EMULATOR_KEY_BUDGETS=f"{self.keys['exhausted']}:10",
        ).start()
        await self._wait_healthy(emulator_url)
        fetcher_env = {
            "YOUTUBE_API_URL": f"{emulator_url}/youtube/v3",
            "YOUTUBE_API_KEYS": " ".join(self.keys.values()),
            "YOUTUBE_SEARCH_CALLS_PER_DAY": "1000000",
            "POLL_INTERVAL_SECONDS": "2",
            "LATE_SWEEP_EVERY": "3",
            "OVERLAP_SECONDS": "300",
            "INITIAL_LOOKBACK_SECONDS": "120",
            "LEASE_TTL_SECONDS": str(LEASE_TTL_SECONDS),
            # The reconciliation's ground truth is what search showed for each query; a followed
            # channel's uploads are another truth (reconciled by the channel tests), so none is
            # followed here.
            "AUTO_FOLLOW_CHANNELS": "0",
        }
        for name in self.start_services(fetcher_env):
            await self._wait_healthy(f"http://127.0.0.1:{self.ports[name]}")
        self.t0 = time.monotonic()

    def start_services(self, fetcher_env: dict[str, str]) -> list[str]:
        """Start the pipeline's services; returns their names (each serves /healthz on its port)."""
        for index in (1, 2):
            self._service(f"indexer{index}", "indexer", INDEXER_PORT=str(self.ports[f"indexer{index}"])).start()
            self._service(
                f"fetcher{index}", "fetcher", FETCHER_PORT=str(self.ports[f"fetcher{index}"]), **fetcher_env
            ).start()
        self._service("api", "api", API_PORT=str(self.ports["api"])).start()
        return ["indexer1", "indexer2", "fetcher1", "fetcher2", "api"]

    async def _wait_healthy(self, base: str, within: float = 120) -> None:
        deadline = time.monotonic() + within
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            while time.monotonic() < deadline:
                try:
                    async with session.get(f"{base}/healthz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
        raise RuntimeError(f"{base} did not become healthy within {within}s (logs in {self.logs_dir})")

    # ---- load ------------------------------------------------------------------------------------

    async def load(self, workers: int = 3) -> None:
        api = f"http://127.0.0.1:{self.ports['api']}"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            await asyncio.gather(*(self._load_worker(session, api, random.Random(i)) for i in range(workers)))

    async def _load_worker(self, session: aiohttp.ClientSession, api: str, rng: random.Random) -> None:
        while not self._stop_load.is_set():
            action = rng.choice(("list", "search", "walk"))
            params: dict[str, str] = {"limit": "20"}
            if action == "search":
                params["q"] = rng.choice(SEARCH_WORDS)
            pages = 3 if action == "walk" else 1
            for _ in range(pages):
                body = await self._timed_get(session, f"{api}/api/v1/videos", params, action)
                cursor = body.get("next_cursor") if body else None
                if not cursor:
                    break
                params = {"limit": "20", "cursor": str(cursor)}
            await asyncio.sleep(0.05)

    async def _timed_get(
        self, session: aiohttp.ClientSession, url: str, params: dict[str, str], kind: str
    ) -> dict[str, Any] | None:
        started = time.monotonic()
        status, served_by, body = 0, "", None
        try:
            async with session.get(url, params=params) as response:
                status = response.status
                served_by = response.headers.get("X-Served-By", "")
                if status == 200:
                    body = await response.json()
        except (aiohttp.ClientError, TimeoutError):
            status = 0
        self.api_samples.append(ApiSample(self.now(), kind, status, (time.monotonic() - started) * 1000, served_by))
        return body

    # ---- sampling ----------------------------------------------------------------------------------

    async def sample(self) -> None:
        # A secondary answers while a replica set elects a primary: the count goes on being read.
        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            self.mongodb_url, serverSelectionTimeoutMS=1000, tz_aware=True, readPreference="primaryPreferred"
        )
        try:
            while not self._stop_load.is_set():
                count: int | None
                try:
                    count = await mongo[self.database][VIDEOS_COLLECTION].estimated_document_count()
                except Exception:
                    count = None
                rss = {name: p.rss_mib() for name, p in self.processes.items()}
                self.samples.append(Sample(self.now(), count, rss, os.getloadavg()[0]))
                await asyncio.sleep(self.config.sample_seconds)
        finally:
            await mongo.close()

    # ---- chaos -------------------------------------------------------------------------------------

    async def chaos(self) -> None:
        plan = [kind for kind in self.fault_kinds for _ in range(self.config.fault_repeats)]
        self.rng.shuffle(plan)
        # Spread the faults over the run: a quiet gap before each, the rest of the time for recovery.
        gap = max(3.0, self.config.seconds / (len(plan) + 1) - 12)
        for kind in plan:
            await asyncio.sleep(self.rng.uniform(0.5, 1.5) * gap)
            window = FaultWindow(kind, "", self.now())
            self.faults.append(window)
            try:
                await self._inflict(kind, window)
            finally:
                window.ended = self.now()
            logger.info("fault done kind=%s target=%s %.1fs", kind, window.target, window.ended - window.started)

    async def _inflict(self, kind: str, window: FaultWindow) -> None:
        if kind in ("kill_fetcher", "kill_indexer", "kill_api"):
            role = kind.removeprefix("kill_")
            name = role if role == "api" else f"{role}{self.rng.choice((1, 2))}"
            window.target = name
            process = self.processes[name]
            process.kill()
            await asyncio.sleep(self.rng.uniform(1, 3))
            process.start()
            process.restarts += 1
            if name == "api":
                await self._wait_healthy(f"http://127.0.0.1:{self.ports['api']}")
        elif kind.startswith("stop_"):
            server = cast(Server, kind.removeprefix("stop_"))
            window.target = server
            await asyncio.to_thread(self.stack.stop, server)
            await asyncio.sleep(self.rng.uniform(*self.config.outage_seconds))
            await asyncio.to_thread(self.stack.start, server)
        elif kind == "pause_leader":
            name = await self._leader()
            window.target = name
            process = self.processes[name]
            process.pause()
            await asyncio.sleep(LEASE_TTL_SECONDS + 4)  # past the lease: it must stand down on waking
            process.resume()

    async def _leader(self) -> str:
        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(self.mongodb_url, serverSelectionTimeoutMS=2000)
        try:
            lease = await mongo[self.database][LEASE_COLLECTION].find_one({"_id": LEASE_ID})
        except Exception:
            lease = None
        finally:
            await mongo.close()
        holder = str((lease or {}).get("holder", ""))
        for name in ("fetcher1", "fetcher2"):
            pid = self.processes[name].pid
            if pid is not None and str(pid) in holder.split(":"):
                return name
        return "fetcher1"

    # ---- drain and reconcile ----------------------------------------------------------------------------

    async def _emulator(self, method: str, path: str, **kwargs: Any) -> Any:
        url = f"http://127.0.0.1:{self.ports['emulator']}{path}"
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session,
            session.request(method, url, **kwargs) as response,
        ):
            response.raise_for_status()
            return await response.json()

    async def truth(self) -> dict[str, set[str]]:
        result: dict[str, set[str]] = {}
        for query in QUERIES:
            body = await self._emulator("GET", "/admin/visible", params={"query": query})
            result[query] = {v["videoId"] for v in body["videos"]}
        return result

    async def stored(self) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(self.mongodb_url, serverSelectionTimeoutMS=20000)
        es = AsyncElasticsearch(split_urls(self.elasticsearch_url), request_timeout=60, max_retries=3)
        try:
            in_mongo: dict[str, set[str]] = {}
            async for doc in mongo[self.database][VIDEOS_COLLECTION].find({}, {"video_id": 1, "queries": 1}):
                in_mongo[doc["video_id"]] = set(doc.get("queries", []))
            in_es: dict[str, set[str]] = {}
            async for hit in async_scan(es, index=self.index, query={"query": {"match_all": {}}}, _source=["queries"]):
                in_es[hit["_id"]] = set(hit["_source"].get("queries", []))
            return in_mongo, in_es
        finally:
            await mongo.close()
            await es.close()

    async def queue_depths(self) -> tuple[int, int]:
        connection = await connect_amqp_robust(self.amqp_url, "soak", timeout=10)
        try:
            channel = await connection.channel()
            work = await channel.declare_queue(self.queue, durable=True, passive=True)
            dead = await channel.declare_queue(f"{self.queue}.dead", durable=True, passive=True)
            return int(work.declaration_result.message_count or 0), int(dead.declaration_result.message_count or 0)
        finally:
            await connection.close()

    async def drain(self) -> None:
        """Freeze the emulator's world, then wait until every visible video reached both stores."""
        for process in self.processes.values():
            if process.paused:
                process.resume()
            if not process.alive():
                self.problem(f"{process.name} was not running at the end of the chaos phase")
                process.start()
        await self._emulator("POST", "/admin/clock", json={"frozen": True})
        deadline = time.monotonic() + self.config.drain_timeout
        while time.monotonic() < deadline:
            truth = await self.truth()
            try:
                in_mongo, in_es = await self.stored()
                depth, _ = await self.queue_depths()
            except Exception:
                await asyncio.sleep(2)
                continue
            everything = set().union(*truth.values())
            if depth == 0 and everything <= in_mongo.keys() and everything <= in_es.keys():
                return
            await asyncio.sleep(2)
        self.problem(f"not drained within {self.config.drain_timeout}s")

    async def api_walk(self) -> list[str]:
        api = f"http://127.0.0.1:{self.ports['api']}"
        ids: list[str] = []
        params: dict[str, str] = {"limit": "100"}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            while True:
                async with session.get(f"{api}/api/v1/videos", params=params) as response:
                    response.raise_for_status()
                    body = await response.json()
                ids += [item["video_id"] for item in body["items"]]
                if not body["next_cursor"]:
                    return ids
                params = {"limit": "100", "cursor": body["next_cursor"]}

    def problem(self, text: str) -> None:
        self.problems.append(text)
        logger.warning("problem: %s", text)

    async def reconcile(self) -> dict[str, Any]:
        truth = await self.truth()
        in_mongo, in_es = await self.stored()
        api_ids = await self.api_walk()
        everything = set().union(*truth.values())
        counts: dict[str, Any] = {"visible": len(everything), "per_query": {q: len(v) for q, v in truth.items()}}
        for store, found in (("mongodb", in_mongo), ("elasticsearch", in_es)):
            missing = sum(len({v for v in ids if q not in found.get(v, set())}) for q, ids in truth.items())
            counts[store] = {
                "documents": len(found),
                "missing": missing,  # (video, query) pairs YouTube showed that the store lacks
                "extra": len(found.keys() - everything),
            }
        counts["api"] = {
            "listed": len(api_ids),
            "missing": len(everything - set(api_ids)),
            "duplicated": len(api_ids) - len(set(api_ids)),
            "extra": len(set(api_ids) - everything),
        }
        depth, dead = await self.queue_depths()
        counts["queue_depth"] = depth
        counts["dead_letters"] = dead
        return counts

    def api_summary(self) -> dict[str, Any]:
        excused = [(w.started, w.ended + ERROR_GRACE_SECONDS) for w in self.faults if w.kind in self.excused_kinds]
        es_down = [(w.started, w.ended) for w in self.faults if w.kind == "stop_elasticsearch"]

        def inside(t: float, windows: Iterable[tuple[float, float]]) -> bool:
            return any(start <= t <= end for start, end in windows)

        failures = [s for s in self.api_samples if s.status == 0 or s.status >= 500]
        unexcused = [s for s in failures if not inside(s.t, excused)]
        during_es_down = [s for s in self.api_samples if inside(s.t, es_down) and s.status == 200]
        latencies = sorted(s.latency_ms for s in self.api_samples if s.status == 200)

        def pct(p: float) -> float | None:
            return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))], 1) if latencies else None

        return {
            "requests": len(self.api_samples),
            "failed": len(failures),
            "failed_outside_dependency_windows": len(unexcused),
            "unexcused_examples": [asdict(s) for s in unexcused[:5]],
            "ok_during_es_downtime": len(during_es_down),
            "served_by_mongodb_during_es_downtime": sum(1 for s in during_es_down if s.served_by == "mongodb"),
            "latency_ms_p50": pct(0.5),
            "latency_ms_p99": pct(0.99),
        }

    def leaked_keys(self) -> list[str]:
        leaks = []
        for path in sorted(self.logs_dir.glob("*.log")):
            text = path.read_text(errors="replace")
            leaks += [f"{path.name}: key {label}" for label, key in self.keys.items() if key in text]
        return leaks

    # ---- the run -------------------------------------------------------------------------------------

    async def run(self) -> SoakResult:
        try:
            await self.start()
            load = asyncio.create_task(self.load())
            sampler = asyncio.create_task(self.sample())
            chaos = asyncio.create_task(self.chaos())
            await asyncio.sleep(self.config.seconds)
            await chaos  # a fault in progress finishes; every server and process is back afterwards
            await asyncio.sleep(self.config.tail_seconds)
            await self.drain()
            self._stop_load.set()
            await asyncio.gather(load, sampler)
            counts = await self.reconcile()
            api = self.api_summary()
        finally:
            self._stop_load.set()
            # Every service gets SIGTERM at once; each is waited for (and judged) on its own.
            names = list(self.processes)
            codes = await asyncio.gather(*(asyncio.to_thread(self.processes[name].stop) for name in names))
            exit_codes = dict(zip(names, codes, strict=True))
            await self.close_servers()
        leaks = self.leaked_keys()
        problems = self.problems + leaks + self.judge()
        bad_exits = {n: c for n, c in exit_codes.items() if c not in (0, None)}
        if bad_exits:
            problems.append(f"services that did not stop cleanly on SIGTERM: {bad_exits}")
        for store in ("mongodb", "elasticsearch"):
            for what in ("missing", "extra"):
                if counts[store][what]:
                    problems.append(f"{store}: {counts[store][what]} {what}")
        for what in ("missing", "duplicated", "extra"):
            if counts["api"][what]:
                problems.append(f"api walk: {counts['api'][what]} {what}")
        if counts["dead_letters"]:
            problems.append(f"{counts['dead_letters']} dead letters")
        if api["failed_outside_dependency_windows"]:
            where = " outside dependency outages" if self.excused_kinds else ""
            problems.append(f"{api['failed_outside_dependency_windows']} failed API reads{where}")
        if any(w.kind == "stop_elasticsearch" for w in self.faults) and not api["served_by_mongodb_during_es_downtime"]:
            problems.append("no read was served from MongoDB while Elasticsearch was down")
        passed = not problems
        verdict = (
            f"soak {'PASSED' if passed else 'FAILED'}: {counts['visible']} videos, "
            f"{len(self.faults)} faults, {api['requests']} API requests "
            f"(p99 {api['latency_ms_p99']} ms), missing/dup/extra "
            f"{counts['api']['missing']}/{counts['api']['duplicated']}/{counts['api']['extra']}"
            + ("" if passed else f"; problems: {'; '.join(problems)}")
        )
        result = SoakResult(passed, verdict, counts, self.faults, api, problems)
        self.write_report(result)
        return result

    def write_report(self, result: SoakResult) -> None:
        self.report_dir.mkdir(parents=True, exist_ok=True)
        report = {
            "passed": result.passed,
            "verdict": result.verdict,
            "config": {k: str(v) for k, v in asdict(self.config).items()},
            "counts": result.counts,
            "api": result.api,
            "problems": result.problems,
            "faults": [asdict(w) for w in self.faults],
            "restarts": {name: p.restarts for name, p in self.processes.items()},
            "samples": [asdict(s) for s in self.samples],
            "finished_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": {"cpus": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30)},
            **self.report_extra(),
        }
        stem = self.report_stem
        (self.report_dir / f"{stem}-report.json").write_text(json.dumps(report, indent=2))
        write_chart(
            self.report_dir / f"{stem}-chart.png", self.samples, self.api_samples, self.faults, self.chart_title
        )
        self.write_summary(report)

    def judge(self) -> list[str]:
        """Problems of this kind of soak beyond the reconciliation's (the run is over, servers stopped)."""
        return []

    def report_extra(self) -> dict[str, Any]:
        return {}

    def write_summary(self, report: dict[str, Any]) -> None:
        write_summary(self.report_dir / "soak-report.md", report)
