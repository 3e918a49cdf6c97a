"""The dashboard's copies of the API's parameter rules (static/js/contract.js, and the page's own
search box and sort options) are the API's values: a copy that drifts fails here.

The Python side is read from the parameter models' JSON schema, the contract the API enforces and
documents, from the histogram's bucket widths, and from the feed's route.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from services.api.buckets import INTERVAL_MS
from services.api.handlers.feeds import FEED_PATH
from services.api.params import ChannelListParams, HistogramParams, VideoListParams

STATIC = Path(__file__).resolve().parents[2] / "services" / "api" / "static"
CONTRACT = STATIC / "js" / "contract.js"
EXPORTED = re.compile(r"^export const (\w+) = (.+);$", re.MULTILINE)
REGEX_LITERAL = re.compile(r"^/(.+)/$")
BARE_KEY = re.compile(r"([{,]\s*)([A-Za-z_]\w*)\s*:")


def js_value(source: str) -> Any:
    """A JS literal as contract.js writes them: a regex (its source), or JSON with bare object keys."""
    regex = REGEX_LITERAL.match(source)
    if regex:
        return regex.group(1)
    return json.loads(BARE_KEY.sub(r'\1"\2":', source))


def js_constants() -> dict[str, Any]:
    return {name: js_value(value.strip()) for name, value in EXPORTED.findall(CONTRACT.read_text())}


def text_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The string alternative of an optional parameter's schema."""
    return next(option for option in schema["anyOf"] if option.get("type") == "string")


def python_constants() -> dict[str, Any]:
    videos = VideoListParams.model_json_schema()["properties"]
    channels = ChannelListParams.model_json_schema()["properties"]
    return {
        "SORTS": videos["sort"]["enum"],
        "DEFAULT_SORT": videos["sort"]["default"],
        "MAX_Q_LENGTH": text_schema(videos["q"])["maxLength"],
        "MAX_CHANNEL_Q_LENGTH": text_schema(channels["q"])["maxLength"],
        "CHANNEL_ID_PATTERN": videos["channel_id"]["items"]["pattern"],
        "MAX_LIMIT": videos["limit"]["maximum"],
        "INTERVAL_MS": dict(INTERVAL_MS),
        "FEED_PATH": FEED_PATH,
        "FOUND_BY_SOURCES": text_schema(videos["found_by"])["enum"],
    }


def test_the_parser_reads_literals_as_contract_js_writes_them() -> None:
    assert js_value('["a", "b"]') == ["a", "b"]
    assert js_value("/^[a-z]{1,3}$/") == "^[a-z]{1,3}$"
    assert js_value("{ hour: 3600e3, day: 86400e3 }") == {"hour": 3_600_000, "day": 86_400_000}
    assert js_value("200") == 200


def test_contract_js_holds_exactly_the_shared_values() -> None:
    assert set(js_constants()) == set(python_constants())


@pytest.mark.parametrize("name", sorted(python_constants()))
def test_each_shared_value_is_the_apis(name: str) -> None:
    assert js_constants()[name] == python_constants()[name], f"contract.js {name} differs from the API's"


def test_the_chart_knows_every_histogram_interval() -> None:
    intervals = HistogramParams.model_json_schema()["properties"]["interval"]["enum"]
    assert sorted(js_constants()["INTERVAL_MS"]) == sorted(intervals)


class _Controls(HTMLParser):
    """The search box's maxlength and the option values of the sort and found-by selects in index.html."""

    def __init__(self) -> None:
        super().__init__()
        self.q_maxlength: str | None = None
        self.options: dict[str, list[str]] = {"sort": [], "found-by": []}
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "input" and named.get("id") == "q":
            self.q_maxlength = named.get("maxlength")
        elif tag == "select":
            self._select = named.get("id")
        elif tag == "option" and self._select in self.options:
            self.options[self._select].append(named.get("value") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None


def test_the_page_offers_the_apis_sorts_found_by_sources_and_search_length() -> None:
    controls = _Controls()
    controls.feed((STATIC / "index.html").read_text())
    api = python_constants()
    assert controls.q_maxlength == str(api["MAX_Q_LENGTH"])
    assert controls.options["sort"] == api["SORTS"]
    assert controls.options["found-by"] == ["", *api["FOUND_BY_SOURCES"]]  # "" is any way
