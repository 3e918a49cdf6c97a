"""The dashboard in a real browser (Debian's Chromium driven by Playwright) against the real API.

Every test seeds its own catalogue through the indexer's writer into its own MongoDB database and
Elasticsearch alias, runs the API app on a free port, and checks that what the page shows is what
the API says for the filters the person chose.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import aio_pika
import aiohttp
import feedparser  # type: ignore[import-untyped]
import pytest
from elasticsearch import AsyncElasticsearch
from playwright.async_api import Browser, expect
from pymongo.asynchronous.database import AsyncDatabase

from services.common.catalogue import ensure_text_index
from services.common.events import FoundBy, VideoEvent
from services.common.settings import StackSettings
from services.common.timefmt import utc_now
from services.common.topology import QueueNames, declare_index_queue
from tests.e2e.dashboard_support import (
    PAGE_SIZE,
    PHONE,
    SCREENSHOTS,
    DashboardPage,
    api_ids,
    api_json,
    api_settings,
    api_walk,
    channel_id,
    chromium,
    dashboard_page,
    make_video,
    running_api,
    seed_events,
    seed_fetcher_state,
    write_videos,
)

pytestmark = pytest.mark.e2e
expect.set_options(timeout=20_000)

CARDS = "#results > li[data-video-id]"
XSS_TITLE = "<img src=x onerror=alert(1)>"
XSS_DESCRIPTION = "<script>alert(2)</script><b>not bold</b>"
XSS_CHANNEL = "<svg onload=alert(3)>"


@pytest.fixture
async def catalogue(mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str) -> list[VideoEvent]:
    events = seed_events(60)
    await write_videos(mongo_db, es, es_alias, events)
    await seed_fetcher_state(mongo_db)
    return events


@pytest.fixture
async def queues(amqp: aio_pika.abc.AbstractRobustConnection, queue_names: QueueNames) -> QueueNames:
    channel = await amqp.channel()
    await declare_index_queue(channel, queue_names)
    await channel.close()
    return queue_names


@pytest.fixture
async def api(
    stack: StackSettings,
    mongo_db: AsyncDatabase[dict[str, Any]],
    es_alias: str,
    queues: QueueNames,
    tmp_path: Path,
    catalogue: list[VideoEvent],
) -> AsyncIterator[str]:
    async with running_api(api_settings(stack, mongo_db.name, es_alias, queues, tmp_path)) as base:
        yield base


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as running:
        yield running


def _titles(events: Sequence[VideoEvent]) -> dict[str, str]:
    return {e.video_id: e.title for e in events}


async def _clean(dash: DashboardPage) -> None:
    assert dash.unexpected_errors() == [], "the page logged errors (a CSP violation is one)"
    assert dash.dialogs == []


@pytest.fixture
async def dash(browser: Browser, api: str, catalogue: list[VideoEvent]) -> AsyncIterator[DashboardPage]:
    async with dashboard_page(browser, api, _titles(catalogue)) as page:
        yield page
        await _clean(page)


async def shows(dash: DashboardPage, expected: list[str], *, within: float = 20) -> None:
    """Wait until the cards on the page are exactly ``expected``, in order (a readiness wait)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while (ids := await dash.card_ids()) != expected:
        if loop.time() > deadline:
            assert ids == expected, "the dashboard's cards never matched the API's answer"
        await asyncio.sleep(0.1)


def url_params(dash: DashboardPage) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(dash.page.url).query)


