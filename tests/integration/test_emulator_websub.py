"""The emulated WebSub hub over HTTP, with a real callback server: subscribe, verify, pushes, faults."""

from __future__ import annotations

import hashlib
import hmac
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from services.youtube_emulator.testing import emulator_client, quiet_settings
from services.youtube_emulator.websub_feed import topic_url
from tests.waiting import wait_until

Client = TestClient[web.Request, web.Application]

NOW = "2026-11-24T12:00:00Z"
ATOM = "{http://www.w3.org/2005/Atom}"
YT = "{http://www.youtube.com/xml/schemas/2015}"
TOMBSTONE = "{http://purl.org/atompub/tombstones/1.0}"
SECRET = "s3cret-of-this-subscription"


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    def entry(self) -> ET.Element:
        found = ET.fromstring(self.body).find(f"{ATOM}entry")
        assert found is not None, self.body
        return found

    @property
    def video_id(self) -> str:
        return self.entry().findtext(f"{YT}videoId") or ""


@dataclass
class Subscriber:
    """A callback server: answers verifications with the challenge (unless told not to), records pushes."""

    url: str = ""
    verifications: list[dict[str, str]] = field(default_factory=list)
    pushes: list[Received] = field(default_factory=list)
    echo_challenge: bool = True
    push_status: int = 204

    async def verify(self, request: web.Request) -> web.Response:
        self.verifications.append(dict(request.query))
        if not self.echo_challenge:
            return web.Response(text="no")
        return web.Response(text=request.query["hub.challenge"])

    async def receive(self, request: web.Request) -> web.Response:
        self.pushes.append(Received(dict(request.headers), await request.read()))
        return web.Response(status=self.push_status)


@pytest.fixture
async def subscriber() -> AsyncIterator[Subscriber]:
    sub = Subscriber()
    app = web.Application()
    app.router.add_get("/websub/youtube/{sub}", sub.verify)
    app.router.add_post("/websub/youtube/{sub}", sub.receive)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    sub.url = str(server.make_url("/websub/youtube/one"))
    yield sub
    await server.close()


def hub_settings(**overrides: Any) -> Any:
    quiet = {
        "emulator_channels": 5,
        "emulator_websub_lost_fraction": 0.0,
        "emulator_websub_delay_min_seconds": 5.0,
        "emulator_websub_delay_max_seconds": 5.0,
        "emulator_websub_verify_delay_seconds": 0.0,
    }
    return quiet_settings(**{**quiet, **overrides})


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    async with emulator_client(hub_settings(), now=NOW) as c:
        yield c


async def channels(client: Client) -> list[str]:
    return [c["channelId"] for c in (await (await client.get("/admin/world")).json())["channels"]]


async def subscribe(client: Client, callback: str, channel_id: str, **extra: str) -> tuple[int, str]:
    form = {"hub.mode": "subscribe", "hub.callback": callback, "hub.topic": topic_url(channel_id), **extra}
    response = await client.post("/subscribe", data=form)
    return response.status, await response.text()


async def flush(client: Client) -> dict[str, Any]:
    body: dict[str, Any] = await (await client.post("/admin/websub/flush")).json()
    return body


async def advance(client: Client, seconds: float) -> None:
    await client.post("/admin/clock", json={"advance_seconds": seconds})
    await flush(client)


async def inject(client: Client, channel_id: str, title: str = "a new upload") -> str:
    response = await client.post("/admin/videos", json={"title": title, "channel_id": channel_id})
    assert response.status == 201
    video_id: str = (await response.json())["videoId"]
    return video_id


async def subscription(client: Client, index: int = 0) -> dict[str, Any]:
    listed: dict[str, Any] = (await (await client.get("/admin/websub")).json())["subscriptions"][index]
    return listed


