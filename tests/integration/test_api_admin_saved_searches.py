"""Saved searches through the admin API: made, read without secrets, changed, rotated, removed, audited;
filters and webhook URLs refused naming the field; each saved search's public Atom feed."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import feedparser  # type: ignore[import-untyped]
from elasticsearch import AsyncElasticsearch
from pymongo.asynchronous.database import AsyncDatabase

from services.api.saved_search_models import AdminSavedSearch, AdminSavedSearchList, AdminSavedSearchWithSecret
from services.common.saved_searches import SAVED_SEARCHES_COLLECTION, get_saved_search, signing_secrets
from services.common.settings import StackSettings
from services.common.sources import AUDIT_COLLECTION
from services.common.timefmt import utc_now
from tests.factories import make_event
from tests.integration.admin_support import AUTH, admin_api, json_of
from tests.integration.api_support import prepare_stores, write

ADMIN = "/api/v1/admin/saved-searches"
HOOK = "http://localhost:9/hook"  # allowed by WEBHOOK_ALLOW_HOSTS=localhost; never called by the API


async def test_a_saved_search_is_made_with_its_secret_once_changed_rotated_and_removed_all_audited(
    stack: StackSettings, mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> None:
    await prepare_stores(mongo_db, es, es_alias)
    async with admin_api(stack, mongo_db, es_alias, webhook_allow_hosts="localhost") as api:
        body = {"name": "  Cricket  ", "filters": {"q": "cricket", "published_within": "P7D"}, "webhook": {"url": HOOK}}
        made = AdminSavedSearchWithSecret.model_validate(
            await json_of(await api.post(ADMIN, json=body, headers=AUTH), 201)
        )
        assert made.secret is not None and len(made.secret) >= 40
        assert made.id.startswith("ss_") and len(made.feed_id) == 32
        assert made.name == "Cricket" and made.rev == 1
        assert made.filters.model_dump(mode="json", exclude_none=True) == {
            "q": "cricket",
            "channel_id": [],
            "published_within": "P7D",
        }
        assert made.webhook is not None and (made.webhook.url, made.webhook.paused) == (HOOK, False)
        assert made.webhook.secrets_valid == 1
        assert made.feed_url.endswith(f"/api/v1/feeds/saved/{made.feed_id}.atom")
        first_secret = made.secret

        # Reads never show a secret.
        one = await api.get(f"{ADMIN}/{made.id}", headers=AUTH)
        listed = await api.get(ADMIN, headers=AUTH)
        for response in (one, listed):
            text = await response.text()
            assert response.status == 200 and first_secret not in text and 'secret"' not in text
        assert [s.id for s in AdminSavedSearchList.model_validate_json(await listed.text()).items] == [made.id]

        patched = AdminSavedSearchWithSecret.model_validate(
            await json_of(
                await api.patch(
                    f"{ADMIN}/{made.id}",
                    json={"name": "Chess", "filters": {"q": "chess"}, "webhook": {"paused": True}},
                    headers=AUTH,
                ),
                200,
            )
        )
        assert (patched.name, patched.filters.q, patched.filters.published_within) == ("Chess", "chess", None)
        assert patched.webhook is not None and patched.webhook.paused and patched.secret is None
        assert patched.rev == 2

        rotated = AdminSavedSearchWithSecret.model_validate(
            await json_of(await api.post(f"{ADMIN}/{made.id}/rotate-secret", headers=AUTH), 200)
        )
        assert rotated.secret not in (None, first_secret)
        assert rotated.webhook is not None and rotated.webhook.secrets_valid == 2
        stored = await get_saved_search(mongo_db, made.id)
        assert stored is not None and stored.webhook is not None
        now = utc_now()
        assert signing_secrets(stored, now) == [rotated.secret, first_secret]
        # The old secret signs for 24 hours more, then only the new one does.
        old_expiry = stored.webhook.secrets[1].expires_at
        assert old_expiry is not None and timedelta(hours=23) < old_expiry - now <= timedelta(hours=24)
        assert signing_secrets(stored, now + timedelta(hours=25)) == [rotated.secret]

        removed_webhook = await json_of(
            await api.patch(f"{ADMIN}/{made.id}", json={"webhook": None}, headers=AUTH), 200
        )
        assert removed_webhook["webhook"] is None
        assert (await api.post(f"{ADMIN}/{made.id}/rotate-secret", headers=AUTH)).status == 409
        added = await json_of(await api.patch(f"{ADMIN}/{made.id}", json={"webhook": {"url": HOOK}}, headers=AUTH), 200)
        assert added["secret"] not in (None, first_secret, rotated.secret)

        assert (await api.delete(f"{ADMIN}/{made.id}", headers=AUTH)).status == 204
        gone = await json_of(await api.get(f"{ADMIN}/{made.id}", headers=AUTH), 404)
        assert gone["error"]["parameter"] == "saved_search_id"
        assert await mongo_db[SAVED_SEARCHES_COLLECTION].count_documents({}) == 0

        audit = (await json_of(await api.get("/api/v1/admin/audit", headers=AUTH), 200))["items"]
    mine = [entry for entry in audit if entry["kind"] == "saved_search"]
    assert [entry["action"] for entry in mine] == ["delete", "update", "update", "update", "update", "create"]
    assert {entry["actor"] for entry in mine} == {"alice"}
    assert mine[-1]["after"]["webhook"]["secrets"] == 1
    stored_audit = str(await mongo_db[AUDIT_COLLECTION].find({"kind": "saved_search"}).to_list())
    for secret in (first_secret, rotated.secret, added["secret"]):
        assert secret not in stored_audit


REFUSALS: list[tuple[dict[str, Any], str, str]] = [
    ({"name": "x", "filters": {"published_after": "yesterday"}}, "filters.published_after", "RFC 3339"),
    ({"name": "x", "filters": {"published_after": 1700000000}}, "filters.published_after", "RFC 3339"),
    (
        {"name": "x", "filters": {"published_after": "2026-02-01", "published_before": "2026-01-01"}},
        "filters.published_after",
        "later than",
    ),
    ({"name": "x", "filters": {"matched": "search"}}, "filters.matched", "needs query"),
    ({"name": "x", "filters": {"sort": "relevance"}}, "filters.sort", "unknown field"),
    ({"name": "x", "filters": {"published_within": "P1Y"}}, "filters.published_within", "years"),
    ({"name": " \t", "filters": {}}, "name", "blank"),
    ({"name": "x", "webhook": {"url": "https://127.0.0.1/hook"}}, "webhook.url", "loopback"),
    ({"name": "x", "webhook": {"url": "https://10.1.2.3/hook"}}, "webhook.url", "private"),
    ({"name": "x", "webhook": {"url": "https://169.254.169.254/latest"}}, "webhook.url", "metadata"),
    ({"name": "x", "webhook": {"url": "https://[::1]:8443/hook"}}, "webhook.url", "loopback"),
    ({"name": "x", "webhook": {"url": "https://localhost/hook"}}, "webhook.url", "resolves to"),
    ({"name": "x", "webhook": {"url": "http://93.184.216.34/hook"}}, "webhook.url", "must be https"),
]


async def test_a_refused_saved_search_names_the_field_and_why(
    stack: StackSettings, mongo_db: AsyncDatabase[dict[str, Any]], es_alias: str
) -> None:
    async with admin_api(stack, mongo_db, es_alias) as api:
        for body, parameter, reason in REFUSALS:
            refused = (await json_of(await api.post(ADMIN, json=body, headers=AUTH), 400))["error"]
            assert (refused["code"], refused["parameter"]) == ("invalid_parameter", parameter), body
            assert reason in refused["message"], (body, refused)
    assert await mongo_db[SAVED_SEARCHES_COLLECTION].count_documents({}) == 0


async def test_a_public_webhook_is_saved_and_a_patch_to_a_private_address_is_refused(
    stack: StackSettings, mongo_db: AsyncDatabase[dict[str, Any]], es_alias: str
) -> None:
    async with admin_api(stack, mongo_db, es_alias) as api:
        body = {"name": "public", "webhook": {"url": "https://93.184.216.34/hook"}}
        made = await json_of(await api.post(ADMIN, json=body, headers=AUTH), 201)
        refused = await json_of(
            await api.patch(f"{ADMIN}/{made['id']}", json={"webhook": {"url": "https://10.0.0.8/"}}, headers=AUTH),
            400,
        )
        assert refused["error"]["parameter"] == "webhook.url"
        kept = await json_of(await api.get(f"{ADMIN}/{made['id']}", headers=AUTH), 200)
    assert kept["webhook"]["url"] == "https://93.184.216.34/hook" and kept["rev"] == 1


async def test_a_saved_search_feed_is_the_list_feed_of_its_filters_until_its_id_is_rotated(
    stack: StackSettings, mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> None:
    writer = await prepare_stores(mongo_db, es, es_alias)
    rng = random.Random(20)
    now = utc_now()
    events = [
        make_event(rng, query="cricket", published_at=now - timedelta(minutes=i), fetched_at=now) for i in range(6)
    ]
    events += [
        make_event(rng, query="chess", published_at=now - timedelta(minutes=i), fetched_at=now) for i in range(4)
    ]
    await write(writer, es, es_alias, events)
    async with admin_api(stack, mongo_db, es_alias, api_page_cache_seconds=0) as api:
        made = AdminSavedSearchWithSecret.model_validate(
            await json_of(
                await api.post(ADMIN, json={"name": "Chess <news>", "filters": {"q": "chess"}}, headers=AUTH), 201
            )
        )
        path = f"/api/v1/feeds/saved/{made.feed_id}.atom"
        response = await api.get(path)  # no token: the feed id is the key
        body = await response.read()
        assert response.status == 200, body[:300]
        assert response.headers["Content-Type"] == "application/atom+xml; charset=utf-8"
        assert response.headers["Cache-Control"] == "public, max-age=1"
        parsed = feedparser.parse(body)
        assert not parsed.bozo, parsed.get("bozo_exception")
        listed = await json_of(await api.get("/api/v1/videos", params={"q": "chess", "limit": "50"}), 200)
        assert len(listed["items"]) == 4
        assert [e.id for e in parsed.entries] == [f"yt:video:{item['video_id']}" for item in listed["items"]]
        assert parsed.feed.title.startswith("tubewatch: Chess <news> (")
        assert parsed.feed.id == f"tag:tubewatch,2026:feeds/saved/{made.id}"
        assert {link.rel: link.href for link in parsed.feed.links}["self"].endswith(path)
        again = await api.get(path, headers={"If-None-Match": response.headers["ETag"]})
        assert again.status == 304

        rotated = AdminSavedSearch.model_validate(
            await json_of(await api.post(f"{ADMIN}/{made.id}/rotate-feed", headers=AUTH), 200)
        )
        assert rotated.feed_id != made.feed_id
        old = await json_of(await api.get(path), 404)
        assert old["error"]["code"] == "not_found" and old["error"]["parameter"] == "feed_id"
        new = await api.get(f"/api/v1/feeds/saved/{rotated.feed_id}.atom")
        assert new.status == 200
        assert [e.id for e in feedparser.parse(await new.read()).entries] == [e.id for e in parsed.entries]
        assert (await api.get(f"/api/v1/feeds/saved/{'x' * 32}.atom")).status == 404