def newest_first(events: Sequence[VideoEvent]) -> list[str]:
    return [e.video_id for e in sorted(events, key=lambda e: (e.published_at, e.video_id), reverse=True)]


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def test_newest_videos_first_with_their_details_status_chart_and_queries(
    dash: DashboardPage, api: str, catalogue: list[VideoEvent]
) -> None:
    await dash.open()
    await shows(dash, await api_ids(api, []))
    assert await dash.card_ids() == newest_first(catalogue)[:PAGE_SIZE]

    newest = max(catalogue, key=lambda e: e.published_at)
    card = dash.page.locator(CARDS).first
    await expect(card.locator(".card-title")).to_have_text(newest.title)
    await expect(card.locator(".card-title a")).to_have_attribute(
        "href", f"https://www.youtube.com/watch?v={newest.video_id}"
    )
    await expect(card.locator(".channel-link")).to_have_text(newest.channel_title)
    await expect(card.locator("time")).to_have_attribute("datetime", iso(newest.published_at).replace(".000Z", "Z"))
    await expect(card.locator("time")).to_have_text(re.compile(r"minutes? ago|just now"))
    await expect(card.locator(".card-date")).to_contain_text(str(newest.published_at.year))
    await expect(dash.page.locator("#summary")).to_have_text(f"{PAGE_SIZE} of 60 videos")

    status = dash.page.locator("#status")
    await expect(status.locator('[data-status="videos"] .status-value')).to_have_text("60")
    await expect(status.locator('[data-status="keys"]')).to_contain_text("2 live")
    await expect(status.locator('[data-status="keys"]')).to_contain_text("1 parked")
    await expect(status.locator('[data-status="quota"]')).to_contain_text("1,600 calls")
    await expect(status.locator('[data-status="served-by"]')).to_contain_text("Elasticsearch")
    await expect(status.locator('[data-status="queue"]')).to_contain_text("0 waiting")

    bars = dash.page.locator("#chart .bar")
    await expect(bars.first).to_be_visible()
    counts = await bars.evaluate_all("bars => bars.map(bar => Number(bar.dataset.count))")
    histogram = await api_json(api, "/api/v1/histogram", [("interval", "hour")])
    assert counts == [bucket["count"] for bucket in histogram["buckets"]]
    assert sum(counts) == 60

    per_query = {e.query for e in catalogue}
    options = await dash.page.locator("#query option").all_text_contents()
    for query in per_query:
        stored = sum(e.query == query for e in catalogue)
        assert f"{query} ({stored})" in options

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await dash.page.screenshot(path=str(SCREENSHOTS / "dashboard-desktop.png"))
    await dash.page.screenshot(path=str(SCREENSHOTS / "dashboard-desktop-full.png"), full_page=True)


async def test_search_narrows_the_cards_while_typing(dash: DashboardPage, api: str) -> None:
    await dash.open()
    await shows(dash, await api_ids(api, []))

    await dash.page.keyboard.press("/")  # the search shortcut
    await expect(dash.page.locator("#q")).to_be_focused()
    await dash.page.keyboard.type("yorke", delay=40)  # a prefix of "yorker", as while typing
    expected = await api_ids(api, [("q", "yorke")])
    assert 0 < len(expected) < PAGE_SIZE
    await shows(dash, expected)
    assert url_params(dash) == [("q", "yorke")]
    titles = await dash.page.locator(f"{CARDS} .card-title").all_text_contents()
    assert all("yorker" in title.lower() for title in titles)

    await dash.page.locator("#q").fill("final over")
    await shows(dash, await api_ids(api, [("q", "final over")]))

    await dash.page.locator("#q").fill("zzzunheardof")
    await expect(dash.page.locator("#list-state")).to_contain_text("No videos match these filters")
    assert await dash.card_ids() == []
    await dash.page.get_by_role("button", name="Clear all filters").first.click()
    await shows(dash, await api_ids(api, []))
    assert url_params(dash) == []


