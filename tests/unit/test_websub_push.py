"""A push's body and signature as the fetcher reads them: what it names, and the hostile bodies it refuses."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

import pytest

from services.fetcher.settings import Settings
from services.fetcher.websub_push import PushRefusedError, is_atom, parse_push, signature_matches
from services.fetcher.websub_subscriptions import BACKOFF_MAX_SECONDS, backoff_seconds

CHANNEL = "UCfollowedChannelAAAAAAA"
OTHER = "UCsomeoneElsesChannelBBB"
SECRET = "per-subscription-secret"


def entry(video_id: str, channel_id: str = CHANNEL) -> bytes:
    return f"""<?xml version='1.0' encoding='UTF-8'?>
<feed xmlns:yt="http://www.youtube.com/xml/schemas/2015" xmlns="http://www.w3.org/2005/Atom">
  <title>YouTube video feed</title>
  <entry>
    <id>yt:video:{video_id}</id>
    <yt:videoId>{video_id}</yt:videoId>
    <yt:channelId>{channel_id}</yt:channelId>
    <title>an upload</title>
    <published>2026-11-24T18:00:00+00:00</published>
    <updated>2026-11-24T18:00:01.123456+00:00</updated>
  </entry>
</feed>""".encode()


def tombstone(video_id: str = "deleted0001", channel_id: str = CHANNEL) -> bytes:
    """A deletion as YouTube's hub pushes it: the channel only in ``at:by``."""
    return f"""<?xml version='1.0' encoding='UTF-8'?>
<feed xmlns:at="http://purl.org/atompub/tombstones/1.0" xmlns="http://www.w3.org/2005/Atom">
  <at:deleted-entry ref="yt:video:{video_id}" when="2026-11-24T18:05:00.000000+00:00">
    <link href="https://www.youtube.com/watch?v={video_id}"/>
    <at:by><name>The Followed Channel</name><uri>https://www.youtube.com/channel/{channel_id}</uri></at:by>
  </at:deleted-entry>
</feed>""".encode()


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<feed xmlns="http://www.w3.org/2005/Atom"><title>&lol4;</title></feed>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE feed [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:yt="http://www.youtube.com/xml/schemas/2015">
  <entry><yt:videoId>&secret;</yt:videoId><yt:channelId>UCfollowedChannelAAAAAAA</yt:channelId></entry>
</feed>"""


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def test_an_upload_entry_names_its_video_for_its_channel() -> None:
    content = parse_push(entry("newUpload01"), CHANNEL)
    assert content.video_ids == ["newUpload01"]
    assert content.tombstones == []


def test_an_entry_of_another_channel_is_not_taken_for_the_subscriptions() -> None:
    content = parse_push(entry("newUpload01", OTHER), CHANNEL)
    assert content.video_ids == []
    assert content.other_channels == 1


def test_a_tombstone_names_the_deleted_video_and_when() -> None:
    content = parse_push(tombstone(), CHANNEL)
    assert content.video_ids == []
    [deleted] = content.tombstones
    assert deleted.video_id == "deleted0001"
    assert deleted.when == datetime(2026, 11, 24, 18, 5, tzinfo=UTC)


def test_a_tombstone_by_another_channel_is_not_taken_for_the_subscriptions() -> None:
    content = parse_push(tombstone(channel_id=OTHER), CHANNEL)
    assert content.tombstones == []
    assert content.other_channels == 1


def test_a_tombstone_naming_no_channel_is_taken_for_the_subscriptions() -> None:
    body = tombstone().replace(b"<uri>https://www.youtube.com/channel/UCfollowedChannelAAAAAAA</uri>", b"")
    assert [t.video_id for t in parse_push(body, CHANNEL).tombstones] == ["deleted0001"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<feed><entry>", "malformed_xml"),
        (b"not xml at all", "malformed_xml"),
        (b"<rss><channel/></rss>", "malformed_xml"),
        (BILLION_LAUGHS, "forbidden_xml"),
        (EXTERNAL_ENTITY, "forbidden_xml"),
    ],
    ids=["truncated", "text", "not-atom", "entity-bomb", "external-entity"],
)
def test_hostile_or_broken_bodies_are_refused_with_their_reason(body: bytes, reason: str) -> None:
    with pytest.raises(PushRefusedError) as refused:
        parse_push(body, CHANNEL)
    assert refused.value.reason == reason


def test_the_signature_is_the_hmac_sha1_of_the_raw_body_under_the_subscriptions_secret() -> None:
    body = entry("newUpload01")
    assert signature_matches(SECRET, body, sign(body))
    assert signature_matches(SECRET, body, sign(body).upper().replace("SHA1=", "sha1="))
    assert not signature_matches(SECRET, body, sign(body, "another subscription's secret"))
    assert not signature_matches(SECRET, body + b" ", sign(body))
    assert not signature_matches(SECRET, body, None)
    assert not signature_matches(SECRET, body, "sha256=" + sign(body)[5:])
    assert not signature_matches(SECRET, body, "sha1=")


def test_atom_content_types() -> None:
    assert is_atom("application/atom+xml")
    assert is_atom("application/atom+xml; charset=UTF-8")
    assert not is_atom("application/json")
    assert not is_atom("")


def test_backoff_doubles_from_a_minute_to_an_hour_and_respects_retry_after() -> None:
    assert 48 <= backoff_seconds(1) <= 60
    assert 96 <= backoff_seconds(2) <= 120
    assert backoff_seconds(30) <= BACKOFF_MAX_SECONDS
    assert backoff_seconds(1, retry_after=120) >= 120
    assert backoff_seconds(1, retry_after=10**9) == BACKOFF_MAX_SECONDS


@pytest.mark.parametrize(
    "url",
    ["https://tubewatch.example.org", "https://tubewatch.example.org/push/", "http://127.0.0.1:8081", "http://[::1]:1"],
)
def test_a_callback_base_is_https_or_loopback_http(url: str) -> None:
    settings = Settings(websub_callback_url=url)
    assert settings.websub_callback_url == url.rstrip("/")


@pytest.mark.parametrize(
    "url", ["http://tubewatch.example.org", "ftp://127.0.0.1", "https://", "https://example.org/?a=b", "tubewatch"]
)
def test_a_callback_base_that_is_not_https_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="websub_callback_url"):
        Settings(websub_callback_url=url)


def test_push_is_off_unless_a_callback_url_is_set() -> None:
    assert Settings(websub_callback_url="").websub_callback_url is None
    assert Settings().websub_callback_url is None
