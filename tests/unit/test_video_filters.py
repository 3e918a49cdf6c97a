"""The filters of a listing, shared: a saved search's filters are validated exactly as the feed's parameters."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.api.params import FeedParams, parse_query_string
from services.common.video_filters import VideoFilters


def test_saved_filters_are_the_feeds_filters_and_survive_their_json_form() -> None:
    query = (
        "q=cricket+-rain&channel_id=UC0000000000000000000003&published_after=2026-11-24"
        "&published_before=2026-12-01T10:00:00.5%2B02:00&published_within=P1DT12H&query=cricket&matched=search"
        "&found_by=search"
    )
    feed = parse_query_string(query, FeedParams)
    saved = VideoFilters.model_validate(
        {
            "q": "cricket -rain",
            "channel_id": ["UC0000000000000000000003"],
            "published_after": "2026-11-24",
            "published_before": "2026-12-01T10:00:00.5+02:00",
            "published_within": "P1DT12H",
            "query": "cricket",
            "matched": "search",
            "found_by": "search",
        }
    )
    assert saved.filters() == feed.filters()
    stored = saved.model_dump(mode="json", exclude_none=True)
    assert stored["published_after"] == "2026-11-24T00:00:00Z"
    assert stored["published_before"] == "2026-12-01T08:00:00.500Z"
    assert stored["published_within"] == "P1DT12H"
    assert VideoFilters.model_validate(stored) == saved


@pytest.mark.parametrize(
    "filters",
    [
        {"published_after": 1700000000},
        {"published_within": 86400},
        {"published_after": "2026-12-02", "published_before": "2026-12-01"},
        {"matched": "text"},
        {"limit": "5"},
        {"q": ""},
    ],
)
def test_saved_filters_refuse_what_the_feed_refuses_and_numbers_for_times(filters: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        VideoFilters.model_validate(filters)
