"""Units over HTTP: 1 per channels/playlistItems/videos call, the pools apart; the call log of /admin/calls."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from services.common.redact import key_fingerprint
from services.youtube_emulator.testing import emulator_client, quiet_settings

Client = TestClient[web.Request, web.Application]

NOW = "2026-11-24T12:00:00Z"


async def status_of(client: Client, method: str, key: str = "k", **params: str) -> int:
    response = await client.get(f"/youtube/v3/{method}", params={"key": key, **params})
    body = await response.json()
    if response.status == 403:
        assert body["error"]["errors"][0] == {
            "message": body["error"]["message"],
            "domain": "youtube.quota",
            "reason": "quotaExceeded",
        }
    return response.status


async def first_playlist(client: Client) -> str:
    world = await (await client.get("/admin/world")).json()
    playlist: str = world["channels"][0]["uploadsPlaylistId"]
    return playlist


async def unit_calls(client: Client, playlist: str, key: str = "k") -> list[int]:
    return [
        await status_of(
            client, "playlistItems", key, part="snippet,contentDetails", playlistId=playlist, maxResults="50"
        ),
        await status_of(client, "channels", key, part="contentDetails", id="UC" + playlist[2:]),
        await status_of(client, "videos", key, part="id", id="AAAAAAAAAAA"),
    ]


async def spend(client: Client) -> dict[str, Any]:
    body: dict[str, Any] = await (await client.get("/admin/spend")).json()
    return body


async def call_log(client: Client, **params: str) -> dict[str, Any]:
    response = await client.get("/admin/calls", params=params)
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def test_each_unit_call_costs_one_unit_whatever_max_results() -> None:
    async with emulator_client(quiet_settings(), now=NOW) as client:
        playlist = await first_playlist(client)
        for size in ("0", "1", "50"):
            assert await status_of(client, "playlistItems", part="id", playlistId=playlist, maxResults=size) == 200
        assert await unit_calls(client, playlist) == [200, 200, 200]
        # even a call refused as a bad request spends its unit, as on YouTube
        assert await status_of(client, "playlistItems", part="id", playlistId="UU" + "Z" * 22) == 404
        project = (await spend(client))["projects"]["k"]
        assert project["playlist_items_calls"] == 5
        assert project["channels_calls"] == 1
        assert project["videos_calls"] == 1
        assert project["units"] == 7
        assert project["units_budget"] == 10_000
        assert project["units_remaining"] == 9_993
        assert project["search_calls"] == 0


async def test_a_spent_unit_pool_parks_unit_calls_only_until_midnight_pacific() -> None:
    settings = quiet_settings(emulator_units_per_day=3, emulator_search_calls_per_day=2)
    async with emulator_client(settings, now=NOW) as client:
        playlist = await first_playlist(client)
        assert await unit_calls(client, playlist) == [200, 200, 200]
        assert await unit_calls(client, playlist) == [403, 403, 403]
        # the search bucket is apart: still there
        assert await status_of(client, "search", part="snippet", q="cricket") == 200
        assert await status_of(client, "search", part="snippet", q="cricket") == 200
        assert await status_of(client, "search", part="snippet", q="cricket") == 429
        # 2026-11-25T08:00:00Z is midnight in Los Angeles: both pools are back
        await client.post("/admin/clock", json={"now": "2026-11-25T08:00:00Z"})
        assert await unit_calls(client, playlist) == [200, 200, 200]
        assert await status_of(client, "search", part="snippet", q="cricket") == 200


async def test_a_spent_search_bucket_leaves_unit_calls_working() -> None:
    async with emulator_client(quiet_settings(emulator_search_calls_per_day=1), now=NOW) as client:
        playlist = await first_playlist(client)
        assert await status_of(client, "search", part="snippet", q="cricket") == 200
        assert await status_of(client, "search", part="snippet", q="cricket") == 429
        assert await unit_calls(client, playlist) == [200, 200, 200]


async def test_unit_budgets_per_project_and_per_key() -> None:
    settings = quiet_settings(
        emulator_key_projects={"a1": "alpha", "a2": "alpha", "b1": "beta"},
        emulator_project_unit_budgets={"alpha": 4},
        emulator_key_unit_budgets={"b1": 2},
    )
    async with emulator_client(settings, now=NOW) as client:
        playlist = await first_playlist(client)
        assert await unit_calls(client, playlist, "a1") == [200, 200, 200]
        # keys of one project share its pool
        assert await unit_calls(client, playlist, "a2") == [200, 403, 403]
        assert await unit_calls(client, playlist, "b1") == [200, 200, 403]
        report = await spend(client)
        assert report["projects"]["alpha"]["units_remaining"] == 0
        assert report["keys"]["b1"]["units_budget"] == 2
        # search is untouched by unit budgets
        assert await status_of(client, "search", "a2", part="snippet", q="cricket") == 200
    # the legacy model charges search 100 units of the same pool
    async with emulator_client(quiet_settings(emulator_quota_model="units", emulator_units_per_day=101), now=NOW) as c:
        assert await status_of(c, "search", part="snippet", q="cricket") == 200
        assert await status_of(c, "playlistItems", part="id", playlistId=await first_playlist(c)) == 200
        assert await status_of(c, "channels", part="id", id="UC" + "Z" * 22) == 403


async def test_the_call_log_names_calls_without_their_keys() -> None:
    secret = "AIzaSyA-the-whole-secret-key-0123456789"
    settings = quiet_settings(emulator_key_projects={secret: "alpha"}, emulator_units_per_day=2)
    async with emulator_client(settings, now=NOW) as client:
        playlist = await first_playlist(client)
        assert await unit_calls(client, playlist, secret) == [200, 200, 403]
        assert await status_of(client, "search", secret, part="snippet", q="cricket", maxResults="3") == 200
        keyless = await client.get("/youtube/v3/search", params={"part": "snippet", "q": "cricket"})
        assert keyless.status == 403
        raw = await (await client.get("/admin/calls")).text()
        assert secret not in raw
        log = await call_log(client)
        assert log["count"] == 5
        assert [c["method"] for c in log["calls"]] == ["playlistItems", "channels", "videos", "search", "search"]
        first = log["calls"][0]
        assert first["key"] == key_fingerprint(secret)
        assert first["project"] == "alpha"
        assert first["params"] == {"part": "snippet,contentDetails", "playlistId": playlist, "maxResults": "50"}
        assert first["status"] == 200 and first["outcome"] == "ok" and first["units"] == 1
        assert first["at"] == "2026-11-24T12:00:00.000000Z"
        refused = log["calls"][2]
        assert (refused["status"], refused["outcome"], refused["units"]) == (403, "quota_exceeded", 0)
        assert log["calls"][3]["units"] == 0 and log["calls"][3]["params"]["q"] == "cricket"
        assert log["calls"][4]["key"] is None and log["calls"][4]["project"] is None
        assert log["by_method"]["playlistItems"] == {"calls": 1, "units": 1, "outcomes": {"ok": 1}}
        assert log["by_method"]["videos"]["outcomes"] == {"quota_exceeded": 1}

        # filters: by method, after a sequence number a poller has seen, since a moment
        only = await call_log(client, method="channels,videos")
        assert [c["method"] for c in only["calls"]] == ["channels", "videos"]
        newer = await call_log(client, after=str(log["calls"][2]["seq"]))
        assert [c["method"] for c in newer["calls"]] == ["search", "search"]
        await client.post("/admin/clock", json={"advance_seconds": 90})
        await status_of(client, "videos", secret, part="id", id="AAAAAAAAAAA")
        recent = await call_log(client, since="2026-11-24T12:01:00Z")
        assert [(c["method"], c["at"]) for c in recent["calls"]] == [("videos", "2026-11-24T12:01:30.000000Z")]
        assert (await call_log(client, project="alpha", limit="2"))["count"] == 2
        bad = await client.get("/admin/calls", params={"method": "playlists"})
        assert bad.status == 400


async def test_the_call_log_keeps_the_newest_calls() -> None:
    async with emulator_client(quiet_settings(emulator_call_log_size=3), now=NOW) as client:
        for n in range(5):
            await status_of(client, "videos", part="id", id=f"AAAAAAAAAA{n}")
        log = await call_log(client)
        assert [c["params"]["id"] for c in log["calls"]] == ["AAAAAAAAAA2", "AAAAAAAAAA3", "AAAAAAAAAA4"]
        assert log["evicted"] == 2
        assert log["last_seq"] == 5


async def test_faults_reach_channel_reads_and_the_log_and_metrics_show_them() -> None:
    async with emulator_client(quiet_settings(emulator_fault_5xx=1.0), now=NOW) as client:
        playlist = await first_playlist(client)
        response = await client.get(
            "/youtube/v3/playlistItems", params={"part": "id", "playlistId": playlist, "key": "k"}
        )
        assert response.status in (500, 503)
        (entry,) = (await call_log(client))["calls"]
        assert (entry["method"], entry["outcome"], entry["units"]) == ("playlistItems", "server_error", 0)
        assert entry["status"] == response.status
        metrics = await (await client.get("/metrics")).text()
        assert 'emulator_api_calls_total{endpoint="playlistItems",outcome="server_error"} 1.0' in metrics
        # a fault before the quota check spends nothing
        assert (await spend(client))["projects"] == {}
