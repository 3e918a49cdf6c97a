"""A WebSub push's body as YouTube's hub sends it: its signature, and the videos and deletions it names.

Pure: no I/O. The signature is ``X-Hub-Signature: sha1=<hex HMAC-SHA1(secret, raw body)>``, compared
in constant time. The body is Atom: an upload or a title/description change is an ``<entry>`` with
``yt:videoId`` and ``yt:channelId``; a deletion is an ``<at:deleted-entry ref="yt:video:ID"
when="…">`` that names no ``yt:channelId``, only the channel's URL in ``at:by``: an entry or a
tombstone naming another channel than the subscription's is not taken. It is parsed by defusedxml
with DTDs forbidden, so no entity is declared, expanded (a "billion laughs" bomb) or fetched (an
external entity): a push never has a DTD, and one that does is refused before any entity is looked
at.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from services.common.events import VIDEO_ID_PATTERN
from services.common.timefmt import parse_rfc3339

# A push is one entry or one tombstone, a few KiB; anything near this is not YouTube's.
MAX_PUSH_BYTES = 1024 * 1024
ATOM_TYPES = ("application/atom+xml", "application/xml", "text/xml")

_ATOM = "{http://www.w3.org/2005/Atom}"
_YT = "{http://www.youtube.com/xml/schemas/2015}"
_TOMBSTONE = "{http://purl.org/atompub/tombstones/1.0}"
_VIDEO_ID = re.compile(VIDEO_ID_PATTERN)
_VIDEO_REF = "yt:video:"

# Why a push was not used; each is a label of the ignored-pushes counter.
IgnoredReason = Literal[
    "unknown_subscription",
    "oversized",
    "content_type",
    "bad_signature",
    "malformed_xml",
    "forbidden_xml",
    "wrong_channel",
    "empty",
]


class PushRefusedError(Exception):
    def __init__(self, reason: IgnoredReason, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason: IgnoredReason = reason


@dataclass(frozen=True)
class Tombstone:
    video_id: str
    when: datetime | None  # the deletion time the tombstone gives, when it is readable


@dataclass
class PushContent:
    """The videos an entry named (uploads or changes) and the deletions, of one push."""

    video_ids: list[str] = field(default_factory=list)
    tombstones: list[Tombstone] = field(default_factory=list)
    other_channels: int = 0  # entries naming another channel than the subscription's topic


def signature_matches(secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is ``sha1=`` and the HMAC-SHA1 of ``body`` under ``secret`` (constant time)."""
    if header is None:
        return False
    method, _, given = header.strip().partition("=")
    if method.lower() != "sha1" or not given:
        return False
    expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha1).hexdigest()
    return hmac.compare_digest(expected.encode("ascii"), given.strip().lower().encode("ascii", "replace"))


def is_atom(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() in ATOM_TYPES


def parse_push(body: bytes, channel_id: str) -> PushContent:
    """What a push names for the channel ``channel_id``; raises PushRefusedError (malformed or forbidden XML)."""
    try:
        root = fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise PushRefusedError("forbidden_xml", type(exc).__name__) from None
    except (ParseError, ValueError) as exc:
        raise PushRefusedError("malformed_xml", str(exc)[:200]) from None
    if root.tag != f"{_ATOM}feed":
        raise PushRefusedError("malformed_xml", f"root element {root.tag[:100]!r} is not an Atom feed")
    content = PushContent()
    for entry in root.iter(f"{_ATOM}entry"):
        video_id = _text(entry, f"{_YT}videoId")
        if video_id is None or not _VIDEO_ID.match(video_id):
            continue
        if _text(entry, f"{_YT}channelId") != channel_id:
            content.other_channels += 1
            continue
        if video_id not in content.video_ids:
            content.video_ids.append(video_id)
    for deleted in root.iter(f"{_TOMBSTONE}deleted-entry"):
        ref = deleted.get("ref", "")
        video_id = ref[len(_VIDEO_REF) :] if ref.startswith(_VIDEO_REF) else ""
        if not _VIDEO_ID.match(video_id):
            continue
        by = _text(deleted, f"{_TOMBSTONE}by/{_ATOM}uri")
        if by is not None and by.rstrip("/").rsplit("/", 1)[-1] != channel_id:
            content.other_channels += 1
            continue
        content.tombstones.append(Tombstone(video_id, _when(deleted.get("when"))))
    return content


def _text(element: Element, tag: str) -> str | None:
    found = element.find(tag)
    return found.text.strip() if found is not None and found.text else None


def _when(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return parse_rfc3339(text)
    except ValueError:
        return None
