"""What the dashboard's browser tests share: a realistic catalogue, the real API on a free port, and
Debian's Chromium driven by Playwright.

Also runnable to refresh the README's screenshot (``make dashboard-screenshot``):
``python -m tests.e2e.dashboard_support docs/dashboard.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import math
import random
import re
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import aio_pika
import aiohttp
from aiohttp import web
from elasticsearch import AsyncElasticsearch
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Dialog,
    Page,
    Route,
    ViewportSize,
    async_playwright,
)
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from services.api.app import create_app
from services.api.settings import Settings
from services.common.events import FoundBy, Thumbnail, VideoEvent
from services.common.fetcher_state import (
    BUDGET_COLLECTION,
    KEY_STATE_COLLECTION,
    LEASE_COLLECTION,
    QUERY_STATE_COLLECTION,
    BudgetDoc,
    KeyStateDoc,
    LeaseDoc,
    QueryStateDoc,
)
from services.common.settings import PROJECT_ROOT, StackSettings
from services.common.timefmt import utc_now
from services.common.topology import QueueNames, declare_index_queue
from services.indexer.store import VideoWriter

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = PROJECT_ROOT / ".local" / "screenshots"
QUERIES = ["cricket", "football"]
DESKTOP: ViewportSize = {"width": 1366, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
# The dashboard's page size (static/js/list.js PAGE_SIZE).
PAGE_SIZE = 24

CHANNELS = {
    "cricket": ["Boundary Line TV", "The Cover Drive", "Stumps & Bails", "Pitchside Daily"],
    "football": ["Matchday Live", "Golden Boot FC", "Final Whistle Podcast"],
}
_CRICKET_TITLES = [
    "India vs Australia, 3rd Test Day {day} | Full Highlights",
    "{player} hits {runs} off {balls} balls — every boundary",
    "Wicket of the week: {player}'s unplayable inswinger",
    "How to bowl the perfect yorker (slow-motion breakdown)",
    "Ashes preview: can England's batting survive the new ball?",
    "Top 10 catches of the season so far",
    "{player} on captaincy, pressure and the final over",
    "T20 World Cup warm-up: Pakistan vs New Zealand highlights",
    "Running between the wickets: the drills that win games",
    "Spin masterclass: reading the googly from the hand",
    "Last-ball thriller! Every wicket from a chaotic final over",
    "Women's Big Bash: {player} smashes a {balls}-ball century",
    "Sri Lanka vs South Africa, 2nd ODI | Match Highlights",
    "Net session with {player}: pull shots against 145 km/h",
    "County Championship round-up: {runs} for 3 before lunch",
    "Why the DRS got it wrong — umpire's call explained",
    "Bangladesh chase down {runs} in a record-breaking final",
    "{player} five-wicket haul | every ball of the spell",
]
_FOOTBALL_TITLES = [
    "Arsenal {a}-{b} Chelsea | Extended Highlights",
    "Every goal from matchday {day}",
    "Tactics explained: why the high press keeps failing",
    "Transfer deadline day — all the late deals, live",
    "Press conference: the manager on the derby defeat",
    "{player}'s stunning free kick from every angle",
    "Liverpool vs Everton: the Merseyside derby in 10 minutes",
    "Running stats: who covers the most ground in the league?",
    "Goalkeeper saves of the month",
    "Champions League draw reaction: the group of death",
    "Barcelona {a}-{b} Sevilla | La Liga highlights",
    "{player} hat-trick! All three goals in 90 seconds",
]
_PLAYERS = ["Sharma", "Cummins", "Root", "Rashid", "Mandhana", "Saka", "Haaland", "Kerr", "Bumrah", "Lyon"]
DESCRIPTIONS = {
    "cricket": "Watch the best moments, wickets and boundaries, with expert analysis from our commentary team.",
    "football": "All the goals, saves and talking points, plus reaction from the managers after the final whistle.",
}


def channel_id(name: str) -> str:
    return "UC" + hashlib.sha256(name.encode()).hexdigest()[:22]


def _video_id(rng: random.Random) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return "".join(rng.choice(alphabet) for _ in range(11))


def _title(rng: random.Random, query: str, template: str | None = None) -> str:
    template = template or rng.choice(_CRICKET_TITLES if query == "cricket" else _FOOTBALL_TITLES)
    return template.format(
        day=rng.randint(1, 5),
        player=rng.choice(_PLAYERS),
        runs=rng.randint(50, 180),
        balls=rng.randint(30, 90),
        a=rng.randint(0, 4),
        b=rng.randint(0, 3),
    )


def _title_cycle(rng: random.Random, query: str) -> Iterator[str]:
    """Every template once, in a shuffled order, then again: a page of cards rarely repeats one."""
    templates = list(_CRICKET_TITLES if query == "cricket" else _FOOTBALL_TITLES)
    while True:
        rng.shuffle(templates)
        for template in templates:
            yield _title(rng, query, template)


def make_video(
    rng: random.Random,
    *,
    query: str,
    published_at: datetime,
    channel: str | None = None,
    title: str | None = None,
    description: str | None = None,
    found_by: FoundBy | None = None,
) -> VideoEvent:
    """A video on the topic of ``query``, found by its search unless ``found_by`` says otherwise."""
    vid = _video_id(rng)
    channel = channel or rng.choice(CHANNELS[query])
    found_by = found_by or FoundBy.search(query)
    return VideoEvent(
        video_id=vid,
        query=found_by.query,
        found_by=found_by,
        title=title or _title(rng, query),
        description=description or DESCRIPTIONS[query],
        published_at=published_at,
        channel_id=channel_id(channel),
        channel_title=channel,
        thumbnails={
            "default": Thumbnail(url=f"https://i.ytimg.com/vi/{vid}/default.jpg", width=120, height=90),
            "medium": Thumbnail(url=f"https://i.ytimg.com/vi/{vid}/mqdefault.jpg", width=320, height=180),
        },
        fetched_at=utc_now(),
        duration_seconds=rng.choice([None, rng.randint(45, 600), rng.randint(600, 5400)]),
        view_count=rng.choice([rng.randint(40, 9_000), rng.randint(9_000, 2_500_000)]),
    )


# Publish ages (minutes before now) of the seeded catalogue. Nothing falls within ten minutes of the
# one-hour and one-day boundaries, so "Last hour" and "Last 24 hours" are unambiguous in tests.
def _ages_minutes(rng: random.Random, count: int) -> list[float]:
    return [rng.choice([rng.uniform(2, 50), rng.uniform(70, 1420), rng.uniform(1450, 1800)]) for _ in range(count)]


def daily_rhythm_ages(rng: random.Random, count: int, hours: int = 36) -> list[float]:
    """Publish ages (minutes) with a day-and-night rhythm, busiest in the evening: for the screenshot."""
    weights = [1.2 + math.sin(2 * math.pi * (hour + 3) / 24) for hour in range(hours)]
    return [60 * (h + rng.random()) for h in rng.choices(range(hours), weights=weights, k=count)]


def seed_events(
    count: int = 60, *, seed: int = 7, now: datetime | None = None, ages: Sequence[float] | None = None
) -> list[VideoEvent]:
    rng = random.Random(seed)
    now = now or utc_now()
    titles = {query: _title_cycle(rng, query) for query in QUERIES}
    events = []
    for i, age in enumerate(ages if ages is not None else _ages_minutes(rng, count)):
        query = "football" if i % 3 == 2 else "cricket"
        # Whole seconds plus a per-video offset: no two videos share a publish time.
        published = (now - timedelta(minutes=age)).replace(microsecond=0) - timedelta(milliseconds=i)
        events.append(make_video(rng, query=query, published_at=published, title=next(titles[query])))
    return events


async def write_videos(
    db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, alias: str, events: Sequence[VideoEvent]
) -> None:
    """Through the indexer's own writer, then a refresh so the API sees them at once."""
    await VideoWriter(db, es, alias).write_batch(list(events))
    await es.indices.refresh(index=alias)


