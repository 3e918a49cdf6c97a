"""The admin API's channels: followed explicitly, auto-followed with why, paused, pinned, excluded, unfollowed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from elasticsearch import AsyncElasticsearch
from pymongo.asynchronous.database import AsyncDatabase

from services.api.admin_models import AdminChannelList
from services.common.fetcher_state import (
    CHANNEL_STATE_COLLECTION,
    FOLLOWS_COLLECTION,
    AutoFollowDoc,
    ChannelStateDoc,
    FollowsDoc,
)
from services.common.settings import StackSettings
from services.common.sources import load_sources
from services.common.timefmt import utc_now
from tests.integration.admin_support import AUTH, CHANNEL_A, CHANNEL_B, admin_api, json_of
from tests.integration.api_support import prepare_stores

CHANNEL_AUTO = "UC" + "z" * 22


async def _channels(api: Any) -> AdminChannelList:
    return AdminChannelList.model_validate(await json_of(await api.get("/api/v1/admin/channels", headers=AUTH), 200))


async def test_channels_are_seeded_followed_and_unfollowed(
    stack: StackSettings, mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> None:
    await prepare_stores(mongo_db, es, es_alias)
    async with admin_api(stack, mongo_db, es_alias, follow_channels=CHANNEL_A) as api:
        assert [(c.channel_id, c.followed, c.read) for c in (await _channels(api)).items] == [(CHANNEL_A, True, True)]
        created = await json_of(
            await api.post("/api/v1/admin/channels", json={"channel_id": CHANNEL_B}, headers=AUTH), 201
        )
        assert (created["followed"], created["read"], created["auto"]) == (True, True, False)
        again = await json_of(
            await api.post("/api/v1/admin/channels", json={"channel_id": CHANNEL_B}, headers=AUTH), 200
        )
        assert again["followed"] is True
        assert (await load_sources(mongo_db)).explicit_channels == [CHANNEL_A, CHANNEL_B]

        assert (await api.delete(f"/api/v1/admin/channels/{CHANNEL_A}", headers=AUTH)).status == 204
        assert (await load_sources(mongo_db)).explicit_channels == [CHANNEL_B]
        missing = await json_of(await api.delete(f"/api/v1/admin/channels/{CHANNEL_A}", headers=AUTH), 404)
        assert missing["error"]["parameter"] == "channel_id"
        malformed = await json_of(
            await api.post("/api/v1/admin/channels", json={"channel_id": "UCshort"}, headers=AUTH), 400
        )
        assert malformed["error"]["parameter"] == "channel_id"


async def test_an_auto_followed_channel_shows_why_and_can_be_pinned_paused_or_excluded(
    stack: StackSettings, mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> None:
    await prepare_stores(mongo_db, es, es_alias)
    now = utc_now()
    await mongo_db[FOLLOWS_COLLECTION].insert_one(
        FollowsDoc(auto=[AutoFollowDoc(channel_id=CHANNEL_AUTO, rank=1, count=42, since=now)], top_n=20).model_dump(
            by_alias=True
        )
    )
    await mongo_db[CHANNEL_STATE_COLLECTION].insert_one(
        ChannelStateDoc(
            channel_id=CHANNEL_AUTO, last_read_at=now, interval_seconds=120.0, videos_published=7
        ).model_dump(by_alias=True)
    )
    async with admin_api(stack, mongo_db, es_alias) as api:
        [auto] = (await _channels(api)).items
        assert (auto.channel_id, auto.auto, auto.followed, auto.read, auto.rank, auto.count) == (
            CHANNEL_AUTO,
            True,
            False,
            True,
            1,
            42,
        )
        assert auto.videos_published == 7
        assert auto.next_read_at is not None and abs(auto.next_read_at - (now + timedelta(seconds=120))) < timedelta(
            seconds=1
        )

        path = f"/api/v1/admin/channels/{CHANNEL_AUTO}"
        pinned = await json_of(await api.patch(path, json={"pinned": True}, headers=AUTH), 200)
        assert (pinned["pinned"], pinned["read"]) == (True, True)
        assert (await load_sources(mongo_db)).explicit_channels == [CHANNEL_AUTO]
        paused = await json_of(await api.patch(path, json={"paused": True}, headers=AUTH), 200)
        assert (paused["paused"], paused["read"]) == (True, False)
        excluded = await json_of(
            await api.patch(path, json={"excluded": True, "paused": None, "pinned": None}, headers=AUTH), 200
        )
        assert (excluded["excluded"], excluded["auto"], excluded["read"], excluded["paused"]) == (
            True,
            False,
            False,
            False,
        )
        sources = await load_sources(mongo_db)
        assert sources.excluded_channels == {CHANNEL_AUTO}
        assert sources.explicit_channels == []
        refused = await json_of(await api.patch(path, json={"excluded": "yes"}, headers=AUTH), 400)
        assert refused["error"]["parameter"] == "excluded"
