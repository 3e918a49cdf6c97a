"""``make bench-fetcher``'s channel scenario: one project's real quota, followed channels on and off.

The same world twice, on the emulator's clock (moved straight to each moment a scheduler of the
in-process fetcher wakes, so hours of polling take minutes): two queries uploading 50 videos an
hour each, 300 channels whose upload rates are Zipf-skewed so that the top 20 publish about 60% of
the videos, search showing a video 5 minutes after its upload, one project of 100 searches and
10,000 units a day, 6 simulated hours from just after midnight Pacific time.

- **channels on**: auto-follow (``AUTO_FOLLOW_CHANNELS=20``) chooses the channels from what
  search found, and their uploads playlists are read on the units pool;
- **channels off**: search alone (``AUTO_FOLLOW_CHANNELS=0``);
- **channels on, with push** (``--push``): as channels on, with ``WEBSUB_CALLBACK_URL`` set and the
  emulated hub's defaults (a push 1-20 s after the upload, 5% of pushes lost). The clock then moves
  in steps of at most ``PUSH_STEP_SECONDS`` (not only from one scheduler wake to the next), each
  step delivering the pushes due and waiting until the leader has handled their notices, so a
  push's delay is measured to within a step.

The messages the fetcher confirms are written into the run's MongoDB database by the indexer's own
MongoDB writer as they arrive, so auto-follow counts what a real catalogue holds. Freshness is
emulator time from a video's publish (``publishedAt``: for almost every video its upload) to the
``fetched_at`` of its first confirmed message, for every video published in the window. A
*followed-channel video* is one published between the channels-on run's first and last read of
its channel's uploads playlist (auto-follow may drop a channel whose rank fell); the channels-off
run is judged on the very same videos.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aio_pika
from pymongo import AsyncMongoClient
from tqdm import tqdm

from services.common.events import VideoEvent
from services.common.settings import StackSettings
from services.common.topology import QueueNames
from services.fetcher.app import WEBSUB
from services.fetcher.scheduler import Scheduler
from services.fetcher.websub_routes import RECEIVER
from services.indexer.mongo_writer import MongoWriter
from services.youtube_emulator.testing import quiet_settings
from tests.conftest import free_port
from tests.integration.fetcher_support import (
    EmulatorDrivenClock,
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
from tests.integration.websub_support import fetcher_on_port, notice_queues_removed

QUERIES = {"cricket": 50.0, "world cup": 50.0}  # uploads an hour
CHANNELS = 300
SEARCH_LAG_SECONDS = 300
AUTO_FOLLOW = 20
# After the window: long enough for every video published in it to be read by a poll (a search
# query is polled about every 29 minutes on this budget, a channel at least every 30).
DRAIN_SECONDS = 45 * 60
TARGET_FOLLOWED_P50 = 90.0
TARGET_FOLLOWED_P99 = 600.0
TARGET_ALL_P50_RATIO = 4.0
# The push run: the clock's longest step, and the targets for followed-channel videos.
PUSH_STEP_SECONDS = 2.0
TARGET_PUSH_P50 = 15.0
TARGET_PUSH_P99 = 600.0


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def schedulers(fetcher: InProcessFetcher) -> list[Scheduler]:
    """The search scheduler and, when channels are followed, the one on the units pool."""
    return [fetcher.scheduler, *fetcher.leader.others]


def _asleep(scheduler: Scheduler) -> bool:
    return scheduler.next_cycle_at is not None or scheduler.resume_at is not None


async def _until(condition: Callable[[], bool], within: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            raise TimeoutError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.002)


async def advance_to_next_turn(emulator: RunningEmulator, fetcher: InProcessFetcher, *, within: float = 120) -> None:
    """Wait until every scheduler sleeps, move the frozen clock to the earliest wake, wait for that turn."""
    running = schedulers(fetcher)
    await _until(lambda: all(_asleep(s) for s in running), within, "every scheduler asleep")
    wakes = [(s.next_cycle_at or s.resume_at, s) for s in running]
    wake = min(moment for moment, _ in wakes if moment is not None)
    woken = [(s, s.cycles, moment) for moment, s in wakes if moment is not None and moment <= wake]
    emulator.set_clock(wake.timestamp() + 0.001, frozen=True)

    # A woken scheduler has turned when it ran a cycle or sleeps towards a later moment (one with
    # nothing due, or parked, turns without a cycle).
    def turned(s: Scheduler, cycles: int, moment: datetime) -> bool:
        again = s.next_cycle_at or s.resume_at
        return again is not None and (s.cycles > cycles or again > moment)

    await _until(lambda: all(turned(*w) for w in woken), within, "the woken schedulers' turns")


async def advance_with_push(emulator: RunningEmulator, fetcher: InProcessFetcher, *, within: float = 120) -> None:
    """As ``advance_to_next_turn``, but never more than PUSH_STEP_SECONDS: the hub's due pushes are
    delivered at each step and the leader has handled them before the next."""
    running = schedulers(fetcher)
    await _until(lambda: all(_asleep(s) for s in running), within, "every scheduler asleep")
    wakes = [(s.next_cycle_at or s.resume_at, s) for s in running]
    wake = min(moment for moment, _ in wakes if moment is not None).timestamp() + 0.001
    target = min(wake, emulator.state.clock.now() + PUSH_STEP_SECONDS)
    woken = [(s, s.cycles, moment) for moment, s in wakes if moment is not None and moment.timestamp() < target]
    emulator.set_clock(target, frozen=True)
    await emulator.admin("POST", "/admin/websub/flush")
    receiver, confirmer = fetcher.app[RECEIVER], fetcher.app[WEBSUB].confirmer
    await _until(lambda: confirmer.notices_handled >= receiver.forwarded, within, "the pushes handled")

    def turned(s: Scheduler, cycles: int, moment: datetime) -> bool:
        again = s.next_cycle_at or s.resume_at
        return again is not None and (s.cycles > cycles or again > moment)

    await _until(lambda: all(turned(*w) for w in woken), within, "the woken schedulers' turns")


class CatalogueFeed:
    """Writes the tapped messages into MongoDB as the indexer would, so auto-follow counts them."""

    def __init__(self, tap: QueueTap, writer: MongoWriter) -> None:
        self._tap = tap
        self._writer = writer
        self._written = 0

    async def flush(self, now: float) -> None:
        fresh = self._tap.messages[self._written :]
        if not fresh:
            return
        self._written += len(fresh)
        events = [VideoEvent.model_validate(message.body) for message in fresh]
        await self._writer.write(events, datetime.fromtimestamp(now, UTC))


def _first_seen(tap: QueueTap) -> dict[str, tuple[float, str]]:
    """Per video: the fetched_at of its first confirmed message and how that message found it."""
    seen: dict[str, tuple[float, str]] = {}
    for message in tap.messages:
        at = datetime.fromisoformat(message.body["fetched_at"]).timestamp()
        source = str(message.body.get("found_by", {}).get("source", "search"))
        if message.video_id not in seen or at < seen[message.video_id][0]:
            seen[message.video_id] = (at, source)
    return seen


def _playlist_reads(emulator: RunningEmulator) -> dict[str, tuple[float, float]]:
    """Per channel id: when its uploads playlist was first and last read successfully."""
    reads: dict[str, tuple[float, float]] = {}
    for call in emulator.calls:
        playlist = call.params.get("playlistId", "")
        if call.method == "playlistItems" and call.status == 200 and playlist.startswith("UU"):
            channel = "UC" + playlist[2:]
            first, _ = reads.get(channel, (call.at, call.at))
            reads[channel] = (first, call.at)
    return reads


async def run_world(
    stack: StackSettings,
    amqp: aio_pika.abc.AbstractRobustConnection,
    *,
    channels_on: bool,
    hours: float,
    start: float,
    push: bool = False,
) -> dict[str, Any]:
    """One run of the world; returns the raw material (truth, first sightings, calls) and the spend."""
    tag = uuid.uuid4().hex[:8]
    names = QueueNames(f"bench-channels-{tag}.videos", f"bench-channels-{tag}.index")
    database = f"bench_channels_{tag}"
    settings = quiet_settings(
        search_queries=list(QUERIES),
        emulator_query_videos_per_minute={q: rate / 60 for q, rate in QUERIES.items()},
        emulator_channels=CHANNELS,
        emulator_search_lag_seconds=SEARCH_LAG_SECONDS,
        emulator_backfill_seconds=3 * 3600,
        emulator_search_calls_per_day=100,
        emulator_units_per_day=10_000,
        emulator_call_log_size=200_000,
        # The hub's defaults (quiet_settings loses no push), verifications at once.
        emulator_websub_lost_fraction=0.05,
        emulator_websub_delay_min_seconds=1.0,
        emulator_websub_delay_max_seconds=20.0,
        emulator_websub_verify_delay_seconds=0.0,
    )
    end = start + hours * 3600
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongodb_url, tz_aware=True)
    try:
        writer = MongoWriter(mongo[database])
        await writer.prepare()
        async with (
            notice_queues_removed(amqp, names),
            running_emulator(settings, now=start, frozen=True) as emulator,
            queue_tap(amqp, names) as tap,
        ):
            port = free_port()
            websub = (
                {"websub_callback_url": f"http://127.0.0.1:{port}", "websub_hub_url": f"{emulator.url}/subscribe"}
                if push
                else {}
            )
            env = fetcher_env(
                stack,
                names,
                database,
                emulator,
                youtube_api_keys=fake_key("bench-channels"),
                search_queries=",".join(QUERIES),
                youtube_search_calls_per_day=100,
                youtube_units_per_day=10_000,
                auto_follow_channels=AUTO_FOLLOW if channels_on else 0,
                poll_interval_seconds=10,
                initial_lookback_seconds=3 * 3600,
                lease_ttl_seconds=3600,
                fetcher_port=port,
                **websub,
            )
            feed = CatalogueFeed(tap, writer)
            running = fetcher_on_port if push else in_process_fetcher
            advance = advance_with_push if push else advance_to_next_turn
            async with running(env, EmulatorDrivenClock(emulator)) as fetcher:
                total = round((end + DRAIN_SECONDS - start) / 60)
                label = "  channels push" if push else "  channels on " if channels_on else "  channels off"
                with tqdm(total=total, unit="min", desc=label, leave=False) as progress:
                    while emulator.state.clock.now() < end + DRAIN_SECONDS:
                        await advance(emulator, fetcher)
                        await asyncio.sleep(0)  # let the tap take the turn's confirmed messages
                        await feed.flush(emulator.state.clock.now())
                        progress.update(min(total, round((emulator.state.clock.now() - start) / 60)) - progress.n)
                health = await fetcher.health()
            await asyncio.sleep(1)  # the last confirms reach the tap
            truth: dict[str, dict[str, Any]] = {}
            for query in QUERIES:
                truth.update(await emulator.visible(query))
            spend = await emulator.admin("GET", "/admin/spend")
            calls = list(emulator.calls)
            reads = _playlist_reads(emulator)
            hub = await emulator.admin("GET", "/admin/websub")
    finally:
        await mongo.drop_database(database)
        await mongo.close()
        channel = await amqp.channel()
        for queue in (names.queue, names.dead_queue):
            await channel.queue_delete(queue)
        for exchange in (names.exchange, names.dead_exchange):
            await channel.exchange_delete(exchange)
        await channel.close()
    published = {vid: v for vid, v in truth.items() if start <= epoch(v["publishedAt"]) <= end}
    return {
        "truth": published,
        "seen": _first_seen(tap),
        "reads": reads,
        "calls": calls,
        "spend": spend,
        "health": health,
        "hub": hub,
        "tap_messages": list(tap.messages),
    }


def _read_spacing(calls: list[Any]) -> dict[str, float]:
    """Per channel id: the median seconds between two reads of its uploads playlist's first page."""
    reads: dict[str, list[float]] = {}
    for call in calls:
        playlist = call.params.get("playlistId", "")
        if call.method == "playlistItems" and call.status == 200 and "pageToken" not in call.params:
            reads.setdefault("UC" + playlist[2:], []).append(call.at)
    return {
        channel: statistics.median(b - a for a, b in itertools.pairwise(times))
        for channel, times in reads.items()
        if len(times) > 1
    }