async def test_channel_filter_by_keyboard_card_and_chip(
    dash: DashboardPage, api: str, catalogue: list[VideoEvent]
) -> None:
    await dash.open()
    await shows(dash, await api_ids(api, []))
    stumps = next(e.channel_id for e in catalogue if e.channel_title == "Stumps & Bails")

    picker = dash.page.locator("#channel-input")
    await picker.focus()
    await dash.page.keyboard.type("stum", delay=40)
    option = dash.page.locator("#channel-options [role=option]")
    await expect(option).to_have_count(1)
    await expect(option).to_contain_text("Stumps & Bails")
    await dash.page.keyboard.press("ArrowDown")
    await expect(picker).to_have_attribute("aria-activedescendant", "channel-option-0")
    await dash.page.keyboard.press("Enter")
    await shows(dash, await api_ids(api, [("channel_id", stumps)]))
    await expect(dash.page.locator("#channel-chips .chip")).to_have_text(re.compile("Stumps & Bails"))
    assert url_params(dash) == [("channel_id", stumps)]

    # Removing the chip widens the list again; a channel name on a card filters by that channel.
    await dash.page.keyboard.press("Escape")
    await dash.page.locator("#channel-chips .chip").click()
    await shows(dash, await api_ids(api, []))
    await expect(dash.page.locator("#channel-chips .chip")).to_have_count(0)
    page_one = (await api_json(api, "/api/v1/videos", [("limit", str(PAGE_SIZE))]))["items"]
    first_card = next(v for v in page_one if v["channel_id"] != stumps)
    await dash.page.locator(f'{CARDS}[data-video-id="{first_card["video_id"]}"] .channel-link').click()
    await shows(dash, await api_ids(api, [("channel_id", first_card["channel_id"])]))
    # A second channel from the picker: videos of either channel.
    await dash.page.locator("#channel-input").focus()
    await dash.page.keyboard.type("stumps", delay=20)
    await expect(dash.page.locator("#channel-options [role=option]")).to_have_count(1)
    await dash.page.keyboard.press("Enter")
    both = [("channel_id", first_card["channel_id"]), ("channel_id", stumps)]
    await shows(dash, await api_ids(api, both))
    assert url_params(dash) == both
    await expect(dash.page.locator("#channel-chips .chip")).to_have_count(2)


async def test_date_ranges_quick_custom_and_chart_bars(
    dash: DashboardPage, api: str, catalogue: list[VideoEvent]
) -> None:
    await dash.open()
    await shows(dash, await api_ids(api, []))
    now = utc_now()

    await dash.page.locator("#range").select_option("1h")
    last_hour = [e for e in catalogue if e.published_at >= now - timedelta(hours=1)]
    assert 0 < len(last_hour) < PAGE_SIZE
    await shows(dash, newest_first(last_hour))
    assert await dash.card_ids() == await api_ids(api, [("published_after", iso(now - timedelta(hours=1)))])
    assert url_params(dash) == [("range", "1h")]

    await dash.page.locator("#range").select_option("24h")
    last_day = [e for e in catalogue if e.published_at >= now - timedelta(hours=24)]
    assert len(last_day) < len(catalogue)
    await expect(dash.page.locator("#summary")).to_contain_text(f"of {len(last_day)} videos")
    await shows(dash, newest_first(last_day)[:PAGE_SIZE])

    # Choosing the tallest hour in the chart narrows the list to that hour.
    bars = dash.page.locator("#chart .bar")
    await expect(bars.first).to_be_visible()
    counts = await bars.evaluate_all("bars => bars.map(bar => Number(bar.dataset.count))")
    tallest = bars.nth(counts.index(max(counts)))
    start = datetime.fromisoformat(str(await tallest.get_attribute("data-start")))
    await tallest.click()
    bucket = [e for e in catalogue if start <= e.published_at < start + timedelta(hours=1)]
    await shows(dash, newest_first(bucket))
    assert url_params(dash) == [
        ("published_after", iso(start)),
        ("published_before", iso(start + timedelta(hours=1) - timedelta(milliseconds=1))),
    ]
    await expect(dash.page.locator("#range")).to_have_value("custom")
    await expect(dash.page.locator("#after")).to_have_value(start.strftime("%Y-%m-%dT%H:%M"))

    # The same by keyboard: the chart's one tab stop, an arrow to the previous hour, Enter.
    await expect(dash.page.locator("#chart .bar")).to_have_count(1)
    await dash.page.locator("#range").select_option("24h")
    await expect(dash.page.locator("#chart .bar")).not_to_have_count(1)
    await dash.page.locator('#chart .bar[tabindex="0"]').focus()
    await dash.page.keyboard.press("Home")
    first_start = datetime.fromisoformat(str(await dash.page.locator("#chart .bar").first.get_attribute("data-start")))
    await dash.page.keyboard.press("ArrowRight")
    await dash.page.keyboard.press("Enter")
    second = first_start + timedelta(hours=1)
    await expect(dash.page).to_have_url(re.compile(re.escape(f"published_after={iso(second)}".replace(":", "%3A"))))
    await shows(
        dash,
        await api_ids(
            api,
            [
                ("published_after", iso(second)),
                ("published_before", iso(second + timedelta(hours=1) - timedelta(milliseconds=1))),
            ],
        ),
    )

    # A custom range typed into the From and To fields (the browser runs in UTC).
    after, before = now - timedelta(hours=20), now - timedelta(hours=2)
    await dash.page.locator("#range").select_option("custom")
    await dash.page.locator("#after").fill(after.strftime("%Y-%m-%dT%H:%M"))
    await dash.page.locator("#before").fill(before.strftime("%Y-%m-%dT%H:%M"))
    lower = after.replace(second=0, microsecond=0)
    upper = before.replace(second=59, microsecond=999_000)
    expected = await api_ids(api, [("published_after", iso(lower)), ("published_before", iso(upper))])
    assert expected == newest_first([e for e in catalogue if lower <= e.published_at <= upper])[:PAGE_SIZE]
    await shows(dash, expected)


