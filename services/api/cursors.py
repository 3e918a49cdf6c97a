"""Opaque, signed page cursors bound to the query that issued them.

A cursor carries the ``search_after`` values of the last item of a page, the snapshot time fixed by
the first page of the walk, the query fingerprint it belongs to and, for relevance walks, the
Elasticsearch point-in-time id. It is ``base64url(json) "." base64url(hmac)``: a changed byte fails
the HMAC check, and a cursor used with another q, filter or sort fails the fingerprint check.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CURSOR_VERSION = 2
_MAC_BYTES = 16
SECRET_FILE_NAME = "cursor_secret"  # noqa: S105 - a file name, not a secret


class InvalidCursorError(ValueError):
    """The cursor was not issued by this API, was altered, or belongs to another query."""


@dataclass(frozen=True)
class Cursor:
    fingerprint: str  # of the query (q, filters, sort) the walk belongs to
    snapshot_ms: int  # later pages show only videos first seen at or before this time
    search_after: tuple[Any, ...]
    pit_id: str | None = None  # relevance walks only


class CursorCodec:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()[:_MAC_BYTES]

    def encode(self, cursor: Cursor) -> str:
        data: dict[str, Any] = {
            "v": CURSOR_VERSION,
            "f": cursor.fingerprint,
            "s": cursor.snapshot_ms,
            "a": list(cursor.search_after),
        }
        if cursor.pit_id is not None:
            data["p"] = cursor.pit_id
        payload = _b64encode(json.dumps(data, separators=(",", ":")).encode())
        return f"{payload}.{_b64encode(self._mac(payload.encode()))}"

    def decode(self, text: str, fingerprint: str, sort: str | None = None) -> Cursor:
        """The cursor in ``text``, checked against the fingerprint of the request it came with.

        With ``sort``, also that its values have the shape of that order's cursors: (published_at
        ms, video_id) for the date orders; a point-in-time and (score, published_at, video_id) for
        relevance.
        """
        payload, dot, mac = text.partition(".")
        if not dot or not payload.isascii() or not mac.isascii():
            raise InvalidCursorError("cursor is not one this API issued")
        try:
            given_mac = _b64decode(mac)
        except (binascii.Error, ValueError):
            raise InvalidCursorError("cursor is not one this API issued") from None
        if not hmac.compare_digest(given_mac, self._mac(payload.encode())):
            raise InvalidCursorError("cursor is not one this API issued, or it was altered")
        try:
            data = json.loads(_b64decode(payload))
        except (binascii.Error, ValueError):
            raise InvalidCursorError("cursor is not one this API issued") from None
        if not isinstance(data, dict) or data.get("v") != CURSOR_VERSION:
            raise InvalidCursorError("cursor comes from another version of this API; start the walk again")
        cursor = _cursor_from(data)
        if not hmac.compare_digest(cursor.fingerprint, fingerprint):
            raise InvalidCursorError(
                "cursor belongs to a different query (q, filters or sort); repeat the first request without it"
            )
        if sort is not None and not _has_shape_of(cursor, sort):
            raise InvalidCursorError("cursor is not one this API issued")
        return cursor


def _has_shape_of(cursor: Cursor, sort: str) -> bool:
    values = cursor.search_after
    if sort == "relevance":
        return cursor.pit_id is not None and len(values) >= 3
    return len(values) == 2 and isinstance(values[0], int) and isinstance(values[1], str)


def _cursor_from(data: dict[str, Any]) -> Cursor:
    fingerprint, snapshot, values, pit = data.get("f"), data.get("s"), data.get("a"), data.get("p")
    if (
        not isinstance(fingerprint, str)
        or not isinstance(snapshot, int)
        or isinstance(snapshot, bool)
        or not isinstance(values, list)
        or not values
        or not all(_is_int(v) or isinstance(v, (str, float)) for v in values)
        or not (pit is None or isinstance(pit, str))
    ):
        raise InvalidCursorError("cursor is not one this API issued")
    return Cursor(fingerprint, snapshot, tuple(values), pit)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def query_fingerprint(parts: dict[str, Any]) -> str:
    """A short digest of the canonical query a cursor is bound to."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:20]


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_or_create_secret(path: Path) -> bytes:
    """The secret stored at ``path``, created once (atomically) when absent.

    Several API processes may start at once: each writes a candidate to its own temporary file and
    hard-links it into place; the link fails for all but the first, and everyone reads the winner.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        candidate = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(48))
            # FileExistsError: another process won the race; use its secret.
            with contextlib.suppress(FileExistsError):
                os.link(candidate, path)
        finally:
            candidate.unlink(missing_ok=True)
    secret = path.read_text().strip()
    if len(secret) < 32:
        raise SystemExit(f"tubewatch: invalid cursor secret file {path}: shorter than 32 characters")
    return secret.encode()
