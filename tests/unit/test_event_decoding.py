from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from services.common.events import VideoEvent
from services.indexer.consumer import decode_event

EVENT = VideoEvent(
    video_id="aB3dE5fG7hI",
    query="cricket",
    title="t",
    published_at=datetime(2026, 11, 24, tzinfo=UTC),
    channel_id="UC1",
    fetched_at=datetime(2026, 11, 24, 1, tzinfo=UTC),
)


def test_a_published_event_round_trips() -> None:
    assert decode_event(EVENT.model_dump_json().encode()) == EVENT


def test_unknown_fields_from_a_newer_producer_are_ignored() -> None:
    data = json.loads(EVENT.model_dump_json()) | {"something_new": 1}
    assert decode_event(json.dumps(data).encode()) == EVENT


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "body is not JSON"),
        (b"\xff\xfe\x00garbage", "body is not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (json.dumps({"video_id": "aB3dE5fG7hI"}).encode(), "schema error"),
        (EVENT.model_dump_json().replace('"schema_version":1', '"schema_version":99').encode(), "schema_version"),
        (EVENT.model_dump_json().replace("+00:00", "").replace("Z", "").encode(), "published_at"),
    ],
)
def test_invalid_bodies_are_refused_with_a_reason(body: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        decode_event(body)


@pytest.mark.parametrize("published", ["9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "1970-01-01T00:00:00Z"])
def test_absurd_publish_dates_are_refused(published: str) -> None:
    data = json.loads(EVENT.model_dump_json()) | {"published_at": published}
    with pytest.raises(ValueError, match="plausible"):
        decode_event(json.dumps(data).encode())


def test_a_broadcast_scheduled_for_later_today_is_accepted() -> None:
    data = json.loads(EVENT.model_dump_json()) | {"published_at": "2026-11-24T12:00:00Z"}
    assert decode_event(json.dumps(data).encode()).published_at.hour == 12