def _slowest(run: dict[str, Any], videos: set[str], count: int = 8) -> list[dict[str, Any]]:
    """The followed-channel videos that waited longest, with how often their channel was read."""
    spacing = _read_spacing(run["calls"])
    waits = []
    for vid in videos:
        video = run["truth"][vid]
        if vid in run["seen"]:
            waits.append((run["seen"][vid][0] - epoch(video["publishedAt"]), vid, video))
    return [
        {
            "video_id": vid,
            "channel_id": video["channelId"],
            "wait_seconds": round(wait, 1),
            "found_through": run["seen"][vid][1],
            "scheduled": video["uploadedAt"] != video["publishedAt"],
            "channel_read_spacing_median_seconds": round(spacing[video["channelId"]], 1)
            if video["channelId"] in spacing
            else None,
        }
        for wait, vid, video in sorted(waits, key=lambda w: w[0], reverse=True)[:count]
    ]


def _freshness(
    truth: dict[str, dict[str, Any]], seen: dict[str, tuple[float, str]], only: set[str] | None = None
) -> tuple[list[float], int]:
    """Delays from publish to first confirmed message; and how many of the videos were never published."""
    delays, missed = [], 0
    for vid, video in truth.items():
        if only is not None and vid not in only:
            continue
        if vid not in seen:
            missed += 1
            continue
        delays.append(max(0.0, seen[vid][0] - epoch(video["publishedAt"])))
    return delays, missed


