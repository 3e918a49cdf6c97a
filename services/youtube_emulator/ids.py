"""Identifiers shaped like YouTube's: 11-char video ids, ``UC`` channel ids, 27-char etags.

Video ids encode (stream tag, index) through a keyed Feistel permutation, so they look random yet
videos.list can find any video without a lookup table, even after a restart with the same seed.
"""

from __future__ import annotations

import base64
import hashlib

_MASK32 = 0xFFFFFFFF
_ROUNDS = 4
# 64-bit payload: 16-bit stream tag | 40-bit index | 8-bit check.
_INDEX_BITS = 40
_CHECK_BITS = 8
MAX_INDEX = (1 << _INDEX_BITS) - 1


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def digest(*parts: object, size: int = 32) -> bytes:
    text = "\x1f".join(str(part) for part in parts)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=size).digest()


def etag(*parts: object) -> str:
    """27 characters: 20 bytes in unpadded base64url, like YouTube's unquoted etags."""
    return b64(digest("etag", *parts, size=20))


def channel_id(seed: int, name: str) -> str:
    """``UC`` + 22 characters (16 bytes of base64url), like real channel ids."""
    return "UC" + b64(digest("channel", seed, name, size=16))


def project_number(name: str) -> str:
    """A stable 12-digit Cloud project number for a project name (quoted in quota errors)."""
    value = int.from_bytes(digest("project", name, size=8), "big")
    return str(100_000_000_000 + value % 900_000_000_000)


class VideoIdCodec:
    def __init__(self, seed: int) -> None:
        self._keys = [digest("feistel", seed, r, size=8) for r in range(_ROUNDS)]

    def _round(self, half: int, r: int) -> int:
        data = half.to_bytes(4, "big") + self._keys[r]
        return int.from_bytes(hashlib.blake2b(data, digest_size=4).digest(), "big")

    def _check(self, tag: int, index: int) -> int:
        return digest("check", tag, index, size=1)[0]

    def encode(self, tag: int, index: int) -> str:
        if not 0 <= tag <= 0xFFFF or not 0 <= index <= MAX_INDEX:
            raise ValueError("tag or index out of range")
        payload = (tag << (_INDEX_BITS + _CHECK_BITS)) | (index << _CHECK_BITS) | self._check(tag, index)
        left, right = payload >> 32, payload & _MASK32
        for r in range(_ROUNDS):
            left, right = right, left ^ self._round(right, r)
        # 8 bytes -> 11 base64url chars whose last one has only 16 possible values, as on YouTube.
        return b64(((left << 32) | right).to_bytes(8, "big"))

    def decode(self, video_id: str) -> tuple[int, int] | None:
        if len(video_id) != 11:
            return None
        try:
            raw = base64.b64decode(video_id + "=", altchars=b"-_", validate=True)
        except ValueError:
            return None
        if len(raw) != 8 or b64(raw) != video_id:
            return None
        value = int.from_bytes(raw, "big")
        left, right = value >> 32, value & _MASK32
        for r in reversed(range(_ROUNDS)):
            left, right = right ^ self._round(left, r), left
        payload = (left << 32) | right
        tag = payload >> (_INDEX_BITS + _CHECK_BITS)
        index = (payload >> _CHECK_BITS) & MAX_INDEX
        if payload & ((1 << _CHECK_BITS) - 1) != self._check(tag, index):
            return None
        return tag, index