async def test_subscribe_verify_then_a_signed_push_of_each_upload(client: Client, subscriber: Subscriber) -> None:
    channel = (await channels(client))[0]
    status, text = await subscribe(
        client, subscriber.url, channel, **{"hub.secret": SECRET, "hub.lease_seconds": "9999999", "hub.verify": "async"}
    )
    assert (status, text) == (202, "")
    await flush(client)
    [check] = subscriber.verifications
    assert check["hub.mode"] == "subscribe"
    assert check["hub.topic"] == topic_url(channel)
    assert check["hub.lease_seconds"] == "864000"  # capped at the maximum lease
    assert len(check["hub.challenge"]) >= 20
    listed = await subscription(client)
    assert listed["state"] == "active" and listed["has_secret"] is True
    assert listed["expires_at"] == "2026-12-04T12:00:00.000000Z"
    assert SECRET not in str(await (await client.get("/admin/websub")).json())

    video_id = await inject(client, channel, "Cricket & more <live>")
    await advance(client, 4)
    assert subscriber.pushes == []  # due 5 s after the upload
    await advance(client, 1)
    [push] = subscriber.pushes
    assert push.headers["Content-Type"] == "application/atom+xml"
    expected = "sha1=" + hmac.new(SECRET.encode(), push.body, hashlib.sha1).hexdigest()
    assert push.headers["X-Hub-Signature"] == expected
    feed = ET.fromstring(push.body)
    assert [e.tag for e in feed] == [f"{ATOM}link", f"{ATOM}link", f"{ATOM}title", f"{ATOM}updated", f"{ATOM}entry"]
    entry = push.entry()
    assert [e.tag for e in entry] == [
        f"{ATOM}id",
        f"{YT}videoId",
        f"{YT}channelId",
        f"{ATOM}title",
        f"{ATOM}link",
        f"{ATOM}author",
        f"{ATOM}published",
        f"{ATOM}updated",
    ]
    assert entry.findtext(f"{ATOM}id") == f"yt:video:{video_id}"
    assert entry.findtext(f"{YT}channelId") == channel
    assert entry.findtext(f"{ATOM}title") == "Cricket & more <live>"
    assert entry.findtext(f"{ATOM}published") == "2026-11-24T12:00:00+00:00"
    log = await (await client.get("/admin/calls", params={"method": "websub.subscribe,websub.push"})).json()
    assert [c["method"] for c in log["calls"]] == ["websub.subscribe", "websub.push"]
    assert "hub.secret" not in log["calls"][0]["params"]
    assert SECRET not in str(log)


async def test_the_world_s_own_uploads_of_a_channel_are_pushed_as_the_clock_passes_them(
    client: Client, subscriber: Subscriber
) -> None:
    channel = (await channels(client))[0]
    await subscribe(client, subscriber.url, channel)
    await flush(client)
    await advance(client, 600)
    uploads = await (await client.get("/admin/uploads", params={"channel_id": channel})).json()
    expected = {v["videoId"] for v in uploads["videos"] if v["publishedAt"] > "2026-11-24T12:00:00Z"}
    assert expected  # the top channel uploads ~2 of the 6 videos a minute
    assert {p.video_id for p in subscriber.pushes} == expected
    assert "X-Hub-Signature" not in subscriber.pushes[0].headers  # no secret, no signature


async def test_pushes_arrive_on_a_running_clock_without_any_flush(subscriber: Subscriber) -> None:
    settings = hub_settings(emulator_websub_delay_min_seconds=0.2, emulator_websub_delay_max_seconds=0.2)
    async with emulator_client(settings, now=NOW, frozen=False) as client:
        channel = (await channels(client))[1]
        await subscribe(client, subscriber.url, channel)
        await wait_until(lambda: _state_is(client, "active"), within=10, what="the verification")
        video_id = await inject(client, channel)

        async def pushed() -> bool:
            return video_id in {p.video_id for p in subscriber.pushes}

        await wait_until(pushed, within=10, what="the push")


async def _state_is(client: Client, state: str) -> bool:
    return bool((await subscription(client))["state"] == state)


async def test_bad_requests_are_400_with_a_reason(client: Client, subscriber: Subscriber) -> None:
    channel = (await channels(client))[0]
    good = {"hub.mode": "subscribe", "hub.callback": subscriber.url, "hub.topic": topic_url(channel)}
    cases = [
        ({"hub.mode": "publish"}, "Invalid value for hub.mode: publish"),
        ({"hub.callback": "ftp://example.com/x"}, "Invalid parameter: hub.callback"),
        ({"hub.topic": "https://example.com/feed"}, "Invalid parameter: hub.topic"),
        ({"hub.lease_seconds": "ten"}, "Invalid value for hub.lease_seconds: ten"),
        ({"hub.verify": "never"}, "Invalid values for hub.verify: ['never']"),
        ({"hub.topic": topic_url("UC" + "Z" * 22)}, "Invalid parameter: hub.topic (no such channel)"),
    ]
    for change, reason in cases:
        response = await client.post("/subscribe", data={**good, **change})
        assert (response.status, await response.text()) == (400, reason)
        assert response.headers["Content-Type"].startswith("text/plain")
    # the other path of the hub, and unsubscribing what is not subscribed: 204, nothing to verify
    response = await client.post("/websub/hub", data={**good, "hub.mode": "unsubscribe"})
    assert response.status == 204
    await flush(client)
    assert subscriber.verifications == []