def _spend(run: dict[str, Any], hours: float) -> dict[str, Any]:
    keys = run["spend"]["keys"].values()
    searches = sum(k["search_calls"] for k in keys)
    units = sum(k.get("units", 0) for k in keys)
    methods: dict[str, int] = {}
    for call in run["calls"]:
        methods[call.method] = methods.get(call.method, 0) + 1
    simulated = hours + DRAIN_SECONDS / 3600
    return {
        "search_calls": searches,
        "units": units,
        "calls_by_method": methods,
        "rejected": sum(k["rejected"] for k in keys),
        # The run's pace over a whole day; it includes the start's catch-up of the initial lookback,
        # so it overstates what a day spends (the plan spreads the rest of the budget to the reset).
        "search_calls_pace_per_day": round(searches * 24 / simulated, 1),
        "units_pace_per_day": round(units * 24 / simulated, 1),
    }


def _figures(delays: list[float], missed: int) -> dict[str, Any]:
    def seconds(value: float | None) -> float | None:
        return None if value is None else round(value, 1)

    return {
        "videos": len(delays) + missed,
        "not_published": missed,
        "p50_seconds": seconds(percentile(delays, 50)),
        "p99_seconds": seconds(percentile(delays, 99)),
    }


def summarise(on: dict[str, Any], off: dict[str, Any], hours: float) -> dict[str, Any]:
    """The two runs side by side, with the issue's targets judged."""
    # Followed while it was published: its channel's playlist was read before and after (auto-follow
    # may drop a channel whose rank fell; its later videos are search's again).
    followed = {
        vid
        for vid, video in on["truth"].items()
        if video["channelId"] in on["reads"]
        and on["reads"][video["channelId"]][0] <= epoch(video["publishedAt"]) <= on["reads"][video["channelId"]][1]
    }
    on_followed = _figures(*_freshness(on["truth"], on["seen"], followed))
    off_followed = _figures(*_freshness(off["truth"], off["seen"], followed))
    on_all = _figures(*_freshness(on["truth"], on["seen"]))
    off_all = _figures(*_freshness(off["truth"], off["seen"]))
    through_channel = sum(1 for vid in on["truth"] if on["seen"].get(vid, (0.0, ""))[1] == "channel")
    ratio = (
        round(off_all["p50_seconds"] / on_all["p50_seconds"], 2)
        if on_all["p50_seconds"] and off_all["p50_seconds"]
        else None
    )
    spend_on, spend_off = _spend(on, hours), _spend(off, hours)
    within_budget = all(
        s["rejected"] == 0 and s["search_calls"] <= 100 and s["units"] <= 10_000 for s in (spend_on, spend_off)
    )
    return {
        "scenario": "one project (100 searches, 10,000 units a day), followed channels on and off",
        "simulated_hours": hours,
        "queries_uploads_per_hour": QUERIES,
        "channels": CHANNELS,
        "search_lag_seconds": SEARCH_LAG_SECONDS,
        "auto_follow": AUTO_FOLLOW,
        "channels_read": len(on["reads"]),
        "followed_channel_share_of_videos": round(len(followed) / len(on["truth"]), 3) if on["truth"] else None,
        "first_found_through_a_channel": through_channel,
        "followed_channel_videos": {"channels_on": on_followed, "channels_off": off_followed},
        "slowest_followed_channel_videos": _slowest(on, followed),
        "all_videos": {"channels_on": on_all, "channels_off": off_all},
        "all_videos_p50_off_over_on": ratio,
        "spend": {"channels_on": spend_on, "channels_off": spend_off},
        "targets": {
            "followed_p50_at_most_90_s": bool(on_followed["p50_seconds"] is not None)
            and on_followed["p50_seconds"] <= TARGET_FOLLOWED_P50,
            "followed_p99_at_most_10_min": bool(on_followed["p99_seconds"] is not None)
            and on_followed["p99_seconds"] <= TARGET_FOLLOWED_P99,
            "all_p50_at_least_4x_lower": ratio is not None and ratio >= TARGET_ALL_P50_RATIO,
            "calls_within_the_day_budget": within_budget,
        },
    }


