"""The emulated hub's pure parts: topics, Atom bodies, the signature, requests, leases and fault draws."""

from __future__ import annotations

import hashlib
import hmac
import random
import xml.etree.ElementTree as ET

import pytest

from services.youtube_emulator.video import Channel, Times, Video, build_video
from services.youtube_emulator.websub_feed import channel_of_topic, entry_feed, signature, tombstone_feed, topic_url
from services.youtube_emulator.websub_hub import Hub, HubRequestError, parse_request
from services.youtube_emulator.websub_policy import HubPolicy, push_fate, refuses_subscription

CHANNEL = "UC" + "a" * 22
ATOM = "{http://www.w3.org/2005/Atom}"
YT = "{http://www.youtube.com/xml/schemas/2015}"
T0 = 1_764_000_000.0


def a_video(title: str = 'Crease & "Crowd" <today>') -> Video:
    return build_video(
        random.Random(1),
        video_id="dQw4w9WgXcQ",
        query="cricket",
        times=Times(int(T0), int(T0), int(T0)),
        channel=Channel(CHANNEL, "Field & Focus"),
        broadcast=None,
        sort_key=(int(T0), 0, 0),
        title=title,
        description="",
    )


def test_topic_urls_name_their_channel() -> None:
    assert channel_of_topic(topic_url(CHANNEL)) == CHANNEL
    assert channel_of_topic(f"https://www.youtube.com/feeds/videos.xml?channel_id={CHANNEL}") == CHANNEL
    for bad in (
        f"https://example.com/xml/feeds/videos.xml?channel_id={CHANNEL}",
        f"https://www.youtube.com/xml/feeds/videos.xml?channel_id={CHANNEL}&x=1",
        "https://www.youtube.com/xml/feeds/videos.xml?channel_id=UCshort",
        f"ftp://www.youtube.com/xml/feeds/videos.xml?channel_id={CHANNEL}",
    ):
        assert channel_of_topic(bad) is None


def test_the_notification_is_one_entry_with_raw_text_escaped_once() -> None:
    video = a_video()
    body = entry_feed(video, topic_url(CHANNEL), T0 + 0.25)
    feed = ET.fromstring(body)
    assert [link.get("href") for link in feed.findall(f"{ATOM}link[@rel='self']")] == [topic_url(CHANNEL)]
    [entry] = feed.findall(f"{ATOM}entry")
    assert entry.findtext(f"{ATOM}title") == 'Crease & "Crowd" <today>'
    assert entry.findtext(f"{ATOM}author/{ATOM}name") == "Field & Focus"
    assert entry.findtext(f"{YT}videoId") == "dQw4w9WgXcQ"
    assert entry.findtext(f"{ATOM}published") == "2025-11-24T16:00:00+00:00"
    assert entry.findtext(f"{ATOM}updated") == "2025-11-24T16:00:00.250000+00:00"
    assert b"media:group" not in body


def test_a_tombstone_names_the_video_and_no_channel_id() -> None:
    body = tombstone_feed("dQw4w9WgXcQ", Channel(CHANNEL, "Field & Focus"), T0)
    [deleted] = list(ET.fromstring(body))
    assert deleted.tag == "{http://purl.org/atompub/tombstones/1.0}deleted-entry"
    assert deleted.get("ref") == "yt:video:dQw4w9WgXcQ"
    assert b"yt:channelId" not in body


def test_the_signature_is_hmac_sha1_of_the_raw_body() -> None:
    body = b"<feed/>"
    assert signature("k", body) == "sha1=" + hmac.new(b"k", body, hashlib.sha1).hexdigest()


def test_requests_are_checked_and_leases_capped() -> None:
    policy = HubPolicy(max_lease_seconds=1000, default_lease_seconds=500)
    form = {"hub.mode": "SUBSCRIBE", "hub.callback": "http://127.0.0.1:1/cb", "hub.topic": topic_url(CHANNEL)}
    assert parse_request(form, [], policy).lease_seconds == 500
    assert parse_request({**form, "hub.lease_seconds": "5000"}, ["async"], policy).lease_seconds == 1000
    assert repr(parse_request({**form, "hub.secret": "hidden"}, [], policy)).count("hidden") == 0
    for change, reason in (
        ({"hub.lease_seconds": "-1"}, "Invalid value for hub.lease_seconds: -1"),
        ({"hub.lease_seconds": "0"}, "Invalid value for hub.lease_seconds: 0"),
        ({"hub.callback": "http://x/cb#frag"}, "Invalid parameter: hub.callback"),
        ({"hub.secret": "x" * 200}, "Invalid value for hub.secret: it must be shorter than 200 bytes"),
    ):
        with pytest.raises(HubRequestError) as caught:
            parse_request({**form, **change}, [], policy)
        assert (caught.value.status, caught.value.reason) == (400, reason)


def test_a_lease_runs_from_verification_and_a_failed_renewal_keeps_it() -> None:
    hub = Hub(HubPolicy(), seed=1)
    form = {"hub.mode": "subscribe", "hub.callback": "http://h/cb", "hub.topic": topic_url(CHANNEL)}
    req = parse_request({**form, "hub.lease_seconds": "60"}, [], hub.policy)
    assert hub.request(req, T0, ready_at=0) == 202
    [sub] = hub.subscriptions()
    assert sub.state(T0) == "pending"
    hub.verified(hub.ready_intents(0)[0], True, T0 + 0.5)
    assert sub.state(T0 + 59) == "active" and sub.state(T0 + 60) == "expired"
    hub.request(req, T0 + 30, ready_at=0)
    hub.verified(hub.ready_intents(0)[0], False, T0 + 30)
    assert sub.expires_at == T0 + 60 and sub.failed_verifications == 1


def test_fault_draws_are_deterministic_and_near_their_rates() -> None:
    policy = HubPolicy(lost_fraction=0.05, duplicate_fraction=0.1, delay_min_seconds=1, delay_max_seconds=20)
    fates = [push_fate(policy, 7, CHANNEL, "sub", f"video{i}", "upload", 1) for i in range(4000)]
    assert fates == [push_fate(policy, 7, CHANNEL, "sub", f"video{i}", "upload", 1) for i in range(4000)]
    lost = sum(f.lost for f in fates) / len(fates)
    twice = sum(len(f.delays) == 2 for f in fates) / len(fates)
    assert 0.04 < lost < 0.06 and 0.08 < twice < 0.12
    delays = [d for f in fates for d in f.delays]
    assert min(delays) >= 1 and max(delays) <= 20 and 9 < sum(delays) / len(delays) < 12
    every = HubPolicy(lose_all_channels=[CHANNEL], lost_fraction=0.0)
    assert all(push_fate(every, 7, CHANNEL, "s", f"v{i}").lost for i in range(50))
    refusing = HubPolicy(subscribe_503_fraction=1.0)
    assert all(refuses_subscription(refusing, 7, "cb", "t", attempt) for attempt in range(20))
    assert not any(refuses_subscription(HubPolicy(), 7, "cb", "t", attempt) for attempt in range(20))