async def test_a_callback_that_does_not_echo_the_challenge_gets_no_subscription(
    client: Client, subscriber: Subscriber
) -> None:
    subscriber.echo_challenge = False
    channel = (await channels(client))[0]
    await subscribe(client, subscriber.url, channel)
    await flush(client)
    assert (await subscription(client))["state"] == "unverified"
    await inject(client, channel)
    await advance(client, 30)
    assert subscriber.pushes == []


async def test_unsubscribe_stops_pushes(client: Client, subscriber: Subscriber) -> None:
    channel = (await channels(client))[0]
    await subscribe(client, subscriber.url, channel)
    await flush(client)
    form = {"hub.mode": "unsubscribe", "hub.callback": subscriber.url, "hub.topic": topic_url(channel)}
    assert (await client.post("/subscribe", data=form)).status == 202
    await flush(client)
    assert subscriber.verifications[-1]["hub.mode"] == "unsubscribe"
    assert "hub.lease_seconds" not in subscriber.verifications[-1]
    assert (await subscription(client))["state"] == "unsubscribed"
    await inject(client, channel)
    await advance(client, 30)
    assert subscriber.pushes == []


async def test_an_expired_lease_gets_no_pushes_and_a_renewal_restores_them(
    client: Client, subscriber: Subscriber
) -> None:
    channel = (await channels(client))[0]
    await subscribe(client, subscriber.url, channel, **{"hub.lease_seconds": "60"})
    await flush(client)
    await advance(client, 61)
    listed = await subscription(client)
    assert listed["state"] == "expired"
    before = len(subscriber.pushes)
    await inject(client, channel)
    await advance(client, 30)
    assert len(subscriber.pushes) == before
    await subscribe(client, subscriber.url, channel, **{"hub.lease_seconds": "600"})
    await flush(client)
    assert (await subscription(client))["state"] == "active"
    video_id = await inject(client, channel)
    await advance(client, 5)
    assert video_id in {p.video_id for p in subscriber.pushes}


async def test_a_hub_answering_503_then_recovering(client: Client, subscriber: Subscriber) -> None:
    channel = (await channels(client))[0]
    await client.post("/admin/websub/config", json={"subscribe_503_fraction": 1.0})
    for _ in range(3):
        response = await client.post(
            "/subscribe",
            data={"hub.mode": "subscribe", "hub.callback": subscriber.url, "hub.topic": topic_url(channel)},
        )
        assert response.status == 503
        assert "Transient error" in await response.text()
        assert response.headers["Retry-After"] == "120"
    await flush(client)
    assert subscriber.verifications == []
    await client.post("/admin/websub/config", json={"subscribe_503_fraction": 0.0})
    assert (await subscribe(client, subscriber.url, channel))[0] == 202
    await flush(client)
    assert (await subscription(client))["state"] == "active"
    log = await (await client.get("/admin/calls", params={"method": "websub.subscribe"})).json()
    assert [c["status"] for c in log["calls"]] == [503, 503, 503, 202]


async def test_losing_every_push_of_one_channel(client: Client, subscriber: Subscriber) -> None:
    lost, kept = (await channels(client))[:2]
    await client.post("/admin/websub/config", json={"lose_all_channels": [lost]})
    await subscribe(client, subscriber.url, lost)
    await subscribe(client, subscriber.url, kept)
    await flush(client)
    lost_video = await inject(client, lost)
    kept_video = await inject(client, kept)
    await advance(client, 5)
    # the world's own uploads of the kept channel are pushed as well; none of the lost one's
    pushed = {p.video_id for p in subscriber.pushes}
    assert kept_video in pushed and lost_video not in pushed
    assert {p.entry().findtext(f"{YT}channelId") for p in subscriber.pushes} == {kept}
    listed = {s["channel_id"]: s for s in (await (await client.get("/admin/websub")).json())["subscriptions"]}
    assert listed[lost]["pushes"]["lost"] >= 1 and listed[lost]["pushes"]["sent"] == 0
    assert listed[kept]["pushes"]["sent"] == len(subscriber.pushes)


async def test_duplicate_pushes(client: Client, subscriber: Subscriber) -> None:
    channel = (await channels(client))[0]
    await client.post("/admin/websub/config", json={"duplicate_fraction": 1.0, "delay_max_seconds": 20})
    await subscribe(client, subscriber.url, channel)
    await flush(client)
    video_id = await inject(client, channel)
    await advance(client, 20)
    assert [p.video_id for p in subscriber.pushes if p.video_id == video_id] == [video_id, video_id]


