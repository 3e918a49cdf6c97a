"""The Atom 1.0 document (RFC 4287) of a feed of videos, written with xml.etree.

Every piece of user text (titles, descriptions, channel names, q) goes in as element text or an
attribute value, which ElementTree escapes; nothing is spliced into markup. Text constructs are
``type="text"``: a reader shows them as characters and never renders them as HTML. Characters XML
1.0 cannot carry at all (most control characters) are dropped first, so the document always parses.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET  # only to write XML, never to parse it
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

ATOM_NS = "http://www.w3.org/2005/Atom"
MEDIA_NS = "http://search.yahoo.com/mrss/"
ATOM_CONTENT_TYPE = "application/atom+xml"
# A feed with no entry has no newest entry: its updated is this fixed moment, so the document (and
# its ETag) stays the same until a video arrives.
EMPTY_FEED_UPDATED = "1970-01-01T00:00:00Z"
_THUMBNAIL_PREFERENCE = ("high", "medium", "default")
# Everything outside XML 1.0's Char production.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

ET.register_namespace("media", MEDIA_NS)


@dataclass(frozen=True)
class FeedHead:
    """What the feed says about itself: its id, title and the two links."""

    feed_id: str  # a tag URI, the same for the same filters
    title: str
    self_url: str
    alternate_url: str  # the dashboard with the same filters


def xml_text(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot carry."""
    return _NOT_XML.sub("", text)


def _atom(parent: ET.Element, name: str, text: str | None = None, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, name, {k: xml_text(v) for k, v in attributes.items()})
    if text is not None:
        element.text = xml_text(text)
    return element


def _thumbnail(entry: ET.Element, thumbnails: dict[str, Any]) -> None:
    for name in _THUMBNAIL_PREFERENCE:
        thumb = thumbnails.get(name)
        if isinstance(thumb, dict) and isinstance(thumb.get("url"), str):
            attributes = {"url": xml_text(thumb["url"])}
            for size in ("width", "height"):
                if isinstance(thumb.get(size), int):
                    attributes[size] = str(thumb[size])
            ET.SubElement(entry, f"{{{MEDIA_NS}}}thumbnail", attributes)
            return


def _entry(feed: ET.Element, video: dict[str, Any]) -> None:
    entry = _atom(feed, "entry")
    _atom(entry, "id", f"yt:video:{video['video_id']}")
    _atom(entry, "title", video["title"], type="text")
    _atom(entry, "link", rel="alternate", type="text/html", href=video["url"])
    _atom(entry, "published", video["published_at"])
    # The catalogue keeps no edit time a reader could use: a video's entry is as of its publication.
    _atom(entry, "updated", video["published_at"])
    author = _atom(entry, "author")
    _atom(author, "name", video["channel_title"] or video["channel_id"])
    if video["channel_id"]:
        _atom(author, "uri", f"https://www.youtube.com/channel/{video['channel_id']}")
    if video["description"]:
        _atom(entry, "summary", video["description"], type="text")
    _thumbnail(entry, video.get("thumbnails") or {})


def feed_updated(videos: Sequence[dict[str, Any]]) -> str:
    """The feed's updated: its newest entry's (the videos come newest first)."""
    return videos[0]["published_at"] if videos else EMPTY_FEED_UPDATED


def atom_feed(head: FeedHead, videos: Sequence[dict[str, Any]]) -> bytes:
    """The whole document, UTF-8, with its XML declaration; ``videos`` in the public shape, newest first."""
    # Atom is the default namespace, declared on the root; ElementTree then writes Atom's elements
    # unprefixed (its default_namespace option refuses unqualified attributes) and media:* with its prefix.
    feed = ET.Element("feed", {"xmlns": ATOM_NS})
    _atom(feed, "id", head.feed_id)
    _atom(feed, "title", head.title, type="text")
    _atom(feed, "updated", feed_updated(videos))
    _atom(feed, "link", rel="self", type=ATOM_CONTENT_TYPE, href=head.self_url)
    _atom(feed, "link", rel="alternate", type="text/html", href=head.alternate_url)
    # Entries name their channel; the feed names its maker, so even an empty feed has an author.
    _atom(_atom(feed, "author"), "name", "tubewatch")
    _atom(feed, "generator", "tubewatch")
    for video in videos:
        _entry(feed, video)
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True) + b"\n"