def _followed(run: dict[str, Any]) -> set[str]:
    """The run's videos published between its first and last read of their channel's uploads playlist."""
    reads = run["reads"]
    return {
        vid
        for vid, video in run["truth"].items()
        if video["channelId"] in reads
        and reads[video["channelId"]][0] <= epoch(video["publishedAt"]) <= reads[video["channelId"]][1]
    }


def _first_via(run: dict[str, Any]) -> dict[str, str]:
    """Per video: how its first confirmed channel message found it (poll or push)."""
    first: dict[str, tuple[float, str]] = {}
    for message in run["tap_messages"]:
        found_by = message.body.get("found_by", {})
        if found_by.get("source") != "channel":
            continue
        at = datetime.fromisoformat(message.body["fetched_at"]).timestamp()
        if message.video_id not in first or at < first[message.video_id][0]:
            first[message.video_id] = (at, str(found_by.get("via")))
    return {vid: via for vid, (_, via) in first.items()}


def summarise_push(run: dict[str, Any], hours: float) -> dict[str, Any]:
    """The push run: followed-channel freshness, how the videos came, the hub's books, the units."""
    followed = _followed(run)
    figures = _figures(*_freshness(run["truth"], run["seen"], followed))
    via = _first_via(run)
    pushes: dict[str, int] = {}
    for sub in run["hub"]["subscriptions"]:
        for name, count in sub["pushes"].items():
            pushes[name] = pushes.get(name, 0) + count
    return {
        "followed_channel_videos": figures,
        "followed_first_via": {way: sum(1 for vid in followed if via.get(vid) == way) for way in ("push", "poll")},
        "hub_subscriptions": len(run["hub"]["subscriptions"]),
        "hub_pushes": pushes,
        "spend": _spend(run, hours),
        "targets": {
            "push_followed_p50_at_most_15_s": figures["p50_seconds"] is not None
            and figures["p50_seconds"] <= TARGET_PUSH_P50,
            "push_followed_p99_at_most_10_min": figures["p99_seconds"] is not None
            and figures["p99_seconds"] <= TARGET_PUSH_P99,
        },
    }


