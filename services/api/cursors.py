"""Opaque page cursors: the ``search_after`` values of the last item of a page."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

CURSOR_VERSION = 1


class InvalidCursorError(ValueError):
    pass


@dataclass(frozen=True)
class Cursor:
    search_after: tuple[int, str]  # (published_at epoch millis, video_id)

    def encode(self) -> str:
        payload = json.dumps({"v": CURSOR_VERSION, "sa": list(self.search_after)}, separators=(",", ":"))
        return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            data = json.loads(raw)
        except (binascii.Error, ValueError):
            raise InvalidCursorError("cursor is not one this API issued") from None
        if not isinstance(data, dict) or data.get("v") != CURSOR_VERSION:
            raise InvalidCursorError("cursor is not one this API issued")
        values = data.get("sa")
        if (
            not isinstance(values, list)
            or len(values) != 2
            or not isinstance(values[0], int)
            or isinstance(values[0], bool)
            or not isinstance(values[1], str)
        ):
            raise InvalidCursorError("cursor is not one this API issued")
        return cls((values[0], values[1]))
