from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.api.errors import ApiError
from services.api.models import Video
from services.api.mongo_store import mongo_filter
from services.api.params import FeedParams, VideoListParams, parse_query_string
from services.common.video_query import Filters, build_query
from services.common.video_shape import public_video

WHEN = datetime(2026, 11, 24, 12, tzinfo=UTC)


def test_lists_leave_removed_videos_out_unless_include_removed_in_both_stores() -> None:
    # Left out beside the query (a must_not of the whole search), not by a filter clause.
    hidden = {"exists": {"field": "removed_at"}}
    assert build_query(Filters(q="cricket"), None, scored=True)["bool"]["must_not"] == [hidden]
    assert build_query(Filters(), None, scored=False) == {"bool": {"filter": [], "must": [], "must_not": [hidden]}}
    assert build_query(Filters(q="cricket", include_removed=True), None, scored=True)["bool"]["must_not"] == []
    assert mongo_filter(Filters(), None) == {"removed_at": {"$exists": False}}
    assert mongo_filter(Filters(include_removed=True), None) == {}


def test_include_removed_is_true_or_false_and_part_of_a_cursors_query() -> None:
    assert parse_query_string("include_removed=true", VideoListParams).filters().include_removed
    default = parse_query_string("", VideoListParams).filters()
    assert not default.include_removed
    assert parse_query_string("include_removed=false", VideoListParams).filters() == default
    assert default.canonical() == Filters().canonical()  # earlier cursors' fingerprints stay good
    assert Filters(include_removed=True).canonical() != default.canonical()
    for bad in ("1", "yes", "True", ""):
        with pytest.raises(ApiError) as caught:
            parse_query_string(f"include_removed={bad}", VideoListParams)
        assert caught.value.parameter == "include_removed"
    with pytest.raises(ApiError):
        parse_query_string("include_removed=true", FeedParams)


def test_the_public_video_says_when_it_was_removed_from_either_store() -> None:
    doc = {"video_id": "aB3dE5fG7hI", "published_at": WHEN}
    assert public_video(doc)["removed_at"] is None
    assert public_video(doc | {"removed_at": WHEN})["removed_at"] == "2026-11-24T12:00:00Z"
    assert public_video(doc | {"removed_at": "2026-11-24T12:00:00.250Z"})["removed_at"] == "2026-11-24T12:00:00.250Z"
    Video.model_validate(public_video(doc | {"removed_at": WHEN}))