async def channel_scenario(
    stack: StackSettings, amqp: aio_pika.abc.AbstractRobustConnection, *, hours: float, start: str, push: bool = False
) -> dict[str, Any]:
    moment = epoch(start)
    on = await run_world(stack, amqp, channels_on=True, hours=hours, start=moment)
    off = await run_world(stack, amqp, channels_on=False, hours=hours, start=moment)
    summary = summarise(on, off, hours)
    if push:
        pushed = await run_world(stack, amqp, channels_on=True, hours=hours, start=moment, push=True)
        summary["push"] = summarise_push(pushed, hours)
    return summary


def side_by_side(summary: dict[str, Any]) -> str:
    def minutes(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f} s" if value < 120 else f"{value / 60:.1f} min"

    followed, every = summary["followed_channel_videos"], summary["all_videos"]
    spend = summary["spend"]
    rows = [
        ("", "channels on", "channels off"),
        (
            "followed-channel p50",
            minutes(followed["channels_on"]["p50_seconds"]),
            minutes(followed["channels_off"]["p50_seconds"]),
        ),
        (
            "followed-channel p99",
            minutes(followed["channels_on"]["p99_seconds"]),
            minutes(followed["channels_off"]["p99_seconds"]),
        ),
        ("all videos p50", minutes(every["channels_on"]["p50_seconds"]), minutes(every["channels_off"]["p50_seconds"])),
        ("all videos p99", minutes(every["channels_on"]["p99_seconds"]), minutes(every["channels_off"]["p99_seconds"])),
        ("not published", str(every["channels_on"]["not_published"]), str(every["channels_off"]["not_published"])),
        ("searches in the run", str(spend["channels_on"]["search_calls"]), str(spend["channels_off"]["search_calls"])),
        ("units in the run", str(spend["channels_on"]["units"]), str(spend["channels_off"]["units"])),
        (
            "units, pace a day",
            str(spend["channels_on"]["units_pace_per_day"]),
            str(spend["channels_off"]["units_pace_per_day"]),
        ),
    ]
    lines = [f"  {a:24} {b:>14} {c:>14}" for a, b, c in rows]
    lines += [f"  target {name}: {'met' if met else 'NOT met'}" for name, met in summary["targets"].items()]
    push = summary.get("push")
    if push is not None:
        pushed, ways = push["followed_channel_videos"], push["followed_first_via"]
        lines += [
            "  channels on, with push (the hub's defaults: 1-20 s delay, 5% lost):",
            f"    followed-channel p50 {minutes(pushed['p50_seconds'])}, p99 {minutes(pushed['p99_seconds'])},"
            f" not published {pushed['not_published']} of {pushed['videos']}",
            f"    first came by push {ways['push']}, by poll {ways['poll']}; hub pushes {push['hub_pushes']}",
            f"    searches {push['spend']['search_calls']}, units {push['spend']['units']}"
            f" (pace a day {push['spend']['units_pace_per_day']})",
        ]
        lines += [f"  target {name}: {'met' if met else 'NOT met'}" for name, met in push["targets"].items()]
    return "\n".join(lines)
