"""The emulator's hostile answers: each kind is really broken in the way its name says."""

from __future__ import annotations

import json

import pytest

from services.youtube_emulator.hostile import ABSURD_DATES, HUGE_PAGE_BYTES, REDIRECT_HOST
from services.youtube_emulator.testing import emulator_client, quiet_settings

NOW = "2026-11-24T12:00:00Z"
SEARCH = {"part": "snippet", "q": "cricket", "type": "video", "order": "date", "maxResults": "10", "key": "k"}


async def _answer(kind: str) -> tuple[int, dict[str, str], bytes]:
    settings = quiet_settings(**{f"emulator_hostile_{kind}": 1.0})
    async with emulator_client(settings, now=NOW) as client:
        response = await client.get("/youtube/v3/search", params=SEARCH, allow_redirects=False)
        return response.status, dict(response.headers), await response.read()


async def test_truncated_json_does_not_parse() -> None:
    status, _, body = await _answer("truncated")
    assert status == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)


async def test_a_huge_page_is_over_ten_megabytes_of_valid_json() -> None:
    status, _, body = await _answer("huge_page")
    assert status == 200
    assert len(body) > HUGE_PAGE_BYTES
    assert json.loads(body)["kind"] == "youtube#searchListResponse"


async def test_redirects_point_at_another_host_and_carry_the_key() -> None:
    status, headers, _ = await _answer("redirect")
    assert status == 302
    assert headers["Location"].startswith(f"http://{REDIRECT_HOST}:")
    assert "key=k" in headers["Location"]


async def test_absurd_dates_replace_a_publish_date() -> None:
    _, _, body = await _answer("absurd_dates")
    dates = {item["snippet"]["publishedAt"] for item in json.loads(body)["items"]}
    assert dates & set(ABSURD_DATES)


async def test_wrong_types_and_missing_fields_break_the_page_shape() -> None:
    for kind in ("wrong_types", "missing_fields"):
        settings = quiet_settings(**{f"emulator_hostile_{kind}": 1.0})
        broken = 0
        async with emulator_client(settings, now=NOW) as client:
            for _ in range(12):
                response = await client.get("/youtube/v3/search", params=SEARCH)
                page = await response.json()
                items = page.get("items")
                if not isinstance(items, list) or not isinstance(page.get("nextPageToken", ""), str):
                    broken += 1
                    continue
                for item in items:
                    snippet = item.get("snippet")
                    ident = item.get("id")
                    if (
                        not isinstance(snippet, dict)
                        or not isinstance(ident, dict)
                        or not isinstance(ident.get("videoId"), str)
                        or not isinstance(snippet.get("title"), str)
                        or not isinstance(snippet.get("publishedAt"), str)
                        or not isinstance(snippet.get("channelId"), str)
                        or not isinstance(snippet.get("thumbnails"), dict)
                    ):
                        broken += 1
                        break
        assert broken == 12, kind


async def test_hostility_is_off_by_default_and_switchable_at_run_time() -> None:
    async with emulator_client(quiet_settings(), now=NOW) as client:
        assert (await client.get("/youtube/v3/search", params=SEARCH)).status == 200
        await client.post("/admin/config", json={"hostile_redirect": 1.0})
        response = await client.get("/youtube/v3/search", params=SEARCH, allow_redirects=False)
        assert response.status == 302


async def test_videos_list_is_broken_the_same_ways_without_crashing_the_emulator() -> None:
    """videos.list items carry a bare string id (search.list an object): hostility must handle both."""
    for kind in ("wrong_types", "missing_fields", "absurd_dates"):
        settings = quiet_settings(**{f"emulator_hostile_{kind}": 1.0})
        async with emulator_client(settings, now=NOW) as client:
            visible = await (await client.get("/admin/visible", params={"query": "cricket"})).json()
            ids = ",".join(v["videoId"] for v in visible["videos"][:10])
            assert ids
            for _ in range(16):
                response = await client.get("/youtube/v3/videos", params={"part": "snippet", "id": ids, "key": "k"})
                assert response.status == 200, (kind, await response.text())
                json.loads(await response.read())
