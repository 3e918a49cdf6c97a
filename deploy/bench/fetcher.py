"""``make bench-fetcher``: freshness under one project's real quota, equal against rate-weighted scheduling.

Three runs, against the YouTube emulator and the real RabbitMQ and MongoDB:

- **real quota, equal** and **real quota, rate-weighted** — the same world twice: one project of
  100 search calls a day, two queries uploading 40 and 4 videos an hour (duplicates and empty last
  pages on; late indexing off, as in the planner's model, or ``--late-fraction``), 6 simulated hours
  from just after midnight Pacific time. The fetcher
  runs in-process on the emulator's clock, which the benchmark moves straight to each moment the
  fetcher wakes: hours of quota-paced polling take seconds. Freshness is measured in emulator time
  (``fetched_at``, the frozen instant the page was read and its messages confirmed, minus the
  video's ``visibleAt``) for every video that became visible in the 6 hours; the run goes on until
  each query was polled once after them. Beside them, the model's lower bound: the least mean delay
  the planner's model allows with one call a poll and the day's 100 calls
  (``services/common/poll_plan.py`` with the true upload rates).
- **demo budget, real time** — the fetcher as a real process with the demo's large budget,
  polling every ``POLL_INTERVAL_SECONDS``; freshness is wall-clock time from visibility to the
  message's arrival in the queue.

- **followed channels on and off** (``deploy/bench/fetcher_channels.py``) — one project's real
  quota (100 searches and 10,000 units a day) over 6 simulated hours, 2 queries of 50 videos an
  hour, 300 Zipf-skewed channels, search showing a video 5 minutes after its upload: freshness of
  followed-channel videos and of all videos from upload to confirmed publish, with auto-follow on
  and off, and the searches and units a day each spent; and channels on with WebSub push through the
  emulated hub (its defaults: 1-20 s delay, 5% of pushes lost; ``--no-push`` leaves it out).

``--only`` runs some of them (``quota``, ``demo``, ``channels``). Results are printed (the
scenarios' comparisons side by side) and written to ``.local/bench/fetcher.json``.
A benchmark, not a test: figures depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import psutil
from pymongo import AsyncMongoClient
from tqdm import tqdm

from deploy.bench.fetcher_channels import channel_scenario, side_by_side
from services.common.poll_plan import ItemInputs, PlanInputs, plan_polls
from services.common.settings import PROJECT_ROOT, StackSettings
from services.common.topology import QueueNames
from services.fetcher.clock import next_reset
from services.youtube_emulator.testing import quiet_settings
from tests.integration.fetcher_support import (
    EmulatorDrivenClock,
    FetcherProcess,
    QueueTap,
    RunningEmulator,
    advance_to_next_cycle,
    epoch,
    fake_key,
    fetcher_env,
    in_process_fetcher,
    queue_tap,
    running_emulator,
)

RESULTS = PROJECT_ROOT / ".local" / "bench" / "fetcher.json"
QUERIES = ["cricket", "world cup"]
# The real-quota scheduling runs: uploads an hour per query.
RATES = {"cricket": 40.0, "world cup": 4.0}
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


async def _truth(emulator: RunningEmulator, queries: list[str]) -> dict[str, dict[str, Any]]:
    truth: dict[str, dict[str, Any]] = {}
    for query in queries:
        truth.update(await emulator.visible(query))
    return truth


def _poll_starts(emulator: RunningEmulator, query: str) -> list[float]:
    """When each poll of ``query`` began (its first page-one search call), on the emulator's clock."""
    starts: list[float] = []
    for call in emulator.calls:
        first_page = call.method == "search" and call.params.get("q") == query and "pageToken" not in call.params
        if first_page and call.status == 200 and (not starts or call.at - starts[-1] > 1):
            starts.append(call.at)
    return starts