async def test_each_sort_orders_as_the_api_does(dash: DashboardPage, api: str) -> None:
    await dash.open()
    await shows(dash, await api_ids(api, [("sort", "-published_at")]))
    relevance = dash.page.locator('#sort option[value="relevance"]')
    await expect(relevance).to_be_disabled()

    await dash.page.locator("#sort").select_option("published_at")
    await shows(dash, await api_ids(api, [("sort", "published_at")]))
    assert url_params(dash) == [("sort", "published_at")]

    await dash.page.locator("#q").fill("highlights")
    await shows(dash, await api_ids(api, [("q", "highlights"), ("sort", "published_at")]))
    await expect(relevance).to_be_enabled()
    await dash.page.locator("#sort").select_option("relevance")
    by_relevance = await api_ids(api, [("q", "highlights"), ("sort", "relevance")])
    by_date = await api_ids(api, [("q", "highlights"), ("sort", "-published_at")])
    assert by_relevance != by_date
    await shows(dash, by_relevance)

    await dash.page.locator("#sort").select_option("-published_at")
    await shows(dash, by_date)

    # Without search words there is no relevance: the sort falls back to newest first.
    await dash.page.locator("#sort").select_option("relevance")
    await shows(dash, by_relevance)
    await dash.page.locator("#q").fill("")
    await shows(dash, await api_ids(api, []))
    await expect(dash.page.locator("#sort")).to_have_value("-published_at")


async def test_scrolling_loads_every_page_once(dash: DashboardPage, api: str) -> None:
    await dash.open()
    await shows(dash, await api_ids(api, []))
    assert len(await dash.card_ids()) == PAGE_SIZE
    everything = await api_walk(api)
    assert len(everything) == 60

    for shown in (2 * PAGE_SIZE, 60):
        await dash.page.locator(CARDS).last.scroll_into_view_if_needed()
        await expect(dash.page.locator(CARDS)).to_have_count(shown)
    assert await dash.card_ids() == everything
    await expect(dash.page.locator("#end-note")).to_have_text("That's all: 60 videos.")
    await expect(dash.page.locator("#load-more")).to_be_hidden()


