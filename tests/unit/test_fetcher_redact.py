"""The logging filter that replaces any configured key by its fingerprint, wherever it hides."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from pythonjsonlogger.json import JsonFormatter

from services.fetcher.redact import KeyRedactingFilter
from services.fetcher.settings import parse_key_entries

KEY = "AIzaFAKEdddddddddddddddddddddddddddd9999"


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("%(levelname)s %(name)s %(message)s"))
    handler.addFilter(KeyRedactingFilter(parse_key_entries([KEY])))
    logger = logging.getLogger("tests.redact")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def test_keys_are_masked_in_messages_arguments_extras_and_tracebacks(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    logger.debug("calling with %s", KEY)
    logger.info("plain", extra={"url": f"https://example.invalid/search?key={KEY}", "headers": {"x": KEY}})
    try:
        raise RuntimeError(f"library said key={KEY}")
    except RuntimeError:
        logger.exception("failed")
    text = stream.getvalue()
    assert KEY not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines[0]["message"] == "calling with …9999"
    assert lines[1]["url"].endswith("key=…9999")
    assert "…9999" in lines[1]["headers"]
    assert "RuntimeError: library said key=…9999" in lines[2]["exc_info"]


def test_records_without_keys_pass_unchanged(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    logger.warning("published %d videos", 3, extra={"query": "cricket", "count": 3})
    line = json.loads(stream.getvalue())
    assert (line["message"], line["query"], line["count"]) == ("published 3 videos", "cricket", 3)
