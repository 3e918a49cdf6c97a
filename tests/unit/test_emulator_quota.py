"""Quota: both models, projects, per-key budgets, counting of invalid calls, reset at midnight PT."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from services.youtube_emulator.quota import next_reset, pacific_day
from services.youtube_emulator.testing import emulator_client, quiet_settings
from services.youtube_emulator.timestamps import format_timestamp, parse_rfc3339

Client = TestClient[web.Request, web.Application]


def ts(text: str) -> float:
    value = parse_rfc3339(text)
    assert value is not None
    return value


async def search(client: Client, key: str, **params: str) -> int:
    query = {"part": "snippet", "q": "cricket", "key": key, **params}
    response = await client.get("/youtube/v3/search", params=query)
    await response.read()
    return response.status


async def videos(client: Client, key: str) -> int:
    response = await client.get("/youtube/v3/videos", params={"part": "snippet", "id": "AAAAAAAAAAA", "key": key})
    await response.read()
    return response.status


async def spend(client: Client) -> dict[str, Any]:
    body: dict[str, Any] = await (await client.get("/admin/spend")).json()
    return body


async def test_search_bucket_model() -> None:
    settings = quiet_settings(emulator_search_calls_per_day=3, emulator_units_per_day=2)
    async with emulator_client(settings, now="2026-11-24T12:00:00Z") as client:
        assert [await search(client, "k") for _ in range(4)] == [200, 200, 200, 429]
        # other methods spend the separate unit pool
        assert [await videos(client, "k") for _ in range(3)] == [200, 200, 403]
        report = await spend(client)
        assert report["quota_model"] == "search_bucket"
        assert report["day"] == "2026-11-24"
        assert report["resets_at"] == "2026-11-25T08:00:00Z"
        assert report["keys"]["k"] == {
            "project": "k",
            "search_calls": 3,
            "videos_calls": 2,
            "channels_calls": 0,
            "playlist_items_calls": 0,
            "units": 2,
            "rejected": 2,
            "budget": None,
            "units_budget": None,
        }
        assert report["projects"]["k"]["budget"] == 3
        assert report["projects"]["k"]["remaining"] == 0


async def test_units_model() -> None:
    settings = quiet_settings(emulator_quota_model="units", emulator_units_per_day=250)
    async with emulator_client(settings, now="2026-11-24T12:00:00Z") as client:
        assert [await search(client, "k") for _ in range(3)] == [200, 200, 403]
        # 50 units are left: videos.list (1 unit) still works, search (100) does not
        assert [await videos(client, "k") for _ in range(51)] == [200] * 50 + [403]
        report = await spend(client)
        assert report["budget_unit"] == "units"
        assert report["projects"]["k"]["units"] == 250
        assert report["projects"]["k"]["remaining"] == 0


async def test_default_budgets() -> None:
    async with emulator_client(quiet_settings(), now="2026-11-24T12:00:00Z") as client:
        statuses = [await search(client, "k") for _ in range(101)]
        assert statuses == [200] * 100 + [429]
        assert await search(client, "other") == 200


async def test_keys_of_one_project_share_its_quota() -> None:
    settings = quiet_settings(
        emulator_search_calls_per_day=4, emulator_key_projects={"k1": "projA", "k2": "projA", "k3": "projB"}
    )
    async with emulator_client(settings, now="2026-11-24T12:00:00Z") as client:
        assert [await search(client, "k1") for _ in range(3)] == [200, 200, 200]
        assert [await search(client, "k2") for _ in range(2)] == [200, 429]
        assert await search(client, "k1") == 429
        assert [await search(client, "k3") for _ in range(4)] == [200] * 4
        report = await spend(client)
        assert report["projects"]["projA"]["search_calls"] == 4
        assert report["keys"]["k2"]["project"] == "projA"
        assert report["keys"]["k2"]["search_calls"] == 1
        assert report["keys"]["k2"]["rejected"] == 1


async def test_per_key_and_per_project_budgets() -> None:
    settings = quiet_settings(
        emulator_key_budgets={"good1": 2, "good2": 100},
        emulator_project_budgets={"projC": 1},
        emulator_key_projects={"c1": "projC"},
    )
    async with emulator_client(settings, now="2026-11-24T12:00:00Z") as client:
        assert [await search(client, "good1") for _ in range(3)] == [200, 200, 429]
        assert [await search(client, "c1") for _ in range(2)] == [200, 429]
        report = await spend(client)
        assert report["keys"]["good1"]["budget"] == 2
        assert report["projects"]["projC"]["budget"] == 1


async def test_invalid_calls_spend_quota_first() -> None:
    settings = quiet_settings(emulator_search_calls_per_day=2)
    async with emulator_client(settings, now="2026-11-24T12:00:00Z") as client:
        assert await search(client, "k", maxResults="51") == 400
        assert await search(client, "k", pageToken="nope!") == 400
        # the budget is gone: the quota error now comes before the validation error
        assert await search(client, "k", maxResults="51") == 429
        assert (await spend(client))["keys"]["k"]["search_calls"] == 2


async def test_rejected_keys_spend_nothing() -> None:
    settings = quiet_settings(emulator_invalid_keys=["bad"])
    async with emulator_client(settings, now="2026-11-24T12:00:00Z") as client:
        assert await search(client, "bad") == 400
        assert await search(client, "") == 403
        assert (await spend(client))["keys"] == {}


async def test_reset_at_midnight_pacific_standard_time() -> None:
    settings = quiet_settings(emulator_search_calls_per_day=1)
    # 23:59:50 PST on Nov 24 is 07:59:50Z
    async with emulator_client(settings, now="2026-11-25T07:59:50Z") as client:
        assert [await search(client, "k") for _ in range(2)] == [200, 429]
        await client.post("/admin/clock", json={"advance_seconds": 9})
        assert await search(client, "k") == 429
        await client.post("/admin/clock", json={"advance_seconds": 1})  # 08:00:00Z = midnight PST
        assert [await search(client, "k") for _ in range(2)] == [200, 429]
        assert (await spend(client))["day"] == "2026-11-25"


async def test_reset_at_midnight_pacific_daylight_time() -> None:
    settings = quiet_settings(emulator_search_calls_per_day=1)
    # in July, midnight in Los Angeles is 07:00Z (UTC-7), not 08:00Z
    async with emulator_client(settings, now="2026-07-15T06:59:59Z") as client:
        assert [await search(client, "k") for _ in range(2)] == [200, 429]
        clock = await (await client.get("/admin/clock")).json()
        assert clock["quota_resets_at"] == "2026-07-15T07:00:00Z"
        await client.post("/admin/clock", json={"now": "2026-07-15T07:00:00Z"})
        assert await search(client, "k") == 200
        await client.post("/admin/clock", json={"now": "2026-07-15T07:59:59Z"})
        assert await search(client, "k") == 429


def test_next_reset_across_dst_changes() -> None:
    # spring forward on 2026-03-08: that day starts at 08:00Z, the next at 07:00Z
    assert format_timestamp(next_reset(ts("2026-03-08T12:00:00Z"))) == "2026-03-09T07:00:00Z"
    assert format_timestamp(next_reset(ts("2026-03-08T07:59:59Z"))) == "2026-03-08T08:00:00Z"
    # fall back on 2026-11-01: that day starts at 07:00Z, the next at 08:00Z
    assert format_timestamp(next_reset(ts("2026-11-01T12:00:00Z"))) == "2026-11-02T08:00:00Z"
    assert str(pacific_day(ts("2026-11-02T07:59:59Z"))) == "2026-11-01"
    assert str(pacific_day(ts("2026-11-02T08:00:00Z"))) == "2026-11-02"


async def test_quota_resets_across_a_dst_change() -> None:
    settings = quiet_settings(emulator_search_calls_per_day=1)
    async with emulator_client(settings, now="2026-03-09T06:59:59Z") as client:
        assert [await search(client, "k") for _ in range(2)] == [200, 429]
        await client.post("/admin/clock", json={"advance_seconds": 1})
        assert await search(client, "k") == 200


async def test_runtime_config_changes_budgets_and_model() -> None:
    async with emulator_client(quiet_settings(), now="2026-11-24T12:00:00Z") as client:
        response = await client.post("/admin/config", json={"key_budgets": {"k": 1}})
        assert response.status == 200
        assert (await response.json())["key_budgets"] == {"k": 1}
        assert [await search(client, "k") for _ in range(2)] == [200, 429]
        await client.post("/admin/config", json={"quota_model": "units", "units_per_day": 150, "key_budgets": {}})
        # the unit pool is fresh: the first search already spent a bucket call, not units
        assert [await search(client, "k") for _ in range(2)] == [200, 403]
        config = await (await client.get("/admin/config")).json()
        assert config["quota_model"] == "units"
        bad = await client.post("/admin/config", json={"quota_model": "free"})
        assert bad.status == 400
        unknown = await client.post("/admin/config", json={"no_such_knob": 1})
        assert unknown.status == 400