async def test_new_videos_raise_the_banner_and_prepend_in_place(
    browser: Browser,
    api: str,
    catalogue: list[VideoEvent],
    mongo_db: AsyncDatabase[dict[str, Any]],
    es: AsyncElasticsearch,
    es_alias: str,
) -> None:
    rng = random.Random(99)
    now = utc_now()
    arrivals = [
        make_video(rng, query="cricket", published_at=now - timedelta(seconds=30 - i), title=f"Breaking: new ball {i}")
        for i in range(5)
    ]
    async with dashboard_page(browser, api, _titles([*catalogue, *arrivals]), fake_clock=True) as dash:
        await dash.open()
        first_page = await api_ids(api, [])
        await shows(dash, first_page)
        banner = dash.page.locator("#live-banner")

        # Read a little way down the list, then let the indexer store five new videos.
        await dash.page.evaluate("() => window.scrollTo(0, 900)")
        await expect(dash.page.locator("#loading-more")).to_be_hidden()  # scrolling may fetch the next page
        shown = await dash.card_ids()
        assert shown[:PAGE_SIZE] == first_page
        watched = await dash.page.evaluate(
            """() => {
                const cards = [...document.querySelectorAll('#results > li')];
                const card = cards.find(c => c.getBoundingClientRect().top >= 0);
                return {id: card.dataset.videoId, top: card.getBoundingClientRect().top};
            }"""
        )
        await dash.page.clock.fast_forward(11_000)  # a poll with nothing new: no banner
        await expect(banner).to_be_hidden()
        await write_videos(mongo_db, es, es_alias, arrivals)
        await dash.page.clock.fast_forward(11_000)  # the next live poll
        await expect(banner).to_be_visible()
        await expect(banner).to_contain_text("5 new videos")
        assert await dash.card_ids() == shown  # nothing moves until the reader asks

        # A plain mouse click where the banner floats (Playwright's click() would scroll it into view first).
        box = await banner.bounding_box()
        assert box is not None
        await dash.page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        await expect(banner).to_be_hidden()
        ids = await dash.card_ids()
        assert ids[:5] == newest_first(arrivals)
        assert ids[5:] == shown
        top = await dash.page.locator(f'{CARDS}[data-video-id="{watched["id"]}"]').evaluate(
            "card => card.getBoundingClientRect().top"
        )
        assert abs(top - watched["top"]) <= 2, "prepending moved the card the reader was looking at"
        await expect(dash.page.locator("#summary")).to_have_text(f"{len(shown) + 5} of 65 videos")

        # Later pages still follow the original walk: no card twice. Each scroll waits for its page
        # (a scroll while a page is still loading asks for nothing more).
        cards = dash.page.locator(CARDS)
        while (count := await cards.count()) < 65:
            await cards.last.scroll_into_view_if_needed()
            await expect(cards).not_to_have_count(count)
        await expect(cards).to_have_count(65)
        everything = await dash.card_ids()
        assert len(set(everything)) == 65
        await _clean(dash)


async def test_titles_are_text_never_html(
    dash: DashboardPage,
    api: str,
    mongo_db: AsyncDatabase[dict[str, Any]],
    es: AsyncElasticsearch,
    es_alias: str,
) -> None:
    rng = random.Random(5)
    hostile = make_video(
        rng,
        query="cricket",
        published_at=utc_now(),
        title=XSS_TITLE,
        description=XSS_DESCRIPTION,
        channel="Stumps & Bails",
    )
    hostile = hostile.model_copy(update={"channel_title": XSS_CHANNEL})
    await write_videos(mongo_db, es, es_alias, [hostile])
    await dash.open()
    await shows(dash, await api_ids(api, []))
    card = dash.page.locator(f'{CARDS}[data-video-id="{hostile.video_id}"]')
    await expect(card.locator(".card-title")).to_have_text(XSS_TITLE)
    await expect(card.locator(".card-description")).to_have_text(XSS_DESCRIPTION)
    await expect(card.locator(".channel-link")).to_have_text(XSS_CHANNEL)
    assert await dash.page.locator('img[src="x"], #results script, #results svg, #results b').count() == 0
    # Let the card's images settle, so an injected onerror handler would have run by now.
    await dash.page.wait_for_function(
        "id => [...document.querySelectorAll(`[data-video-id='${id}'] img`)].every(img => img.complete)",
        arg=hostile.video_id,
    )
    await dash.page.locator("#q").fill("img")
    await shows(dash, [hostile.video_id])
    assert dash.dialogs == []
    assert await dash.page.title() == "“img” · tubewatch"


