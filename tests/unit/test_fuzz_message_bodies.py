"""Fuzzing the indexer's message boundary: any body either decodes to a valid event (a find or a
removal) or is refused with a ValueError (which dead-letters it) — never another exception that would
crash the consumer."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.common.events import VideoEvent, VideoRemoved
from services.indexer.decoding import decode_message

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=25,
)
VALID = {
    "schema_version": 1,
    "video_id": "aB3dE5fG7hI",
    "query": "cricket",
    "title": "t",
    "description": "d",
    "published_at": "2026-11-24T09:41:07Z",
    "channel_id": "UC1",
    "channel_title": "c",
    "thumbnails": {"default": {"url": "https://i.ytimg.com/vi/aB3dE5fG7hI/default.jpg", "width": 120, "height": 90}},
    "live_broadcast_content": "none",
    "fetched_at": "2026-11-24T10:00:00Z",
}


def _decodes_or_refuses(body: bytes) -> VideoEvent | VideoRemoved | None:
    try:
        return decode_message(body)
    except ValueError as exc:
        assert str(exc), "a refusal must carry a reason for the dead-letter header"
        return None


@given(st.binary(max_size=2000))
def test_random_bytes_never_crash_the_decoder(body: bytes) -> None:
    _decodes_or_refuses(body)


@given(json_values)
def test_random_json_never_crashes_the_decoder(value: Any) -> None:
    assert _decodes_or_refuses(json.dumps(value).encode()) is None


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(VALID)), json_values)
def test_a_valid_event_with_one_field_replaced_by_junk_is_refused_or_still_valid(field: str, junk: Any) -> None:
    body = json.dumps(VALID | {field: junk}).encode()
    event = _decodes_or_refuses(body)
    if event is not None:
        # Whatever got through is a well-formed event: nothing half-valid reaches the stores.
        assert type(event).model_validate_json(event.model_dump_json()) == event
