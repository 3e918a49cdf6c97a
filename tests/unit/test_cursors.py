from __future__ import annotations

import base64
import json
import multiprocessing
import stat
from pathlib import Path

import pytest

from services.api.cursors import Cursor, CursorCodec, InvalidCursorError, load_or_create_secret, query_fingerprint

CODEC = CursorCodec(b"k" * 48)
FINGERPRINT = query_fingerprint({"filters": {"q": "cricket"}, "sort": "-published_at"})


def test_cursor_round_trips_with_its_snapshot_and_point_in_time() -> None:
    cursor = Cursor(FINGERPRINT, 1764000000000, (1.25, 1764000000000, "aB3dE5fG7hI", 7), pit_id="pit==")
    assert CODEC.decode(CODEC.encode(cursor), FINGERPRINT) == cursor


def test_a_cursor_is_url_safe() -> None:
    text = CODEC.encode(Cursor(FINGERPRINT, 1, (1764000000000, "a-b_c")))
    assert set(text) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


def test_a_cursor_of_another_query_is_refused() -> None:
    text = CODEC.encode(Cursor(FINGERPRINT, 1, (1, "x")))
    other = query_fingerprint({"filters": {"q": "cricket"}, "sort": "published_at"})
    with pytest.raises(InvalidCursorError, match="different query"):
        CODEC.decode(text, other)


def test_every_changed_byte_is_detected() -> None:
    text = CODEC.encode(Cursor(FINGERPRINT, 1764000000000, (1764000000000, "aB3dE5fG7hI")))
    for position in range(len(text)):
        changed = text[:position] + ("A" if text[position] != "A" else "B") + text[position + 1 :]
        with pytest.raises(InvalidCursorError):
            CODEC.decode(changed, FINGERPRINT)


def test_a_re_signed_payload_needs_the_secret() -> None:
    payload = {"v": 2, "f": FINGERPRINT, "s": 9, "a": [1, "x"]}
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=") + ".AAAA"
    with pytest.raises(InvalidCursorError):
        CODEC.decode(forged, FINGERPRINT)
    with pytest.raises(InvalidCursorError):
        CursorCodec(b"other" * 10).decode(CODEC.encode(Cursor(FINGERPRINT, 1, (1, "x"))), FINGERPRINT)


@pytest.mark.parametrize("text", ["", ".", "!!!", "bm90IGpzb24", "a.b.c", "é.é", "x" * 5000])
def test_garbage_is_refused(text: str) -> None:
    with pytest.raises(InvalidCursorError):
        CODEC.decode(text, FINGERPRINT)


def test_fingerprints_ignore_key_order_but_not_values() -> None:
    assert query_fingerprint({"a": 1, "b": [1, 2]}) == query_fingerprint({"b": [1, 2], "a": 1})
    assert query_fingerprint({"a": 1}) != query_fingerprint({"a": 2})


def _secret_in(path: str, results: multiprocessing.Queue[bytes]) -> None:
    results.put(load_or_create_secret(Path(path)))


def test_the_secret_is_created_once_private_and_shared_by_racing_processes(tmp_path: Path) -> None:
    path = tmp_path / "state" / "cursor_secret"
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[bytes] = context.Queue()
    processes = [context.Process(target=_secret_in, args=(str(path), results)) for _ in range(4)]
    for process in processes:
        process.start()
    secrets = {results.get(timeout=60) for _ in processes}
    for process in processes:
        process.join(timeout=60)
    assert len(secrets) == 1
    assert len(secrets.pop()) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_secret(path) == path.read_text().strip().encode()
    assert [p.name for p in path.parent.iterdir()] == ["cursor_secret"]
