"""Fault knobs (rate limits, 5xx, slow, dropped connections) and the paging quirks."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from services.youtube_emulator.testing import emulator_client, quiet_settings

Client = TestClient[web.Request, web.Application]

NOW = "2026-11-24T12:00:00Z"


async def search_status(client: Client, **params: str) -> int:
    query = {"part": "snippet", "q": "cricket", "key": "k", **params}
    response = await client.get("/youtube/v3/search", params=query)
    await response.read()
    return response.status


async def search(client: Client, **params: Any) -> dict[str, Any]:
    query = {"part": "snippet", "q": "cricket", "key": "k", "order": "date", **params}
    response = await client.get("/youtube/v3/search", params={k: str(v) for k, v in query.items()})
    assert response.status == 200
    body: dict[str, Any] = await response.json()
    return body


async def test_faults_spare_admin_and_service_routes() -> None:
    settings = quiet_settings(
        emulator_fault_drop=1.0, emulator_fault_5xx=1.0, emulator_fault_rate_limit=1.0, emulator_fault_slow=1.0
    )
    async with emulator_client(settings, now=NOW) as client:
        for path in ("/healthz", "/readyz", "/metrics", "/admin/clock", "/admin/spend", "/admin/visible"):
            assert (await client.get(path)).status == 200


async def test_dropped_connection() -> None:
    async with emulator_client(quiet_settings(emulator_fault_drop=1.0), now=NOW) as client:
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await client.get("/youtube/v3/search", params={"part": "snippet", "q": "cricket", "key": "k"})
        metrics = await (await client.get("/metrics")).text()
        assert 'emulator_api_calls_total{endpoint="search",outcome="dropped"} 1.0' in metrics
        # a dropped call spends nothing
        assert (await (await client.get("/admin/spend")).json())["keys"] == {}


async def test_slow_response() -> None:
    settings = quiet_settings(emulator_fault_slow=1.0, emulator_slow_seconds=0.3)
    async with emulator_client(settings, now=NOW) as client:
        started = time.monotonic()
        assert await search_status(client) == 200
        assert time.monotonic() - started >= 0.3
        await client.post("/admin/config", json={"fault_slow": 0.0})
        started = time.monotonic()
        assert await search_status(client) == 200
        assert time.monotonic() - started < 0.3


async def test_faults_spend_no_quota() -> None:
    settings = quiet_settings(emulator_fault_5xx=1.0)
    async with emulator_client(settings, now=NOW) as client:
        assert await search_status(client) in (500, 503)
        assert (await (await client.get("/admin/spend")).json())["keys"] == {}


async def test_fault_rates_are_seeded_and_mixed() -> None:
    settings = quiet_settings(emulator_fault_5xx=0.3, emulator_fault_rate_limit=0.3)

    async def run() -> list[int]:
        async with emulator_client(settings, now=NOW) as client:
            return [await search_status(client) for _ in range(40)]

    first, second = await run(), await run()
    assert first == second
    assert {200, 429, 403} <= set(first)
    assert {500, 503} & set(first)


async def test_faults_set_at_runtime() -> None:
    async with emulator_client(quiet_settings(), now=NOW) as client:
        assert await search_status(client) == 200
        await client.post("/admin/config", json={"fault_5xx": 1.0})
        assert await search_status(client) in (500, 503)
        await client.post("/admin/reset", json={"now": NOW, "frozen": True})
        assert await search_status(client) == 200


async def test_duplicate_quirk_repeats_the_previous_last_item() -> None:
    async with emulator_client(quiet_settings(emulator_duplicate_rate=1.0), now=NOW) as client:
        first = await search(client, maxResults=10)
        second = await search(client, maxResults=10, pageToken=first["nextPageToken"])
        assert second["items"][0] == first["items"][-1]
        third = await search(client, maxResults=10, pageToken=second["nextPageToken"])
        # nothing is skipped: the walk still sees every video
        ids = [i["id"]["videoId"] for page in (first, second, third) for i in page["items"]]
        assert len(set(ids)) == 28
        truth = await (await client.get("/admin/visible", params={"query": "cricket"})).json()
        assert list(dict.fromkeys(ids)) == [v["videoId"] for v in truth["videos"][:28]]


async def test_empty_last_page_still_carries_a_token() -> None:
    async with emulator_client(quiet_settings(emulator_empty_last_page_rate=1.0), now=NOW) as client:
        window = {"maxResults": 50, "publishedAfter": "2026-11-24T11:58:00Z"}
        last = await search(client, **window)
        assert 0 < len(last["items"]) < 50
        assert "nextPageToken" in last
        empty = await search(client, **window, pageToken=last["nextPageToken"])
        assert empty["items"] == []
        assert "nextPageToken" in empty
        final = await search(client, **window, pageToken=empty["nextPageToken"])
        assert final["items"] == []
        assert "nextPageToken" not in final
        # an empty result is never given a token
        nothing = await search(client, publishedBefore="2026-11-24T10:00:00Z")
        assert "nextPageToken" not in nothing


async def test_late_fraction_marks_a_few_videos_late() -> None:
    settings = quiet_settings(emulator_late_fraction=0.05, emulator_late_max_seconds=600)
    async with emulator_client(settings, now=NOW) as client:
        truth = await (await client.get("/admin/visible", params={"query": "cricket"})).json()
        late = [v for v in truth["videos"] if v["visibleAt"] != v["publishedAt"]]
        assert 0 < len(late) < 40