async def test_url_round_trips_the_filters_and_history_works(
    dash: DashboardPage, api: str, browser: Browser, catalogue: list[VideoEvent]
) -> None:
    await dash.open()
    await shows(dash, await api_ids(api, []))
    channel = next(e for e in catalogue if e.query == "cricket")

    await dash.page.locator("#q").fill("highlights")
    await shows(dash, await api_ids(api, [("q", "highlights")]))
    await dash.page.locator("#query").select_option("cricket")
    await dash.page.locator("#range").select_option("7d")
    await dash.page.locator(f'{CARDS} .channel-link:text-is("{channel.channel_title}")').first.click()
    await dash.page.locator("#sort").select_option("published_at")
    wanted = [
        ("q", "highlights"),
        ("channel_id", channel.channel_id),
        ("range", "7d"),
        ("query", "cricket"),
        ("sort", "published_at"),
    ]
    await expect(dash.page).to_have_url(re.compile(r"sort=published_at"))
    assert url_params(dash) == wanted
    expected = await api_ids(
        api,
        [
            ("q", "highlights"),
            ("channel_id", channel.channel_id),
            ("published_after", iso(utc_now() - timedelta(days=7))),
            ("query", "cricket"),
            ("sort", "published_at"),
        ],
    )
    assert expected
    await shows(dash, expected)

    # The same address in a new tab restores every control and the same list.
    async with dashboard_page(browser, api, _titles(catalogue)) as shared:
        await shared.page.goto(dash.page.url)
        await shows(shared, expected)
        await expect(shared.page.locator("#q")).to_have_value("highlights")
        await expect(shared.page.locator("#query")).to_have_value("cricket")
        await expect(shared.page.locator("#range")).to_have_value("7d")
        await expect(shared.page.locator("#sort")).to_have_value("published_at")
        await expect(shared.page.locator("#channel-chips .chip")).to_contain_text(channel.channel_title)
        await _clean(shared)

    # Back undoes the last change (the sort), forward redoes it.
    await dash.page.go_back()
    await expect(dash.page.locator("#sort")).to_have_value("-published_at")
    assert ("sort", "published_at") not in url_params(dash)
    await shows(dash, await api_ids(api, _resolved(wanted[:-1])))
    await dash.page.go_forward()
    await expect(dash.page.locator("#sort")).to_have_value("published_at")
    await shows(dash, expected)


def _resolved(params: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """URL parameters as the API takes them (a quick range becomes published_after)."""
    spans = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7)}
    return [("published_after", iso(utc_now() - spans[v])) if k == "range" else (k, v) for k, v in params]


