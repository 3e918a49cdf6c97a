"""``make bench-fetcher``: quota spent per new video, and freshness (visible in search -> confirmed).

Two scenarios, both against the YouTube emulator and the real RabbitMQ and MongoDB:

- **real quota, simulated hours** — two projects of 100 search calls a day, two queries at a
  realistic upload rate, late indexing on. The fetcher runs in-process on the emulator's clock,
  which the benchmark moves straight to each next cycle: hours of quota-paced polling take a
  minute or two. Freshness is measured in emulator time (``fetched_at``, the frozen instant the
  page was read and its messages confirmed, minus the video's ``visibleAt``).
- **demo budget, real time** — the fetcher as a real process with the demo's large budget,
  polling every ``POLL_INTERVAL_SECONDS``; freshness is wall-clock time from visibility to the
  message's arrival in the queue.

Results are printed and written to ``.local/bench/fetcher.json``. A benchmark, not a test:
figures depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import psutil
from pymongo import AsyncMongoClient
from tqdm import tqdm

from services.common.settings import PROJECT_ROOT, StackSettings
from services.common.topology import QueueNames
from services.youtube_emulator.testing import quiet_settings
from tests.integration.fetcher_support import (
    EmulatorDrivenClock,
    FetcherProcess,
    InProcessFetcher,
    QueueTap,
    RunningEmulator,
    epoch,
    fake_key,
    fetcher_env,
    in_process_fetcher,
    queue_tap,
    running_emulator,
)

RESULTS = PROJECT_ROOT / ".local" / "bench" / "fetcher.json"
QUERIES = ["cricket", "world cup"]
# One second past midnight in Los Angeles: a whole quota day ahead.
DAY_START = "2026-11-24T08:00:01Z"


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def _spend_totals(spend: dict[str, Any]) -> tuple[int, int]:
    keys = spend["keys"].values()
    return sum(k["search_calls"] for k in keys), sum(k["videos_calls"] for k in keys)


def _summary(
    name: str,
    *,
    tap: QueueTap,
    truth: dict[str, dict[str, Any]],
    freshness: list[float],
    late_freshness: list[float],
    search_calls: int,
    videos_calls: int,
    extra: dict[str, Any],
) -> dict[str, Any]:
    published = len(tap.ids())

    def seconds(value: float | None) -> float | None:
        return None if value is None else round(value, 1)

    return {
        "scenario": name,
        **extra,
        "videos_visible": len(truth),
        "videos_published": published,
        "messages": len(tap.messages),
        # visible before the end but not published yet: late videos wait for the next sweep
        "visible_not_yet_published": len(truth.keys() - tap.ids()),
        "search_calls": search_calls,
        "videos_list_calls": videos_calls,
        # search bucket model: 1 per search call; legacy units model: 100 per search, 1 per videos.list
        "search_calls_per_new_video": round(search_calls / published, 4) if published else None,
        "legacy_units_per_new_video": round((100 * search_calls + videos_calls) / published, 2) if published else None,
        "freshness_p50_seconds": seconds(percentile(freshness, 50)),
        "freshness_p99_seconds": seconds(percentile(freshness, 99)),
        "late_arrivals": len(late_freshness),
        "late_freshness_p50_seconds": seconds(percentile(late_freshness, 50)),
        "late_freshness_p99_seconds": seconds(percentile(late_freshness, 99)),
    }


async def _truth(emulator: RunningEmulator) -> dict[str, dict[str, Any]]:
    truth: dict[str, dict[str, Any]] = {}
    for query in QUERIES:
        truth.update(await emulator.visible(query))
    return truth


async def _advance_to_next_cycle(emulator: RunningEmulator, fetcher: InProcessFetcher) -> None:
    """Wait until the fetcher sleeps, then move the clock to the moment it wakes; wait for that cycle."""
    scheduler = fetcher.scheduler
    await _until(lambda: scheduler.next_cycle_at is not None or scheduler.resume_at is not None)
    wake = scheduler.next_cycle_at or scheduler.resume_at
    assert wake is not None
    cycles = scheduler.cycles
    emulator.set_clock(wake.timestamp() + 0.001, frozen=True)
    # the cycle ran and the fetcher sleeps again (or every key is parked until the reset)
    await _until(
        lambda: scheduler.cycles > cycles and (scheduler.next_cycle_at is not None or scheduler.resume_at is not None)
    )


async def _until(condition: Callable[[], bool]) -> None:
    # Polled: the scheduler's own attributes are the signal.
    held = not condition()
    while held:
        await asyncio.sleep(0.002)
        held = not condition()


async def real_quota_simulated(
    stack: StackSettings, amqp: aio_pika.abc.AbstractRobustConnection, database: str, hours: float, rate: float
) -> dict[str, Any]:
    names = QueueNames(f"bench-fetcher-{uuid.uuid4().hex[:8]}.videos", f"bench-fetcher-{uuid.uuid4().hex[:8]}.index")
    settings = quiet_settings(
        search_queries=QUERIES,
        emulator_videos_per_minute=rate,
        emulator_backfill_seconds=3600,
        emulator_late_fraction=0.05,
        emulator_late_max_seconds=600,
        emulator_live_fraction=0.02,
        emulator_duplicate_rate=0.02,
        emulator_empty_last_page_rate=0.05,
        emulator_search_calls_per_day=100,
    )
    start = epoch(DAY_START)
    async with running_emulator(settings, now=start, frozen=True) as emulator, queue_tap(amqp, names) as tap:
        env = fetcher_env(
            stack,
            names,
            database,
            emulator,
            youtube_api_keys=f"{fake_key('bench-1')} {fake_key('bench-2')}",
            search_queries=",".join(QUERIES),
            youtube_search_calls_per_day=100,
            poll_interval_seconds=10,
            initial_lookback_seconds=3600,
            lease_ttl_seconds=60,
        )
        intervals: list[float] = []
        async with in_process_fetcher(env, EmulatorDrivenClock(emulator)) as fetcher:
            end = start + hours * 3600
            with tqdm(total=round(hours * 60), unit="min", desc="  simulated", leave=False) as progress:
                while emulator.state.clock.now() < end:
                    await _advance_to_next_cycle(emulator, fetcher)
                    if fetcher.scheduler.budget.plan is not None:
                        intervals.append(fetcher.scheduler.budget.plan.effective_interval)
                    progress.update(round((emulator.state.clock.now() - start) / 60) - progress.n)
            truth = await _truth(emulator)
            spend = await emulator.admin("GET", "/admin/spend")
            await asyncio.sleep(1)  # let the tap drain the last confirms
        rejected = sum(k["rejected"] for k in spend["keys"].values())
    await _cleanup_queues(amqp, names)
    # Only videos that became visible while the fetcher ran (the backfill was caught up at start),
    # and not in the last interval (a cycle had no chance to see them yet).
    last_cycle_at = max((datetime.fromisoformat(m.body["fetched_at"]).timestamp() for m in tap.messages), default=start)
    fresh, late = _freshness_from_fetched_at(tap, truth, start, last_cycle_at)
    truth = {vid: v for vid, v in truth.items() if epoch(v["visibleAt"]) <= last_cycle_at}
    search_calls, videos_calls = _spend_totals(spend)
    return _summary(
        "real quota (2 projects x 100 searches/day), simulated",
        tap=tap,
        truth=truth,
        freshness=fresh,
        late_freshness=late,
        search_calls=search_calls,
        videos_calls=videos_calls,
        extra={
            "simulated_hours": hours,
            "queries": len(QUERIES),
            "uploads_per_minute_per_query": rate,
            "effective_interval_median_seconds": round(statistics.median(intervals), 1) if intervals else None,
            "quota_errors": rejected,
        },
    )


def _freshness_from_fetched_at(
    tap: QueueTap, truth: dict[str, dict[str, Any]], start: float, last: float
) -> tuple[list[float], list[float]]:
    first_seen: dict[str, float] = {}
    for message in tap.messages:
        at = datetime.fromisoformat(message.body["fetched_at"]).timestamp()
        first_seen[message.video_id] = min(at, first_seen.get(message.video_id, at))
    fresh, late = [], []
    for vid, video in truth.items():
        visible = epoch(video["visibleAt"])
        if vid not in first_seen or visible < start or visible > last:
            continue
        lag = first_seen[vid] - visible
        fresh.append(lag)
        if visible > epoch(video["publishedAt"]):
            late.append(lag)
    return fresh, late


async def demo_real_time(
    stack: StackSettings, amqp: aio_pika.abc.AbstractRobustConnection, database: str, seconds: float, rate: float
) -> dict[str, Any]:
    names = QueueNames(f"bench-fetcher-{uuid.uuid4().hex[:8]}.videos", f"bench-fetcher-{uuid.uuid4().hex[:8]}.index")
    settings = quiet_settings(
        search_queries=QUERIES,
        emulator_videos_per_minute=rate,
        emulator_backfill_seconds=600,
        emulator_late_fraction=0.05,
        emulator_late_max_seconds=60,
        emulator_search_calls_per_day=1_000_000,
    )
    async with running_emulator(settings) as emulator, queue_tap(amqp, names) as tap:
        env = fetcher_env(
            stack,
            names,
            database,
            emulator,
            youtube_api_keys=f"{fake_key('demo-1')} {fake_key('demo-2')}",
            search_queries=",".join(QUERIES),
            poll_interval_seconds=2,
            initial_lookback_seconds=600,
            overlap_seconds=60,
        )
        with tempfile.TemporaryDirectory() as tmp:
            fetcher = FetcherProcess(env, Path(tmp) / "fetcher.log")
            started = time.time()
            await fetcher.start()
            try:
                await asyncio.sleep(seconds)
            finally:
                await fetcher.stop()
        truth = await _truth(emulator)
        spend = await emulator.admin("GET", "/admin/spend")
    await _cleanup_queues(amqp, names)
    # wall clock: the emulator's clock is real time here, and the tap stamps arrivals
    arrival: dict[str, float] = {}
    wall_offset = time.time() - time.monotonic()
    for message in tap.messages:
        arrival.setdefault(message.video_id, message.monotonic + wall_offset)
    horizon = started + seconds - 10
    fresh, late = [], []
    for vid, video in truth.items():
        visible = epoch(video["visibleAt"])
        if vid in arrival and started + 5 <= visible <= horizon:
            fresh.append(arrival[vid] - visible)
            if visible > epoch(video["publishedAt"]):
                late.append(arrival[vid] - visible)
    truth = {vid: v for vid, v in truth.items() if epoch(v["visibleAt"]) <= horizon}
    search_calls, videos_calls = _spend_totals(spend)
    return _summary(
        "demo budget, real time",
        tap=tap,
        truth=truth,
        freshness=fresh,
        late_freshness=late,
        search_calls=search_calls,
        videos_calls=videos_calls,
        extra={
            "seconds": seconds,
            "queries": len(QUERIES),
            "uploads_per_minute_per_query": rate,
            "poll_interval_seconds": 2,
        },
    )


async def _cleanup_queues(amqp: aio_pika.abc.AbstractRobustConnection, names: QueueNames) -> None:
    channel = await amqp.channel()
    for queue in (names.queue, names.dead_queue):
        await channel.queue_delete(queue)
    for exchange in (names.exchange, names.dead_exchange):
        await channel.exchange_delete(exchange)
    await channel.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=6, help="simulated hours under the real quota")
    parser.add_argument("--seconds", type=float, default=60, help="real-time demo scenario length")
    parser.add_argument("--rate", type=float, default=2.0, help="uploads per minute per query (simulated day)")
    parser.add_argument("--demo-rate", type=float, default=30.0, help="uploads per minute per query (demo)")
    args = parser.parse_args()
    stack = StackSettings()
    amqp = await aio_pika.connect_robust(stack.amqp_url)
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongodb_url, tz_aware=True)
    results = []
    try:
        for name, run in (
            ("real quota", lambda db: real_quota_simulated(stack, amqp, db, args.hours, args.rate)),
            ("demo", lambda db: demo_real_time(stack, amqp, db, args.seconds, args.demo_rate)),
        ):
            database = f"bench_fetcher_{uuid.uuid4().hex[:8]}"
            print(f"{name}: running")
            try:
                results.append(await run(database))
            finally:
                await mongo.drop_database(database)
    finally:
        await amqp.close()
        await mongo.close()
    report = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(),
            "load_average": [round(x, 2) for x in os.getloadavg()],
        },
        "results": results,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    for result in results:
        print(f"\n{result['scenario']}")
        for key, value in result.items():
            if key != "scenario":
                print(f"  {key:38} {value}")
    print(f"\nwritten to {RESULTS.relative_to(PROJECT_ROOT)}")


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
