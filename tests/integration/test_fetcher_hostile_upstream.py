"""The fetcher fed the emulator's hostile answers: bad items skipped, nothing garbled published, no crash.

Each kind of hostile answer (services/youtube_emulator/hostile.py) is switched on for every call
of a first poll cycle, then off: the first cycle shows what the fetcher did with the broken
answers, the cycles after it that nothing was lost for good. The emulator's clock is frozen and
stepped by the test, so the cycles are exact. What the fetcher published is compared with the
emulator's ground truth; its log records with the query they concern and never the key.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aio_pika
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families
from pymongo.asynchronous.database import AsyncDatabase

from services.common.events import VideoEvent
from services.common.fetcher_state import QUERY_STATE_COLLECTION
from services.common.settings import StackSettings
from services.common.timefmt import parse_rfc3339
from services.common.topology import QueueNames
from services.youtube_emulator.content import search_snippet
from services.youtube_emulator.hostile import REDIRECT_HOST
from services.youtube_emulator.settings import Settings as EmulatorSettings
from services.youtube_emulator.testing import quiet_settings
from tests.integration.fetcher_support import (
    EmulatorDrivenClock,
    InProcessFetcher,
    QueueTap,
    RecordedCall,
    RunningEmulator,
    epoch,
    fake_key,
    fetcher_env,
    in_process_fetcher,
    queue_tap,
    running_emulator,
)
from tests.waiting import wait_until

START = epoch("2026-11-24T12:00:00Z")
QUERY = "cricket"
KEY = fake_key("hostile-upstream")
LOOKBACK_SECONDS = 1800
STEP_SECONDS = 10


def world(**overrides: Any) -> EmulatorSettings:
    """Half an hour of uploads (about four pages of search results), quota to spare."""
    return quiet_settings(
        emulator_videos_per_minute=6,
        emulator_backfill_seconds=LOOKBACK_SECONDS,
        emulator_search_calls_per_day=1_000_000,
        emulator_units_per_day=10_000_000,
        **overrides,
    )


def env_for(
    stack: StackSettings, queue_names: QueueNames, database: str, emulator: RunningEmulator, **overrides: object
) -> dict[str, str]:
    settings: dict[str, object] = {
        "youtube_api_keys": KEY,
        "initial_lookback_seconds": LOOKBACK_SECONDS,
        "poll_interval_seconds": STEP_SECONDS / 2,
        # A sweep every other cycle re-reads the whole window (the overlap reaches past its start).
        "late_sweep_every": 2,
        "overlap_seconds": 2 * LOOKBACK_SECONDS,
        "youtube_retries": 2,
    }
    return fetcher_env(stack, queue_names, database, emulator, **(settings | overrides))


# Driving the cycles --------------------------------------------------------------------------


async def first_cycle_done(fetcher: InProcessFetcher) -> None:
    scheduler = fetcher.scheduler

    async def waiting() -> bool:
        return scheduler.cycles >= 1 and scheduler.next_cycle_at is not None

    await wait_until(waiting, within=120, what="the fetcher's first poll cycle")


async def next_cycle(emulator: RunningEmulator, fetcher: InProcessFetcher) -> None:
    """Once the fetcher waits for its next cycle, move both clocks on and wait for that cycle to end."""
    scheduler = fetcher.scheduler
    await first_cycle_done(fetcher)
    cycles = scheduler.cycles
    emulator.advance(STEP_SECONDS)

    async def cycled() -> bool:
        return scheduler.cycles > cycles and scheduler.next_cycle_at is not None

    await wait_until(cycled, within=120, what="a poll cycle")


async def metric(fetcher: InProcessFetcher, name: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(await fetcher.metrics())
        for sample in family.samples
        if sample.name == name and sample.labels.get("query") == QUERY
    )


async def tap_caught_up(fetcher: InProcessFetcher, tap: QueueTap) -> None:
    """Every message the broker confirmed to the fetcher has reached the test's consumer."""
    published = await metric(fetcher, "tubewatch_fetcher_videos_published_total")

    async def caught_up() -> bool:
        return len(tap.messages) >= published

    await wait_until(caught_up, within=30, what=f"{published:.0f} published messages")


async def hostility_off(emulator: RunningEmulator, kind: str) -> None:
    await emulator.admin("POST", "/admin/config", json={f"hostile_{kind}": 0.0})


async def everything_published(
    emulator: RunningEmulator, fetcher: InProcessFetcher, tap: QueueTap, truth: dict[str, Any]
) -> None:
    """Step cycles (a sweep among them) until every video of ``truth`` reached the queue."""
    for _ in range(4):
        await next_cycle(emulator, fetcher)
    await tap_caught_up(fetcher, tap)
    missing = set(truth) - tap.ids()
    assert not missing, f"{len(missing)} of {len(truth)} videos never published once the answers were sane again"


