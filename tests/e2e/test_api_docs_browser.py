"""The API viewer (/api/docs) in Chromium, under its own Content-Security-Policy."""

from __future__ import annotations

from typing import Any

import aiohttp
from playwright.async_api import ConsoleMessage

from services.api.openapi import DOCS_CONTENT_SECURITY_POLICY
from services.common.settings import StackSettings
from tests.e2e.dashboard_support import chromium, running_api
from tests.integration.api_support import api_settings


async def test_the_viewer_renders_every_endpoint_and_tries_one_under_its_csp_without_violations(
    stack: StackSettings, unique_name: str
) -> None:
    settings = api_settings(
        mongodb_url=stack.mongodb_url,
        mongodb_database=unique_name.replace("-", "_"),
        elasticsearch_url=stack.elasticsearch_url,
        elasticsearch_index=unique_name,
    )
    async with running_api(settings) as base:
        async with aiohttp.ClientSession() as session, session.get(f"{base}/api/docs") as response:
            assert response.status == 200
            csp = response.headers["Content-Security-Policy"]
        assert csp == DOCS_CONTENT_SECURITY_POLICY
        directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
        assert directives["script-src"] == "'self'"  # no inline script, no eval, no other origin
        assert directives["frame-ancestors"] == "'none'"

        async with chromium() as browser:
            page = await browser.new_page()
            problems: list[str] = []

            def on_console(message: ConsoleMessage) -> None:
                if message.type == "error" or "Content Security Policy" in message.text:
                    problems.append(message.text)

            page.on("console", on_console)
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)
            await page.goto(f"{base}/api/docs")
            # Swagger UI fetched /api/openapi.json and rendered an operation per endpoint.
            operations = page.locator(".opblock-summary-path")
            await operations.filter(has_text="/api/v1/videos/{video_id}").wait_for(timeout=30_000)
            paths: Any = await operations.all_inner_texts()
            # Try the listing from the viewer: expand it, "Try it out", "Execute", see the live answer.
            listing = page.locator(".opblock", has=page.locator(".opblock-summary-path", has_text="/api/v1/videos"))
            await listing.first.locator(".opblock-summary").click()
            await listing.first.locator("button.try-out__btn").click()
            await listing.first.locator("button.execute").click()
            await listing.first.locator(".live-responses-table .response-col_status", has_text="200").wait_for(
                timeout=30_000
            )
            await page.close()
    assert {"/api/v1/videos", "/api/v1/videos/{video_id}", "/api/v1/channels", "/api/v1/status"} <= {
        path.replace("\u200b", "").strip() for path in paths
    }
    assert problems == []
