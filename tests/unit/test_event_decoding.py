from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from services.common.events import FoundBy, VideoEvent
from services.indexer.decoding import decode_message

EVENT = VideoEvent(
    video_id="aB3dE5fG7hI",
    query="cricket",
    title="t",
    published_at=datetime(2026, 11, 24, tzinfo=UTC),
    channel_id="UC1",
    fetched_at=datetime(2026, 11, 24, 1, tzinfo=UTC),
)


def decode_event(body: bytes) -> VideoEvent:
    """The indexer's decoding of a body that must be a find (a ValueError says why it is not)."""
    decoded = decode_message(body)
    assert isinstance(decoded, VideoEvent), decoded
    return decoded


def test_a_published_event_round_trips() -> None:
    assert decode_event(EVENT.model_dump_json().encode()) == EVENT


CHANNEL = "UCabcdefghijklmnopqrstuv"


def test_a_version_1_body_with_only_its_query_is_a_search_find_of_that_query() -> None:
    body = json.loads(EVENT.model_dump_json())
    del body["found_by"]
    body["schema_version"] = 1
    event = decode_event(json.dumps(body).encode())
    assert event.schema_version == 1
    assert event.found_by == FoundBy.search("cricket")
    assert event.query == "cricket"


def test_a_version_2_channel_find_has_no_query() -> None:
    body = json.loads(EVENT.model_dump_json()) | {"query": None, "found_by": FoundBy.channel(CHANNEL).as_document()}
    event = decode_event(json.dumps(body).encode())
    assert event.schema_version == 2
    assert event.query is None
    assert event.found_by.as_document() == {"source": "channel", "channel_id": CHANNEL, "via": "poll"}


def test_a_version_2_search_find_without_query_takes_found_bys() -> None:
    body = json.loads(EVENT.model_dump_json()) | {"query": None, "found_by": {"source": "search", "query": "golf"}}
    assert decode_event(json.dumps(body).encode()).query == "golf"


@pytest.mark.parametrize(
    "found_by",
    [
        {"source": "channel", "channel_id": "UC1", "via": "poll"},  # not a channel id
        {"source": "channel", "channel_id": CHANNEL},  # no via
        {"source": "search"},  # no query
        {"source": "search", "query": "golf", "via": "poll"},
        {"source": "playlist", "query": "golf"},
    ],
    ids=["bad channel id", "channel without via", "search without query", "search with via", "unknown source"],
)
def test_a_found_by_entry_that_is_not_one_of_the_two_kinds_is_refused(found_by: dict[str, str]) -> None:
    body = json.loads(EVENT.model_dump_json()) | {"query": None, "found_by": found_by}
    with pytest.raises(ValueError, match="found_by"):
        decode_event(json.dumps(body).encode())


def test_an_event_saying_neither_how_nor_which_query_is_refused() -> None:
    body = json.loads(EVENT.model_dump_json()) | {"query": None, "found_by": None}
    with pytest.raises(ValueError, match="how the video was found"):
        decode_event(json.dumps(body).encode())


def test_a_query_contradicting_found_by_is_refused() -> None:
    body = json.loads(EVENT.model_dump_json()) | {"found_by": FoundBy.channel(CHANNEL).as_document()}
    with pytest.raises(ValueError, match="differs from found_by"):
        decode_event(json.dumps(body).encode())


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
        (EVENT.model_dump_json().replace('"schema_version":2', '"schema_version":99').encode(), "schema_version"),
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


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"x" * (5 * 1024 * 1024),
        '{"title": "caf\xe9"}'.encode("latin-1"),  # not UTF-8 inside a JSON string
        EVENT.model_dump_json().encode()[:-1],  # truncated
    ],
    ids=["empty", "5 MB of garbage", "latin-1 in a string", "truncated"],
)
def test_bodies_that_are_not_json_say_so(body: bytes) -> None:
    with pytest.raises(ValueError, match=r"^body is not JSON: "):
        decode_event(body)


def test_the_reason_names_the_first_bad_field_and_counts_the_errors() -> None:
    data = json.loads(EVENT.model_dump_json()) | {"video_id": "short", "query": ""}
    with pytest.raises(ValueError, match=r"^2 schema error\(s\); video_id: String should match pattern"):
        decode_event(json.dumps(data).encode())