async def test_a_failed_delivery_is_tried_again_later(client: Client, subscriber: Subscriber) -> None:
    channel = (await channels(client))[0]
    await subscribe(client, subscriber.url, channel)
    await flush(client)
    subscriber.push_status = 500
    video_id = await inject(client, channel)
    await advance(client, 5)
    assert [p.video_id for p in subscriber.pushes] == [video_id]
    subscriber.push_status = 200
    await advance(client, 30)  # the retry, 30 s after the failure
    assert [p.video_id for p in subscriber.pushes if p.video_id == video_id] == [video_id, video_id]
    pushes = (await subscription(client))["pushes"]
    assert pushes["retried"] == 1 and pushes["failed"] == 0 and pushes["sent"] == len(subscriber.pushes) - 1


async def test_a_deleted_video_is_pushed_as_a_tombstone_and_vanishes(client: Client, subscriber: Subscriber) -> None:
    channel = (await channels(client))[0]
    await subscribe(client, subscriber.url, channel)
    await flush(client)
    video_id = await inject(client, channel, "soon gone")
    await advance(client, 5)
    response = await client.post(f"/admin/videos/{video_id}/delete")
    assert response.status == 200
    assert (await client.post(f"/admin/videos/{video_id}/delete")).status == 409
    assert (await client.post("/admin/videos/AAAAAAAAAAA/delete")).status == 404
    await advance(client, 5)
    tombstone = subscriber.pushes[-1]
    feed = ET.fromstring(tombstone.body)
    [deleted] = list(feed)
    assert deleted.tag == f"{TOMBSTONE}deleted-entry"
    assert deleted.get("ref") == f"yt:video:{video_id}"
    assert deleted.get("when", "").startswith("2026-11-24T12:00:05")
    assert f"{YT}channelId" not in {e.tag for e in deleted.iter()}
    assert deleted.findtext(f"{TOMBSTONE}by/{ATOM}uri") == f"https://www.youtube.com/channel/{channel}"
    listed = await (await client.get("/youtube/v3/videos", params={"part": "id", "id": video_id, "key": "k"})).json()
    assert listed["items"] == []
    uploads = await (await client.get("/admin/uploads", params={"channel_id": channel})).json()
    assert video_id not in {v["videoId"] for v in uploads["videos"]}
    found = await (await client.get("/admin/visible")).json()
    assert video_id not in {v["videoId"] for v in found["videos"]}


async def test_a_flood_re_pushes_old_uploads(client: Client, subscriber: Subscriber) -> None:
    channel = (await channels(client))[0]
    await subscribe(client, subscriber.url, channel)
    await flush(client)
    response = await client.post("/admin/websub/flood", json={"channel_id": channel, "count": 7})
    assert (await response.json())["queued"] == 7
    await advance(client, 5)
    uploads = await (await client.get("/admin/uploads", params={"channel_id": channel})).json()
    old = {v["videoId"] for v in uploads["videos"] if v["publishedAt"] <= "2026-11-24T12:00:00Z"}
    pushed = [p.video_id for p in subscriber.pushes]
    assert len(pushed) == len(set(pushed)) == 7
    assert set(pushed) <= old


async def test_a_title_change_is_pushed_and_shown_everywhere(client: Client, subscriber: Subscriber) -> None:
    channel = (await channels(client))[0]
    await subscribe(client, subscriber.url, channel)
    await flush(client)
    video_id = await inject(client, channel, "first title")
    await advance(client, 5)
    response = await client.post(f"/admin/videos/{video_id}/update", json={"title": "second title"})
    assert response.status == 200 and (await response.json())["updates_queued"] == 1
    assert (await client.post("/admin/videos/AAAAAAAAAAA/update", json={"title": "x"})).status == 404
    await advance(client, 5)
    titles = [p.entry().findtext(f"{ATOM}title") for p in subscriber.pushes if p.video_id == video_id]
    assert titles == ["first title", "second title"]
    updated = [p for p in subscriber.pushes if p.video_id == video_id][-1].entry()
    assert updated.findtext(f"{ATOM}published") == "2026-11-24T12:00:00+00:00"
    assert (updated.findtext(f"{ATOM}updated") or "").startswith("2026-11-24T12:00:05")
    params = {"part": "snippet", "id": video_id, "key": "k"}
    listed = await (await client.get("/youtube/v3/videos", params=params)).json()
    assert listed["items"][0]["snippet"]["title"] == "second title"
    uploads = await (await client.get("/admin/uploads", params={"channel_id": channel})).json()
    assert {v["videoId"]: v["title"] for v in uploads["videos"]}[video_id] == "second title"
