"""Page tokens as YouTube makes them: unpadded base64url of a tiny protobuf.

Field 1 is the varint offset, field 2 the direction (0 next, 1 previous): ``CAEQAA`` is offset 1,
``CPQDEAE`` is "the page before offset 500". playlistItems.list wraps the offset differently
(``encode_playlist_token``).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from services.youtube_emulator.ids import b64

_MAX_OFFSET = 1 << 31


@dataclass(frozen=True, slots=True)
class PageToken:
    offset: int
    previous: bool = False

    def encode(self) -> str:
        return b64(b"\x08" + _varint(self.offset) + b"\x10" + _varint(int(self.previous)))


def decode_page_token(token: str) -> PageToken:
    """Raise ValueError for anything YouTube would answer with ``invalidPageToken``."""
    if not token or len(token) > 64:
        raise ValueError("bad length")
    try:
        raw = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=True)
    except binascii.Error as exc:
        raise ValueError("not base64url") from exc
    fields: dict[int, int] = {}
    pos = 0
    while pos < len(raw):
        key, pos = _read_varint(raw, pos)
        field, wire_type = key >> 3, key & 7
        if field not in (1, 2) or wire_type != 0 or field in fields:
            raise ValueError("unexpected field")
        fields[field], pos = _read_varint(raw, pos)
    if 1 not in fields or fields[1] >= _MAX_OFFSET or fields.get(2, 0) not in (0, 1):
        raise ValueError("bad fields")
    return PageToken(offset=fields[1], previous=fields.get(2, 0) == 1)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(raw: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(raw) or shift > 63:
            raise ValueError("truncated varint")
        byte = raw[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


# playlistItems.list tokens look different: ``EAAaBlBUOkNESQ`` is field 2 = 0 (next) and field 3 =
# "PT:CDI", whose tail is itself base64url of {1: 50} (INFERRED from tokens seen in the wild, e.g.
# the ubiquitous second page of an uploads playlist; field 2 = 1 taken to mean "previous").
_PLAYLIST_PREFIX = b"PT:"


def encode_playlist_token(token: PageToken) -> str:
    inner = _PLAYLIST_PREFIX + b64(b"\x08" + _varint(token.offset)).encode("ascii")
    return b64(b"\x10" + _varint(int(token.previous)) + b"\x1a" + _varint(len(inner)) + inner)


def decode_playlist_token(token: str) -> PageToken:
    """Raise ValueError for anything YouTube would answer with ``invalidPageToken``."""
    if not token or len(token) > 64:
        raise ValueError("bad length")
    raw = _b64decode(token)
    direction: int | None = None
    inner: bytes | None = None
    pos = 0
    while pos < len(raw):
        key, pos = _read_varint(raw, pos)
        if key == 0x10 and direction is None:
            direction, pos = _read_varint(raw, pos)
        elif key == 0x1A and inner is None:
            size, pos = _read_varint(raw, pos)
            inner, pos = raw[pos : pos + size], pos + size
            if len(inner) != size:
                raise ValueError("truncated field")
        else:
            raise ValueError("unexpected field")
    if direction not in (0, 1) or inner is None or not inner.startswith(_PLAYLIST_PREFIX):
        raise ValueError("bad fields")
    offset_bytes = _b64decode(inner[len(_PLAYLIST_PREFIX) :].decode("ascii", errors="replace"))
    if len(offset_bytes) < 2 or offset_bytes[0] != 0x08:
        raise ValueError("bad offset")
    offset, end = _read_varint(offset_bytes, 1)
    if end != len(offset_bytes) or offset >= _MAX_OFFSET:
        raise ValueError("bad offset")
    return PageToken(offset=offset, previous=direction == 1)


def _b64decode(text: str) -> bytes:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except binascii.Error as exc:
        raise ValueError("not base64url") from exc