# What must hold whatever the hostility --------------------------------------------------------


def fetcher_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith(("services.fetcher", "services.common", "aiohttp.client"))]


def assert_no_key_and_no_crash(caplog: pytest.LogCaptureFixture) -> None:
    records = fetcher_records(caplog)
    assert records, "the capture is empty: the assertions below would hold vacuously"
    for record in records:
        assert KEY not in f"{record.getMessage()} {record.__dict__}", f"the key leaked into: {record.getMessage()}"
    crashes = [r.getMessage() for r in records if r.levelno >= logging.ERROR]
    assert not crashes, crashes


def assert_no_garbage(tap: QueueTap, truth: dict[str, dict[str, Any]]) -> None:
    """Exactly once each, and each message says what the emulator really shows."""
    counts = tap.counts()
    twice = {vid: n for vid, n in counts.items() if n > 1}
    assert not twice, f"published more than once: {twice}"
    extra = counts.keys() - truth.keys()
    assert not extra, f"published videos the emulator never showed: {sorted(extra)[:5]}"
    for message in tap.messages:
        event = VideoEvent.model_validate(message.body)
        real = truth[event.video_id]
        assert event.query == QUERY
        assert event.title == real["title"], event.video_id
        assert event.channel_id == real["channelId"], event.video_id
        assert event.channel_title == real["channelTitle"], event.video_id
        assert event.published_at == parse_rfc3339(real["publishedAt"]), event.video_id
        # The search snippet's cut of the description, or videos.list's whole one: never stuffing.
        assert event.description in (real["description"], search_snippet(real["description"])), event.video_id


async def assert_sane_watermark(mongo_db: AsyncDatabase[dict[str, Any]], emulator: RunningEmulator) -> None:
    state = await mongo_db[QUERY_STATE_COLLECTION].find_one({"_id": QUERY})
    assert state is not None
    watermark = state["watermark"].timestamp()
    # An absurd date taken for real would have pushed it to year 9999 (or back to 1970).
    assert START - LOOKBACK_SECONDS <= watermark <= emulator.state.now(), state["watermark"]


def search_pages(calls: list[RecordedCall]) -> list[RecordedCall]:
    return [c for c in calls if c.method == "search" and c.status == 200 and c.item_ids]


