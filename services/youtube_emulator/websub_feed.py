"""What the emulated WebSub hub puts on the wire: topic URLs, Atom bodies and the signature.

Shapes follow ``../shared/reference/youtube-channels.md`` §4: a notification is an Atom feed with
one ``<entry>`` (``yt:videoId``, ``yt:channelId``, ``title``, ``link``, ``author``, ``published``,
``updated``; no ``media:group``) [DOC: YouTube push_notifications guide]; a deletion is a feed
holding one ``<at:deleted-entry ref="yt:video:ID" when="…">`` with a ``link`` and an ``at:by`` naming
the channel, and no ``yt:channelId`` [CODE: SeoulSKY/ytnoti tests]. The signature is
``sha1=<hex HMAC-SHA1(secret, raw body)>`` [DOC: WebSub spec].
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit
from xml.sax.saxutils import escape, quoteattr

from services.youtube_emulator.video import Channel, Video

GOOGLE_HUB = "https://pubsubhubbub.appspot.com"
# The documented topic, and the shorter one some translations of the guide give.
TOPIC_PATHS = ("/xml/feeds/videos.xml", "/feeds/videos.xml")
_TOPIC_HOSTS = ("www.youtube.com", "youtube.com")
_CHANNEL_ID = re.compile(r"^UC[A-Za-z0-9_-]{22}$")


def topic_url(channel_id: str) -> str:
    return f"https://www.youtube.com/xml/feeds/videos.xml?channel_id={channel_id}"


def channel_of_topic(topic: str) -> str | None:
    """The channel id a YouTube topic URL names, or None when it is not such a URL."""
    parts = urlsplit(topic)
    if parts.scheme not in ("http", "https") or parts.hostname not in _TOPIC_HOSTS or parts.fragment:
        return None
    if parts.path not in TOPIC_PATHS:
        return None
    query = parse_qsl(parts.query, keep_blank_values=True)
    if len(query) != 1 or query[0][0] != "channel_id" or not _CHANNEL_ID.match(query[0][1]):
        return None
    return query[0][1]


def signature(secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature`` header value for ``body``."""
    return "sha1=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha1).hexdigest()


def feed_time(epoch: float, *, precise: bool = False) -> str:
    """``2015-03-06T21:40:57+00:00``; ``precise`` adds the microseconds the hub's ``updated`` carries."""
    moment = datetime.fromtimestamp(epoch if precise else int(epoch), tz=UTC)
    return moment.isoformat(timespec="microseconds" if precise else "seconds")


def entry_feed(video: Video, topic: str, updated: float) -> bytes:
    """The notification of an upload (or of a title or description change) of ``video``."""
    channel = video.channel
    vid = video.video_id
    text = f"""<?xml version='1.0' encoding='UTF-8'?>
<feed xmlns:yt="http://www.youtube.com/xml/schemas/2015" xmlns="http://www.w3.org/2005/Atom">
  <link rel="hub" href="{GOOGLE_HUB}"/>
  <link rel="self" href={quoteattr(topic)}/>
  <title>YouTube video feed</title>
  <updated>{feed_time(updated, precise=True)}</updated>
  <entry>
    <id>yt:video:{vid}</id>
    <yt:videoId>{vid}</yt:videoId>
    <yt:channelId>{channel.channel_id}</yt:channelId>
    <title>{escape(video.title)}</title>
    <link rel="alternate" href="https://www.youtube.com/watch?v={vid}"/>
    <author>
      <name>{escape(channel.title)}</name>
      <uri>https://www.youtube.com/channel/{channel.channel_id}</uri>
    </author>
    <published>{feed_time(video.published_at)}</published>
    <updated>{feed_time(updated, precise=True)}</updated>
  </entry>
</feed>
"""
    return text.encode("utf-8")


def tombstone_feed(video_id: str, channel: Channel, when: float) -> bytes:
    """The notification that ``video_id`` was deleted: no ``yt:channelId``, the channel in ``at:by``."""
    text = f"""<?xml version='1.0' encoding='UTF-8'?>
<feed xmlns:at="http://purl.org/atompub/tombstones/1.0" xmlns="http://www.w3.org/2005/Atom">
  <at:deleted-entry ref="yt:video:{video_id}" when="{feed_time(when, precise=True)}">
    <link href="https://www.youtube.com/watch?v={video_id}"/>
    <at:by>
      <name>{escape(channel.title)}</name>
      <uri>https://www.youtube.com/channel/{channel.channel_id}</uri>
    </at:by>
  </at:deleted-entry>
</feed>
"""
    return text.encode("utf-8")
