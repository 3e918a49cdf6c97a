"""The Sources page in Chromium: the token typed once, a query added, paused, reweighted and removed, a
channel followed, each after its what-if, by keyboard, the audit log listing each change; no console
error and no CSP violation. Without ADMIN_TOKENS the page says how to turn the admin API on."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from elasticsearch import AsyncElasticsearch
from playwright.async_api import Browser, Page, expect
from pymongo.asynchronous.database import AsyncDatabase

from services.common.settings import StackSettings
from services.common.sources import load_marker, load_sources
from services.common.topology import QueueNames, declare_index_queue
from tests.e2e.dashboard_support import (
    DashboardPage,
    api_settings,
    chromium,
    dashboard_page,
    running_api,
    seed_events,
    seed_fetcher_state,
    write_videos,
)
from tests.waiting import wait_until

TOKEN = "e2e-admin-token-" + "k" * 32
CHANNEL = "UC" + "e" * 22


@pytest.fixture
async def queues(amqp: aio_pika.abc.AbstractRobustConnection, queue_names: QueueNames) -> QueueNames:
    channel = await amqp.channel()
    await declare_index_queue(channel, queue_names)
    await channel.close()
    return queue_names


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as running:
        yield running


async def _stores(mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str) -> None:
    await write_videos(mongo_db, es, es_alias, seed_events(20))
    await seed_fetcher_state(mongo_db)


async def _seeded(mongo_db: AsyncDatabase[dict[str, Any]]) -> None:
    """The API seeds the sources in the background at start: wait for its marker."""

    async def marker() -> bool:
        return await load_marker(mongo_db) is not None

    await wait_until(marker, within=30, what="the API seeding the sources")


async def _confirm(page: Page, scope: Any) -> None:
    """The what-if is shown with its Confirm focused: Enter confirms."""
    box = scope.locator(".what-if")
    await expect(box).to_be_visible()
    await expect(box.locator("li").first).to_be_visible()
    await expect(box.get_by_role("button", name="Confirm")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(box).to_be_hidden()


async def test_the_sources_page_changes_queries_and_channels_by_keyboard(
    stack: StackSettings,
    mongo_db: AsyncDatabase[dict[str, Any]],
    es: AsyncElasticsearch,
    es_alias: str,
    queues: QueueNames,
    tmp_path: Path,
    browser: Browser,
) -> None:
    await _stores(mongo_db, es, es_alias)
    base_settings = api_settings(stack, mongo_db.name, es_alias, queues, tmp_path)
    settings = type(base_settings)(**(base_settings.model_dump() | {"admin_tokens": f"e2e:{TOKEN}"}))
    async with running_api(settings) as base, dashboard_page(browser, base, {}) as dash:
        await _seeded(mongo_db)
        await _run_sources_flow(dash, mongo_db)
        assert TOKEN not in dash.page.url
        assert dash.unexpected_errors() == [], "the page logged errors (a CSP violation is one)"
        assert dash.dialogs == []


async def _run_sources_flow(dash: DashboardPage, mongo_db: AsyncDatabase[dict[str, Any]]) -> None:
    page = dash.page
    await page.goto(f"{dash.base}/")
    await page.get_by_role("link", name="Sources").click()
    await expect(page).to_have_url(re.compile(r"/sources$"))
    token = page.get_by_label("Admin token")
    await expect(token).to_be_focused()
    await page.keyboard.type(TOKEN)
    await page.keyboard.press("Enter")
    queries = page.locator("#queries-table tbody")
    await expect(queries.locator("tr")).not_to_have_count(0)
    assert await page.evaluate("sessionStorage.getItem('tubewatch.adminToken')") == TOKEN

    # Add: type, Enter shows the what-if, Enter confirms.
    await page.get_by_label("New query").focus()
    await page.keyboard.type("world cup")
    await page.keyboard.press("Enter")
    await _confirm(page, page.locator("#add-query"))
    row = queries.locator("tr", has_text="world cup")
    await expect(row).to_have_count(1)

    await row.get_by_role("button", name="Pause…").focus()
    await page.keyboard.press("Enter")
    await _confirm(page, row)
    await expect(queries.locator("tr", has_text="world cup (paused)")).to_have_count(1)

    row = queries.locator("tr", has_text="world cup")
    await row.get_by_label("Weight of world cup").fill("3")
    await row.get_by_role("button", name="Reweight…").focus()
    await page.keyboard.press("Enter")
    await _confirm(page, row)
    await expect(queries.locator("tr", has_text="world cup").get_by_label("Weight of world cup")).to_have_value("3")
    sources = await load_sources(mongo_db)
    assert (sources.by_text["world cup"].paused, sources.by_text["world cup"].weight) == (True, 3)

    row = queries.locator("tr", has_text="world cup")
    await row.get_by_role("button", name="Remove…").focus()
    await page.keyboard.press("Enter")
    await _confirm(page, row)
    await expect(queries.locator("tr", has_text="world cup")).to_have_count(0)

    await page.get_by_label("Channel id").focus()
    await page.keyboard.type(CHANNEL)
    await page.keyboard.press("Enter")
    await _confirm(page, page.locator("#add-channel"))
    await expect(page.locator("#channels-table tbody tr", has_text=CHANNEL)).to_contain_text("followed")
    assert (await load_sources(mongo_db)).explicit_channels == [CHANNEL]

    audit = page.locator("#audit-list li")
    for change in (
        "create channel",
        "delete query “world cup”",
        "update query “world cup”",
        "create query “world cup”",
    ):
        await expect(audit.filter(has_text=f"e2e — {change}").first).to_be_visible()
    await expect(audit.filter(has_text="e2e — update query")).to_have_count(2)


async def test_a_refused_change_is_shown_next_to_its_control(
    stack: StackSettings,
    mongo_db: AsyncDatabase[dict[str, Any]],
    es: AsyncElasticsearch,
    es_alias: str,
    queues: QueueNames,
    tmp_path: Path,
    browser: Browser,
) -> None:
    await _stores(mongo_db, es, es_alias)
    base_settings = api_settings(stack, mongo_db.name, es_alias, queues, tmp_path)
    settings = type(base_settings)(**(base_settings.model_dump() | {"admin_tokens": f"e2e:{TOKEN}"}))
    async with running_api(settings) as base, dashboard_page(browser, base, {}) as dash:
        await _seeded(mongo_db)
        dash.expected_errors.append(re.compile(r"409"))
        page = dash.page
        await page.goto(f"{base}/sources")
        await page.get_by_label("Admin token").fill(TOKEN)
        await page.keyboard.press("Enter")
        existing = (await load_sources(mongo_db)).queries[0].text
        await page.get_by_label("New query").fill(existing)
        await page.keyboard.press("Enter")
        form = page.locator("#add-query")
        await form.get_by_role("button", name="Confirm").click()
        await expect(form.locator(".control-error")).to_contain_text("already followed")
        assert dash.unexpected_errors() == []


async def test_without_admin_tokens_the_page_says_how_to_turn_the_admin_api_on(
    stack: StackSettings,
    mongo_db: AsyncDatabase[dict[str, Any]],
    es: AsyncElasticsearch,
    es_alias: str,
    queues: QueueNames,
    tmp_path: Path,
    browser: Browser,
) -> None:
    await _stores(mongo_db, es, es_alias)
    async with (
        running_api(api_settings(stack, mongo_db.name, es_alias, queues, tmp_path)) as base,
        dashboard_page(browser, base, {}) as dash,
    ):
        await dash.page.goto(f"{base}/sources")
        await expect(dash.page.locator("#sources-disabled")).to_contain_text("set ADMIN_TOKENS")
        await expect(dash.page.get_by_label("Admin token")).to_be_hidden()
        assert dash.unexpected_errors() == []