async def test_phone_layout_is_one_column_without_sideways_scrolling(
    browser: Browser, api: str, catalogue: list[VideoEvent]
) -> None:
    async with dashboard_page(browser, api, _titles(catalogue), viewport=PHONE, phone=True) as phone:
        await phone.open()
        await shows(phone, await api_ids(api, []))
        await expect(phone.page.locator("#chart .bar").first).to_be_visible()
        await expect(phone.page.locator('#status[data-state="ready"]')).to_be_attached()
        lefts = await phone.page.locator(CARDS).evaluate_all(
            "cards => cards.slice(0, 4).map(card => Math.round(card.getBoundingClientRect().left))"
        )
        assert len(set(lefts)) == 1, "cards should stack in one column on a phone"
        overflow = await phone.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, "the page scrolls sideways on a phone"
        search_box = await phone.page.locator("#q").bounding_box()
        assert search_box is not None and search_box["width"] >= PHONE["width"] - 40
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await phone.page.screenshot(path=str(SCREENSHOTS / "dashboard-phone.png"))
        await phone.page.screenshot(path=str(SCREENSHOTS / "dashboard-phone-full.png"), full_page=True)

        # The filters fold away on a phone; one tap opens them, and they work as on a desktop.
        toggle = phone.page.locator("#filters-toggle")
        await expect(phone.page.locator("#range")).to_be_hidden()
        await toggle.tap()
        await expect(toggle).to_have_attribute("aria-expanded", "true")
        await phone.page.locator("#sort").select_option("published_at")
        await shows(phone, await api_ids(api, [("sort", "published_at")]))
        await toggle.tap()
        await expect(phone.page.locator("#sort")).to_be_hidden()
        await expect(toggle).to_have_text("Edit (1 set)")
        await _clean(phone)


async def test_reduced_mode_is_explained_and_relevance_offers_a_way_out(
    browser: Browser,
    stack: StackSettings,
    mongo_db: AsyncDatabase[dict[str, Any]],
    es_alias: str,
    queues: QueueNames,
    tmp_path: Path,
    catalogue: list[VideoEvent],
) -> None:
    # The API pointed at an alias that does not exist: Elasticsearch cannot serve, MongoDB does, its
    # q through the text index a running indexer builds beside its consumer.
    await ensure_text_index(mongo_db)
    settings = api_settings(stack, mongo_db.name, f"{es_alias}-absent", queues, tmp_path)
    async with running_api(settings) as base, dashboard_page(browser, base, _titles(catalogue)) as dash:
        await dash.open()
        await shows(dash, newest_first(catalogue)[:PAGE_SIZE])
        notice = dash.page.locator("#notice")
        await expect(notice).to_be_visible()
        await expect(notice).to_contain_text("reduced mode")
        await expect(notice).to_contain_text("MongoDB")
        await expect(dash.page.locator('#status [data-status="served-by"]')).to_contain_text("MongoDB")

        await dash.page.locator("#q").fill("yorker")
        await shows(dash, await api_ids(base, [("q", "yorker")]))
        # Relevance needs Elasticsearch: the page says so and offers newest-first instead.
        dash.expected_errors.append(re.compile(r"503"))
        await dash.page.locator("#sort").select_option("relevance")
        error = dash.page.locator("#list-state .state--error")
        await expect(error).to_contain_text("unavailable")
        await expect(error).to_contain_text("relevance needs Elasticsearch")
        assert await dash.card_ids() == []
        await error.get_by_role("button", name="Sort by newest instead").click()
        await shows(dash, await api_ids(base, [("q", "yorker")]))
        await expect(dash.page.locator("#sort")).to_have_value("-published_at")
        await _clean(dash)


async def test_an_unreachable_api_is_reported_and_retry_recovers(dash: DashboardPage, api: str) -> None:
    failing = True

    async def flaky(route: Any) -> None:
        if failing:
            await route.abort("connectionrefused")
        else:
            await route.continue_()

    dash.expected_errors.append(re.compile(r"ERR_CONNECTION_REFUSED"))
    await dash.page.route(re.compile(r"/api/v1/videos\?"), flaky)
    await dash.open()
    error = dash.page.locator("#list-state .state--error")
    await expect(error).to_contain_text("The tubewatch API cannot be reached")
    failing = False
    await error.get_by_role("button", name="Try again").click()
    await shows(dash, await api_ids(api, []))
    await expect(dash.page.locator("#list-state")).to_be_empty()