async def real_quota_simulated(
    stack: StackSettings,
    amqp: aio_pika.abc.AbstractRobustConnection,
    database: str,
    *,
    scheduling: str,
    hours: float,
    rates_per_hour: dict[str, float],
    late_fraction: float,
) -> dict[str, Any]:
    """One project's real quota on the emulator's clock: every video's wait from visible to confirmed."""
    names = QueueNames(f"bench-fetcher-{uuid.uuid4().hex[:8]}.videos", f"bench-fetcher-{uuid.uuid4().hex[:8]}.index")
    queries = list(rates_per_hour)
    settings = quiet_settings(
        search_queries=queries,
        emulator_query_videos_per_minute={q: rate / 60 for q, rate in rates_per_hour.items()},
        emulator_backfill_seconds=3600,
        emulator_late_fraction=late_fraction,
        emulator_late_max_seconds=600,
        emulator_live_fraction=0.02,
        emulator_duplicate_rate=0.02,
        emulator_empty_last_page_rate=0.05,
        emulator_search_calls_per_day=100,
    )
    start = epoch(DAY_START)
    end = start + hours * 3600
    async with running_emulator(settings, now=start, frozen=True) as emulator, queue_tap(amqp, names) as tap:
        env = fetcher_env(
            stack,
            names,
            database,
            emulator,
            youtube_api_keys=fake_key("bench-1"),
            search_queries=",".join(queries),
            youtube_search_calls_per_day=100,
            poll_interval_seconds=10,
            initial_lookback_seconds=3600,
            query_scheduling=scheduling,
            lease_ttl_seconds=3600,
        )
        async with in_process_fetcher(env, EmulatorDrivenClock(emulator)) as fetcher:
            total = round(hours * 60)
            with tqdm(total=total, unit="min", desc=f"  {scheduling}", leave=False) as progress:
                # Until every query was polled once after the end: each video visible by then had its poll.
                while min((_poll_starts(emulator, q) or [start])[-1] for q in queries) < end:
                    await advance_to_next_cycle(emulator, fetcher)
                    progress.update(min(total, round((emulator.state.clock.now() - start) / 60)) - progress.n)
            health = await fetcher.health()
            truth = await _truth(emulator, queries)
            spend = await emulator.admin("GET", "/admin/spend")
            await asyncio.sleep(1)  # let the tap drain the last confirms
        rejected = sum(k["rejected"] for k in spend["keys"].values())
    await _cleanup_queues(amqp, names)
    # Only videos that became visible while the fetcher ran (the backfill was caught up at start).
    truth = {vid: v for vid, v in truth.items() if start <= epoch(v["visibleAt"]) <= end}
    fresh, late = _freshness_from_fetched_at(tap, truth, start, end)
    search_calls, videos_calls = _spend_totals(spend)
    spacing = {}
    for query in queries:
        polls = [t for t in _poll_starts(emulator, query) if start < t <= end]
        gaps = [b - a for a, b in itertools.pairwise(polls)]
        spacing[query] = round(statistics.median(gaps), 1) if gaps else None
    summary = _summary(
        f"one project (100 searches/day), {scheduling} scheduling",
        tap=tap,
        truth=truth,
        freshness=fresh,
        late_freshness=late,
        search_calls=search_calls,
        videos_calls=videos_calls,
        extra={
            "scheduling": scheduling,
            "simulated_hours": hours,
            "uploads_per_hour": rates_per_hour,
            "late_fraction": late_fraction,
            "poll_spacing_median_seconds": spacing,
            "planned": health.get("budget", {}).get("queries"),
            "quota_errors": rejected,
        },
    )
    summary["freshness_mean_seconds"] = round(statistics.fmean(fresh), 1) if fresh else None
    return summary


def model_lower_bound(rates_per_hour: dict[str, float], calls: int, seconds: float) -> tuple[float, dict[str, float]]:
    """The model's least mean delay: one call a poll, the day's calls, the true upload rates."""
    plan = plan_polls(
        PlanInputs(
            items=[ItemInputs(q, upload_rate=r / 3600) for q, r in rates_per_hour.items()],
            calls_left=calls,
            seconds_to_reset=seconds,
            min_interval=10,
            max_interval=3600,
        )
    )
    assert plan.mean_delay is not None
    return plan.mean_delay, {item.name: round(item.interval, 1) for item in plan.items}


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
        truth = await _truth(emulator, QUERIES)
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


