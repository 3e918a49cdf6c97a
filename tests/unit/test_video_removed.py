from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from services.common.events import VideoEvent, VideoRemoved
from services.indexer.decoding import decode_message

WHEN = datetime(2026, 11, 24, 12, tzinfo=UTC)
REMOVAL = VideoRemoved(video_id="aB3dE5fG7hI", removed_at=WHEN, channel_id="UCabcdefghijklmnopqrstuv", observed_at=WHEN)
EVENT = VideoEvent(
    video_id="aB3dE5fG7hI", query="cricket", title="t", published_at=WHEN, channel_id="UC1", fetched_at=WHEN
)


def test_a_published_removal_decodes_as_a_removal_and_an_event_as_an_event() -> None:
    assert decode_message(REMOVAL.model_dump_json().encode()) == REMOVAL
    assert decode_message(EVENT.model_dump_json().encode()) == EVENT


def test_a_removal_without_channel_and_with_unknown_fields_is_accepted() -> None:
    body = json.loads(REMOVAL.model_dump_json()) | {"channel_id": None, "something_new": 1}
    removal = decode_message(json.dumps(body).encode())
    assert isinstance(removal, VideoRemoved)
    assert removal.channel_id is None


def test_times_with_an_offset_are_kept_in_utc() -> None:
    body = json.loads(REMOVAL.model_dump_json()) | {"removed_at": "2026-11-24T13:00:00+01:00"}
    removal = decode_message(json.dumps(body).encode())
    assert isinstance(removal, VideoRemoved)
    assert removal.removed_at == WHEN and removal.removed_at.tzinfo == UTC


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"video_id": "short"}, "video_id"),
        ({"removed_at": "2026-11-24T12:00:00"}, "removed_at"),
        ({"removed_at": (WHEN + timedelta(days=2)).isoformat()}, "plausible"),
        ({"schema_version": 9}, "schema_version"),
    ],
)
def test_a_bad_removal_is_refused_with_the_removals_reason(change: dict[str, object], reason: str) -> None:
    body = json.loads(REMOVAL.model_dump_json()) | change
    with pytest.raises(ValueError, match=reason):
        decode_message(json.dumps(body).encode())


def test_a_body_of_another_kind_gets_the_events_reason() -> None:
    body = json.loads(REMOVAL.model_dump_json()) | {"kind": "renamed"}
    with pytest.raises(ValueError, match="how the video was found"):
        decode_message(json.dumps(body).encode())
