"""The sources contract's pure parts: query texts as the fetcher searches them, what a source set says
to read, and the what-if plan's comparison."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.api.what_if import compare, rows
from services.common.poll_plan import ItemInputs, PlanInputs, plan_polls
from services.common.settings import SearchQuerySettings
from services.common.sources import ChannelSource, QuerySource, SourceSet, normalize_query_text, query_text_problem

NOW = datetime(2026, 12, 2, 12, tzinfo=UTC)


def test_a_query_text_is_trimmed_exactly_as_search_queries_are(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEARCH_QUERIES", "  world  cup ,cricket")
    from_env = SearchQuerySettings().search_queries
    assert [normalize_query_text(t) for t in ("  world  cup ", "cricket\t")] == from_env


@pytest.mark.parametrize(
    ("text", "problem"),
    [("", "1-100"), ("x" * 101, "1-100"), ("bell\x07", "control"), ("zero\u200bwidth", "control")],
)
def test_a_query_text_is_refused_with_its_reason(text: str, problem: str) -> None:
    reason = query_text_problem(text)
    assert reason is not None and problem in reason
    assert query_text_problem("world cup") is None


def test_a_source_set_says_what_to_search_and_which_channels_to_read() -> None:
    def query(text: str, *, paused: bool = False) -> QuerySource:
        return QuerySource(
            id=f"q_{abs(hash(text)) % 16**16:016x}", text=text, paused=paused, created_at=NOW, updated_at=NOW
        )

    def channel(letter: str, **flags: bool) -> ChannelSource:
        return ChannelSource(channel_id="UC" + letter * 22, created_at=NOW, updated_at=NOW, **flags)

    sources = SourceSet(
        queries=(query("cricket"), query("chess", paused=True)),
        channels=(
            channel("a", followed=True),
            channel("b", pinned=True),
            channel("c", followed=True, paused=True),
            channel("d", excluded=True),
        ),
    )
    assert [q.text for q in sources.searched_queries] == ["cricket"]
    assert sources.explicit_channels == ["UC" + "a" * 22, "UC" + "b" * 22]
    assert sources.excluded_channels == {"UC" + "d" * 22}
    assert sources.paused_channels == {"UC" + "c" * 22}


def test_the_what_if_is_the_planner_over_the_changed_items() -> None:
    inputs = PlanInputs(
        items=[ItemInputs("fast", upload_rate=10 / 3600), ItemInputs("slow", upload_rate=1 / 3600)],
        calls_left=60,
        seconds_to_reset=43_200,
        min_interval=10,
        max_interval=7_200,
    )
    now, after = compare(inputs, "rate", add=["new"], remove=["slow"])
    assert now == plan_polls(inputs)
    expected = plan_polls(PlanInputs([inputs.items[0], ItemInputs("new", upload_rate=0.0)], 60, 43_200, 10, 7_200))
    assert after is not None and [(i.name, i.interval) for i in after.items] == [
        (i.name, i.interval) for i in expected.items
    ]
    table = {row["name"]: row for row in rows(now, after, ["fast", "slow", "new"], {"fast": "q_1"})}
    assert table["slow"]["after"] is None and table["new"]["now"] is None and table["fast"]["id"] == "q_1"
    assert compare(None, "rate", ["x"], []) == (None, None)