async def seed_fetcher_state(db: AsyncDatabase[dict[str, Any]], queries: Sequence[str] = QUERIES) -> None:
    """The shared state documents a running fetcher keeps, so the status strip shows a live pipeline."""
    now = utc_now()
    day = now.strftime("%Y-%m-%d")
    keys = [
        KeyStateDoc(
            fingerprint="k-3f9a0c", project="tubewatch-a", quota_day=day, search_calls_spent=212, updated_at=now
        ),
        KeyStateDoc(
            fingerprint="k-81d2e7", project="tubewatch-b", quota_day=day, search_calls_spent=188, updated_at=now
        ),
        KeyStateDoc(
            fingerprint="k-c04b55",
            project="tubewatch-c",
            state="parked",
            parked_until=now + timedelta(hours=5),
            parked_reason="daily quota spent",
            quota_day=day,
            search_calls_spent=1000,
            updated_at=now,
        ),
    ]
    await db[KEY_STATE_COLLECTION].insert_many([k.model_dump(by_alias=True) for k in keys])
    await db[QUERY_STATE_COLLECTION].insert_many(
        [
            QueryStateDoc(
                query=q, watermark=now - timedelta(minutes=2), last_poll_at=now - timedelta(seconds=6), updated_at=now
            ).model_dump(by_alias=True)
            for q in queries
        ]
    )
    await db[BUDGET_COLLECTION].insert_one(
        BudgetDoc(
            calls_left_today=1600,
            effective_interval_seconds=10.0,
            reset_at=now + timedelta(hours=9),
            keys_live=2,
            keys_parked=1,
            keys_disabled=0,
            updated_at=now,
        ).model_dump(by_alias=True)
    )
    await db[LEASE_COLLECTION].insert_one(
        LeaseDoc(
            holder="fetcher-1:4242:a1b2", token=3, expires_at=now + timedelta(seconds=30), renewed_at=now
        ).model_dump(by_alias=True)
    )