# Bad items in good pages ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["wrong_types", "missing_fields", "absurd_dates", "huge_page"])
async def test_bad_items_are_skipped_and_the_rest_of_their_page_published(
    kind: str,
    stack: StackSettings,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    amqp: aio_pika.abc.AbstractRobustConnection,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with (
        running_emulator(world(**{f"emulator_hostile_{kind}": 1.0}), now=START, frozen=True) as emulator,
        queue_tap(amqp, queue_names) as tap,
    ):
        truth = await emulator.visible()
        env = env_for(stack, queue_names, mongo_db.name, emulator)
        async with in_process_fetcher(env, EmulatorDrivenClock(emulator)) as fetcher:
            await first_cycle_done(fetcher)
            await tap_caught_up(fetcher, tap)
            # Every page of the first cycle had (at most) one broken item: the others went out.
            pages = search_pages(emulator.calls)
            assert pages, "no page was answered"
            published = tap.ids()
            for page in pages:
                left_out = set(page.item_ids) - published
                assert len(left_out) <= 1, f"{len(left_out)} items of one page were not published"
            skipped_first = await metric(fetcher, "tubewatch_fetcher_items_skipped_total")
            assert skipped_first >= 1, "no item was refused: the hostile answers did not arrive"

            await hostility_off(emulator, kind)
            await everything_published(emulator, fetcher, tap, truth)
            assert fetcher.leader.role == "leader"
            assert (await fetcher.client.get("/healthz")).status == 200
        await assert_sane_watermark(mongo_db, emulator)
        final = await emulator.visible()

    assert_no_garbage(tap, final)
    assert_no_key_and_no_crash(caplog)
    skips = [r for r in fetcher_records(caplog) if r.getMessage() == "skipping unusable search item"]
    assert len(skips) == skipped_first, "each skipped item is logged once"
    assert all(getattr(r, "query", None) == QUERY for r in skips), "a skip is logged without its query"
    if kind == "huge_page":
        assert all(len(getattr(r, "error", "")) <= 300 for r in skips)  # the 10 MB are not logged


# Answers that are no page at all ----------------------------------------------------------------


@asynccontextmanager
async def redirect_trap(port: int) -> AsyncIterator[list[bytes]]:
    """Listen where the emulator's redirects point (another host, same port); record who comes."""
    visits: list[bytes] = []

    async def visited(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        visits.append(await reader.read(4096))
        writer.close()

    server = await asyncio.start_server(visited, REDIRECT_HOST, port)
    try:
        yield visits
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(("kind", "logged"), [("truncated", "non-JSON body"), ("redirect", "refused to follow a 302")])
async def test_answers_that_are_no_page_publish_nothing_and_the_window_is_walked_later(
    kind: str,
    logged: str,
    stack: StackSettings,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    amqp: aio_pika.abc.AbstractRobustConnection,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with (
        running_emulator(world(**{f"emulator_hostile_{kind}": 1.0}), now=START, frozen=True) as emulator,
        queue_tap(amqp, queue_names) as tap,
        redirect_trap(int(emulator.url.rsplit(":", 1)[1])) as visits,
    ):
        truth = await emulator.visible()
        env = env_for(stack, queue_names, mongo_db.name, emulator)
        async with in_process_fetcher(env, EmulatorDrivenClock(emulator)) as fetcher:
            await first_cycle_done(fetcher)
            searches = [c for c in emulator.calls if c.method == "search"]
            assert len(searches) == 3, "one search, retried twice, then the walk waits for the next cycle"
            assert {c.status for c in searches} == {302 if kind == "redirect" else 200}
            assert await metric(fetcher, "tubewatch_fetcher_videos_published_total") == 0
            assert not tap.messages

            await hostility_off(emulator, kind)
            await everything_published(emulator, fetcher, tap, truth)
            assert fetcher.leader.role == "leader"
        final = await emulator.visible()
        await assert_sane_watermark(mongo_db, emulator)

    assert visits == [], f"the fetcher followed a redirect to {REDIRECT_HOST}: {visits[:1]}"
    assert_no_garbage(tap, final)
    assert_no_key_and_no_crash(caplog)
    messages = [r.getMessage() + " " + str(getattr(r, "error", "")) for r in fetcher_records(caplog)]
    assert any(logged in m for m in messages), f"nothing logged about: {logged}"
    cut = [r for r in fetcher_records(caplog) if r.getMessage() == "walk cut short; the rest waits for the next cycle"]
    assert cut and all(getattr(r, "query", None) == QUERY for r in cut)


MALFORMED_PAGES: dict[str, dict[str, Any]] = {
    "items-not-a-list": {"items": "not a list"},
    "no-items": {"pageInfo": {"totalResults": 1000, "resultsPerPage": 50}},
    "token-not-text": {"items": [], "nextPageToken": 7},
}


@pytest.mark.parametrize("shape", MALFORMED_PAGES)
async def test_a_page_that_is_no_page_of_results_cuts_the_walk_and_its_rest_is_walked_later(
    shape: str,
    stack: StackSettings,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    amqp: aio_pika.abc.AbstractRobustConnection,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Taken for an empty last page, a broken second page would end the walk and lose the window below page one."""
    caplog.set_level(logging.INFO)
    broken: list[RecordedCall] = []

    def second_page_broken(request: web.Request, calls: list[RecordedCall]) -> web.StreamResponse | None:
        if request.path.endswith("/search") and request.query.get("pageToken") and not broken:
            broken.append(calls[-1])
            return web.json_response({"kind": "youtube#searchListResponse", **MALFORMED_PAGES[shape]})
        return None

    async with (
        running_emulator(world(), now=START, frozen=True) as emulator,
        queue_tap(amqp, queue_names) as tap,
    ):
        emulator.intercept = second_page_broken
        truth = await emulator.visible()
        assert len(truth) > 100  # more than two pages
        # No late sweep to make up for a lost window: only the walk's own bookkeeping can.
        env = env_for(stack, queue_names, mongo_db.name, emulator, late_sweep_every=1000, overlap_seconds=60)
        async with in_process_fetcher(env, EmulatorDrivenClock(emulator)) as fetcher:
            await first_cycle_done(fetcher)
            assert broken, "the second page was never asked for"
            await tap_caught_up(fetcher, tap)
            assert len(tap.messages) == 50  # page one went out
            await everything_published(emulator, fetcher, tap, truth)
        final = await emulator.visible()

    assert_no_garbage(tap, final)
    assert_no_key_and_no_crash(caplog)
    cut = [r for r in fetcher_records(caplog) if r.getMessage() == "walk cut short; the rest waits for the next cycle"]
    assert cut and all(getattr(r, "query", None) == QUERY for r in cut)
    assert any(f"search page for {QUERY!r}" in str(getattr(r, "error", "")) for r in cut), "the cut is not explained"