def _side_by_side(equal: dict[str, Any], rate: dict[str, Any], bound: float, bound_intervals: dict[str, float]) -> str:
    def minutes(value: float | None) -> str:
        return "-" if value is None else f"{value / 60:.1f} min"

    rows = [
        ("", "equal", "rate-weighted", "model's lower bound"),
        (
            "mean delay",
            minutes(equal["freshness_mean_seconds"]),
            minutes(rate["freshness_mean_seconds"]),
            minutes(bound),
        ),
        ("p50", minutes(equal["freshness_p50_seconds"]), minutes(rate["freshness_p50_seconds"]), ""),
        ("p99", minutes(equal["freshness_p99_seconds"]), minutes(rate["freshness_p99_seconds"]), ""),
        ("search calls", str(equal["search_calls"]), str(rate["search_calls"]), ""),
        (
            "poll spacing",
            str(equal["poll_spacing_median_seconds"]),
            str(rate["poll_spacing_median_seconds"]),
            str(bound_intervals),
        ),
    ]
    return "\n".join(f"  {a:14} {b:>34} {c:>34} {d:>30}" for a, b, c, d in rows)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=6, help="simulated hours under one project's real quota")
    parser.add_argument("--seconds", type=float, default=60, help="real-time demo scenario length")
    parser.add_argument(
        "--late-fraction", type=float, default=0.0, help="share of videos search shows late (real quota)"
    )
    parser.add_argument("--demo-rate", type=float, default=30.0, help="uploads per minute per query (demo)")
    parser.add_argument(
        "--only",
        default="quota,demo,channels",
        help="comma-separated scenarios to run: quota (equal and rate-weighted), demo, channels",
    )
    parser.add_argument(
        "--no-push", action="store_true", help="channels: leave out the run with WebSub push (on by default)"
    )
    args = parser.parse_args()
    only = {name.strip() for name in args.only.split(",") if name.strip()}
    stack = StackSettings()
    amqp = await aio_pika.connect_robust(stack.amqp_url)
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongodb_url, tz_aware=True)
    results = []
    channels: dict[str, Any] | None = None
    try:
        runs: list[tuple[str, Callable[[str], Awaitable[dict[str, Any]]]]] = [
            (
                f"real quota, {scheduling} scheduling",
                lambda db, scheduling=scheduling: real_quota_simulated(  # type: ignore[misc]
                    stack,
                    amqp,
                    db,
                    scheduling=scheduling,
                    hours=args.hours,
                    rates_per_hour=RATES,
                    late_fraction=args.late_fraction,
                ),
            )
            for scheduling in ("equal", "rate")
            if "quota" in only
        ]
        if "demo" in only:
            runs.append(("demo", lambda db: demo_real_time(stack, amqp, db, args.seconds, args.demo_rate)))
        for name, run in runs:
            database = f"bench_fetcher_{uuid.uuid4().hex[:8]}"
            print(f"{name}: running")
            try:
                results.append(await run(database))
            finally:
                await mongo.drop_database(database)
        if "channels" in only:
            print("followed channels on and off" + ("" if args.no_push else ", and on with push") + ": running")
            channels = await channel_scenario(stack, amqp, hours=args.hours, start=DAY_START, push=not args.no_push)
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
        "channels": channels,
    }
    if "quota" in only:
        report["comparison"] = _print_quota(results, args.hours)
    else:
        for result in results:
            _print_result(result)
    if channels is not None:
        print(f"\nfollowed channels, from upload to confirmed publish, {args.hours:g} simulated hours:")
        print(side_by_side(channels))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {RESULTS.relative_to(PROJECT_ROOT)}")


def _print_result(result: dict[str, Any]) -> None:
    print(f"\n{result['scenario']}")
    for key, value in result.items():
        if key != "scenario":
            print(f"  {key:38} {value}")


def _print_quota(results: list[dict[str, Any]], hours: float) -> dict[str, Any]:
    """Print every result and the two schedulings side by side; the comparison for the report."""
    day_start = datetime.fromtimestamp(epoch(DAY_START), UTC)
    bound, bound_intervals = model_lower_bound(RATES, 100, (next_reset(day_start) - day_start).total_seconds())
    equal, rate = results[0], results[1]
    comparison = {
        "model_lower_bound_mean_seconds": round(bound, 1),
        "model_intervals_seconds": bound_intervals,
        "rate_mean_over_bound": round(rate["freshness_mean_seconds"] / bound, 3),
        "rate_mean_below_equal": round(1 - rate["freshness_mean_seconds"] / equal["freshness_mean_seconds"], 3),
    }
    for result in results:
        _print_result(result)
    print(f"\nfreshness over all videos (visible in search -> confirmed), {hours:g} simulated hours:")
    print(_side_by_side(equal, rate, bound, bound_intervals))
    print(f"  weighted mean / bound: {comparison['rate_mean_over_bound']} (target <= 1.2)")
    print(f"  weighted mean below equal's: {comparison['rate_mean_below_equal']:.1%} (target >= 20%)")
    return comparison


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
