from __future__ import annotations

import pytest

from services.api import page_cache
from services.api.page_cache import PageCache


def test_entries_expire_after_the_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(page_cache.time, "monotonic", lambda: now[0])
    cache = PageCache(1.0)
    cache.put(("f", None, 20), b"body", "elasticsearch")
    hit = cache.get(("f", None, 20))
    assert hit is not None and hit.body == b"body"
    assert cache.get(("f", None, 21)) is None
    now[0] += 1.5
    assert cache.get(("f", None, 20)) is None


def test_the_cache_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(page_cache, "MAX_ENTRIES", 10)
    cache = PageCache(60)
    for n in range(25):
        cache.put((str(n), None, 20), b"x", "elasticsearch")
    assert len(cache) == 10
    assert cache.get(("24", None, 20)) is not None
    assert cache.get(("14", None, 20)) is None  # the oldest went first


def test_expired_pages_leave_memory_without_being_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    """One-off keys (every page of a cursor walk) must not pile up until the cache is full."""
    now = [100.0]
    monkeypatch.setattr(page_cache.time, "monotonic", lambda: now[0])
    cache = PageCache(1.0)
    for n in range(50):
        cache.put((f"walk-page-{n}", None, 20), b"x" * 1000, "elasticsearch")
        now[0] += 0.1
    # Only the pages of the last second are still held.
    assert len(cache) <= 11
    assert cache.get(("walk-page-49", None, 20)) is not None


def test_zero_ttl_disables() -> None:
    assert not PageCache(0).enabled