async def test_the_feed_link_is_the_feed_of_the_filters_on_screen(
    dash: DashboardPage, api: str, catalogue: list[VideoEvent]
) -> None:
    await dash.open("?q=highlights&range=7d&query=cricket&sort=published_at")
    filters = [("q", "highlights"), ("published_within", "P7D"), ("query", "cricket")]
    feed_path = "/api/v1/feeds/videos.atom?" + urlencode(filters)
    await expect(dash.page.locator("#feed-link")).to_have_attribute("href", feed_path)
    await expect(dash.page.locator("#feed-alternate")).to_have_attribute("href", feed_path)
    async with aiohttp.ClientSession() as session, session.get(api + feed_path) as response:
        assert response.status == 200
        parsed = feedparser.parse(await response.read())
    assert not parsed.bozo
    newest = await api_ids(api, filters, limit=50)  # the feed has no sort: newest first, whatever the page's
    assert newest
    assert [entry.id for entry in parsed.entries] == [f"yt:video:{video_id}" for video_id in newest]

    # The feed's alternate link is this dashboard with the same filters.
    alternate = next(link.href for link in parsed.feed.links if link.rel == "alternate")
    await dash.page.goto(alternate)
    await expect(dash.page.locator("#q")).to_have_value("highlights")
    await expect(dash.page.locator("#range")).to_have_value("7d")
    await expect(dash.page.locator("#query")).to_have_value("cricket")
    await shows(dash, await api_ids(api, filters))


async def test_cards_say_how_each_video_was_found_and_the_found_by_filter_narrows_them(
    dash: DashboardPage,
    api: str,
    mongo_db: AsyncDatabase[dict[str, Any]],
    es: AsyncElasticsearch,
    es_alias: str,
    catalogue: list[VideoEvent],
) -> None:
    rng = random.Random(15)
    now = utc_now()
    followed = channel_id("Boundary Line TV")
    through_channel = FoundBy.channel(followed)
    uploads = [
        make_video(
            rng,
            query="cricket",
            channel="Boundary Line TV",
            published_at=now - timedelta(minutes=1, seconds=i),
            found_by=through_channel,
        )
        for i in range(4)
    ]
    # The newest video search found turns up in the followed channel's uploads too.
    searched, also = sorted(catalogue, key=lambda e: e.published_at, reverse=True)[:2]
    refound = searched.model_copy(update={"query": None, "found_by": through_channel, "fetched_at": now})
    await write_videos(mongo_db, es, es_alias, [*uploads, refound])

    await dash.open()
    await shows(dash, await api_ids(api, []))

    def labels(video_id: str) -> Any:
        return dash.page.locator(f"{CARDS}[data-video-id='{video_id}'] .found")

    await expect(labels(uploads[0].video_id)).to_have_text(["channel"])
    await expect(labels(searched.video_id)).to_have_text([f"search: {searched.query}", "channel"])
    await expect(labels(also.video_id)).to_have_text([f"search: {also.query}"])
    await expect(labels(also.video_id)).to_have_attribute("title", f"Found by the search query “{also.query}”")

    await dash.page.locator("#found-by").select_option("channel")
    channel_finds = await api_ids(api, [("found_by", "channel")])
    assert channel_finds == newest_first([*uploads, searched])
    await shows(dash, channel_finds)
    assert ("found_by", "channel") in url_params(dash)
    feed = "/api/v1/feeds/videos.atom?found_by=channel"
    await expect(dash.page.locator("#feed-link")).to_have_attribute("href", feed)
    await expect(dash.page.locator("#summary")).to_have_text("5 videos")

    await dash.page.locator("#found-by").select_option("search")
    await shows(dash, await api_ids(api, [("found_by", "search")]))
    assert uploads[0].video_id not in await dash.card_ids()
    assert searched.video_id in await dash.card_ids()

    # The filter is part of a shared link, and of the history.
    await dash.page.go_back()
    await expect(dash.page.locator("#found-by")).to_have_value("channel")
    await shows(dash, channel_finds)
    await dash.page.reload()
    await expect(dash.page.locator("#found-by")).to_have_value("channel")
    await shows(dash, channel_finds)
    await dash.page.locator("#clear-filters").click()
    await expect(dash.page.locator("#found-by")).to_have_value("")
    await shows(dash, await api_ids(api, []))
