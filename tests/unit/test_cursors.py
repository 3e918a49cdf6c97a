from __future__ import annotations

import base64

import pytest

from services.api.cursors import Cursor, InvalidCursorError


def test_cursor_round_trips() -> None:
    cursor = Cursor((1764000000000, "aB3dE5fG7hI"))
    assert Cursor.decode(cursor.encode()) == cursor


@pytest.mark.parametrize(
    "text",
    [
        "",
        "!!!",
        "bm90IGpzb24",
        base64.urlsafe_b64encode(b'{"v":2,"sa":[1,"x"]}').decode(),
        base64.urlsafe_b64encode(b'{"v":1,"sa":["1","x"]}').decode(),
        base64.urlsafe_b64encode(b'{"v":1,"sa":[true,"x"]}').decode(),
        base64.urlsafe_b64encode(b'{"v":1,"sa":[1]}').decode(),
    ],
)
def test_foreign_cursors_are_refused(text: str) -> None:
    with pytest.raises(InvalidCursorError):
        Cursor.decode(text)