def api_settings(stack: StackSettings, db_name: str, alias: str, queues: QueueNames, state_dir: Path) -> Settings:
    return Settings(
        elasticsearch_url=stack.elasticsearch_url,
        elasticsearch_index=alias,
        mongodb_url=stack.mongodb_url,
        mongodb_database=db_name,
        amqp_url=stack.amqp_url,
        amqp_exchange=queues.exchange,
        amqp_queue=queues.queue,
        search_queries=QUERIES,
        cursor_secret="dashboard-tests-" + "s" * 32,
        state_dir=state_dir,
    )


@asynccontextmanager
async def running_api(settings: Settings) -> AsyncIterator[str]:
    """The real API app (create_app serves the dashboard too) on a free loopback port; yields its base URL."""
    runner = web.AppRunner(create_app(settings), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def api_json(base: str, path: str, params: Sequence[tuple[str, str]] = ()) -> Any:
    async with aiohttp.ClientSession() as session, session.get(base + path, params=list(params)) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def api_ids(base: str, params: Sequence[tuple[str, str]], *, limit: int = PAGE_SIZE) -> list[str]:
    """The first page the API answers for these parameters, as video ids."""
    body = await api_json(base, "/api/v1/videos", [*params, ("limit", str(limit))])
    return [item["video_id"] for item in body["items"]]


async def api_walk(base: str, params: Sequence[tuple[str, str]] = ()) -> list[str]:
    """Every video the API lists for these parameters, by following next_cursor."""
    ids: list[str] = []
    cursor: str | None = None
    while True:
        extra = [("cursor", cursor)] if cursor else []
        body = await api_json(base, "/api/v1/videos", [*params, ("limit", "100"), *extra])
        ids += [item["video_id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return ids


# ---- the browser ----------------------------------------------------------------------------


def _caption_lines(title: str, width: int = 18, count: int = 2) -> list[str]:
    lines: list[str] = []
    for word in title.replace("|", " ").split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        elif len(lines) < count:
            lines.append(word[:width])
        else:
            break
    return lines


def _thumbnail_svg(title: str, key: str) -> str:
    """A stand-in thumbnail: a gradient, two soft shapes and the first words of the title."""
    digest = hashlib.sha256(key.encode()).digest()
    hue = digest[0] * 360 // 256
    lines = _caption_lines(title)
    text = "".join(
        f'<text x="18" y="{150 - (len(lines) - 1 - i) * 26}" font-size="22" font-weight="800" fill="#fff" '
        f'font-family="DejaVu Sans, sans-serif">{escape(line)}</text>'
        for i, line in enumerate(lines)
    )
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="320" height="180" viewBox="0 0 320 180">'
        '<defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1">'
        f'<stop offset="0" stop-color="hsl({hue},55%,26%)"/>'
        f'<stop offset="1" stop-color="hsl({(hue + 40) % 360},65%,48%)"/>'
        '</linearGradient><linearGradient id="s" x1="0" y1="0" x2="0" y2="1">'
        '<stop offset=".45" stop-color="#000" stop-opacity="0"/><stop offset="1" stop-color="#000" stop-opacity=".55"/>'
        "</linearGradient></defs>"
        '<rect width="320" height="180" fill="url(#g)"/>'
        f'<circle cx="{230 + digest[1] % 60}" cy="{30 + digest[2] % 50}" r="{45 + digest[3] % 35}" '
        'fill="#fff" opacity=".14"/>'
        f'<rect x="{digest[4] % 120}" y="{60 + digest[5] % 40}" width="220" height="26" rx="13" fill="#fff" '
        f'opacity=".08" transform="rotate(-14 160 90)"/>'
        '<rect width="320" height="180" fill="url(#s)"/>'
        f"{text}</svg>"
    )


@dataclass
class DashboardPage:
    """A browser tab on the dashboard, with what went wrong in it: script errors, console errors
    (a Content-Security-Policy violation is one), and any dialog a page script tried to open."""

    page: Page
    context: BrowserContext
    base: str
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    # Console errors a test causes on purpose (e.g. a request it made fail).
    expected_errors: list[re.Pattern[str]] = field(default_factory=list)

    async def open(self, query: str = "") -> None:
        await self.page.goto(f"{self.base}/{query}")

    def unexpected_errors(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.expected_errors)]

    async def card_ids(self) -> list[str]:
        ids: list[str] = await self.page.locator("#results > li[data-video-id]").evaluate_all(
            "cards => cards.map(card => card.dataset.videoId)"
        )
        return ids


def launch_args() -> dict[str, Any]:
    if not CHROMIUM.exists():
        raise RuntimeError(f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)")
    return {"executable_path": str(CHROMIUM), "headless": True, "args": CHROMIUM_ARGS}


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(**launch_args())
        try:
            yield browser
        finally:
            await browser.close()


@asynccontextmanager
async def dashboard_page(
    browser: Browser,
    base: str,
    titles: dict[str, str],
    *,
    viewport: ViewportSize = DESKTOP,
    phone: bool = False,
    fake_clock: bool = False,
) -> AsyncIterator[DashboardPage]:
    """A fresh context on ``base``. YouTube's thumbnail host is unreachable here, so its images are
    answered with drawings named after each video's title (``titles``: video id -> title)."""
    context = await browser.new_context(
        viewport=viewport,
        device_scale_factor=2 if phone else 1,
        is_mobile=phone,
        has_touch=phone,
        locale="en-GB",
        timezone_id="UTC",
        color_scheme="light",
    )
    context.set_default_timeout(20_000)
    page = await context.new_page()
    dash = DashboardPage(page, context, base)

    async def thumbnail(route: Route) -> None:
        match = re.search(r"/vi/([^/]+)/", route.request.url)
        key = match.group(1) if match else route.request.url
        await route.fulfill(content_type="image/svg+xml", body=_thumbnail_svg(titles.get(key, "tubewatch"), key))

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            dash.errors.append(message.text)

    async def on_dialog(dialog: Dialog) -> None:
        dash.dialogs.append(f"{dialog.type}: {dialog.message}")
        await dialog.dismiss()

    await context.route("https://i.ytimg.com/**", thumbnail)
    page.on("console", on_console)
    page.on("pageerror", lambda error: dash.errors.append(f"page error: {error}"))
    page.on("dialog", on_dialog)
    if fake_clock:
        # Timers still run in real time; tests jump ahead to the next live poll instead of waiting.
        await page.clock.install()
    try:
        yield dash
    finally:
        await context.close()


# ---- the README screenshot --------------------------------------------------------------------


async def _screenshot(path: Path) -> None:
    stack = StackSettings()
    name = f"twshot-{uuid.uuid4().hex[:10]}"
    queues = QueueNames(exchange=f"{name}.videos", queue=f"{name}.videos.index")
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongodb_url, tz_aware=True)
    es = AsyncElasticsearch(stack.elasticsearch_url, request_timeout=30)
    amqp = await aio_pika.connect_robust(stack.amqp_url)
    db = mongo[name.replace("-", "_")]
    try:
        channel = await amqp.channel()
        queue = await declare_index_queue(channel, queues)
        await queue.consume(lambda message: message.ack())  # an idle indexer, as in a healthy pipeline
        events = seed_events(seed=2024, ages=daily_rhythm_ages(random.Random(2024), 240))
        await write_videos(db, es, name, events)
        await seed_fetcher_state(db)
        titles = {e.video_id: e.title for e in events}
        settings = api_settings(stack, db.name, name, queues, PROJECT_ROOT / ".local")
        async with running_api(settings) as base, chromium() as browser, dashboard_page(browser, base, titles) as dash:
            await dash.open()
            await dash.page.locator("#results > li[data-video-id]").nth(PAGE_SIZE - 1).wait_for()
            await dash.page.locator("#chart .bar").first.wait_for()
            await dash.page.locator('#status[data-state="ready"]').wait_for()
            await dash.page.evaluate("document.fonts.ready")
            path.parent.mkdir(parents=True, exist_ok=True)
            await dash.page.screenshot(path=str(path))
        await channel.close()
        for queue_name in (queues.queue, queues.dead_queue):
            cleanup = await amqp.channel()
            await cleanup.queue_delete(queue_name)
        cleanup = await amqp.channel()
        for exchange in (queues.exchange, queues.dead_exchange):
            await cleanup.exchange_delete(exchange)
    finally:
        await amqp.close()
        await mongo.drop_database(db.name)
        found = await es.indices.get(index=f"{name}*", allow_no_indices=True, expand_wildcards="all")
        if found.body:
            await es.indices.delete(index=",".join(found.body))
        await es.close()
        await mongo.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="Screenshot the dashboard over a seeded catalogue.")
    parser.add_argument("output", type=Path, nargs="?", default=PROJECT_ROOT / "docs" / "dashboard.png")
    asyncio.run(_screenshot(parser.parse_args().output))


if __name__ == "__main__":
    main()
