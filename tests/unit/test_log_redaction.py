"""The logging filter every service installs: no configured secret leaves a process in a log record.

``configure_logging`` reads the secrets from the environment it is given (the process's own by
default): the YouTube keys (shown by fingerprint), the cursor secret and the passwords in the
server URLs, wherever they hide in a record.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator

import pytest

from services.common.logs import configure_logging
from services.common.redact import key_fingerprint

KEY = "AIzaFAKEdddddddddddddddddddddddddddd9999"
# A key that holds another whole: replaced as itself, never as the shorter key plus a tail.
SHORT = "AIzaFAKEeeeeeeeeeeeeeeee1234"
LONGER = SHORT + "eeeeeeeeeee5678"
CURSOR_SECRET = "cursor-secret-0123456789abcdef"
AMQP_PASSWORD = "s3cr3t-amqp-pw"

Configure = Callable[[dict[str, str]], tuple[logging.Logger, io.StringIO]]


@pytest.fixture
def configure() -> Iterator[Configure]:
    """Run ``configure_logging`` (JSON) with an environment; capture what its handler writes."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level

    def apply(environ: dict[str, str]) -> tuple[logging.Logger, io.StringIO]:
        configure_logging("DEBUG", "json", service="test", environ=environ)
        stream = io.StringIO()
        (handler,) = root.handlers
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(stream)
        return logging.getLogger("tests.redact"), stream

    yield apply
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_keys_are_masked_in_messages_arguments_extras_and_tracebacks(configure: Configure) -> None:
    logger, stream = configure({"YOUTUBE_API_KEYS": KEY})
    logger.debug("calling with %s", KEY)
    logger.info("plain", extra={"url": f"https://example.invalid/search?key={KEY}", "headers": {"x": KEY}})
    try:
        raise RuntimeError(f"library said key={KEY}")
    except RuntimeError:
        logger.exception("failed")
    text = stream.getvalue()
    assert KEY not in text
    lines = _lines(stream)
    assert lines[0]["message"] == "calling with …9999"
    assert str(lines[1]["url"]).endswith("key=…9999")
    assert "…9999" in str(lines[1]["headers"])
    assert "RuntimeError: library said key=…9999" in str(lines[2]["exc_info"])


def test_preformatted_exception_text_and_stacks_are_masked(configure: Configure) -> None:
    logger, stream = configure({"YOUTUBE_API_KEYS": KEY})
    record = logger.makeRecord("tests.redact", logging.ERROR, __file__, 1, "failed", (), None)
    record.exc_text = f"Traceback: key={KEY}"
    record.stack_info = f"Stack: key={KEY}"
    logger.handle(record)
    assert KEY not in stream.getvalue()
    (line,) = _lines(stream)
    assert (line["exc_info"], line["stack_info"]) == ("Traceback: key=…9999", "Stack: key=…9999")


def test_labelled_keys_are_masked_and_the_labels_are_not(configure: Configure) -> None:
    other = "AIzaFAKEffffffffffffffffffffffffffff0042"
    logger, stream = configure({"YOUTUBE_API_KEYS": f"main:{KEY}, spare:{other}"})
    logger.warning("keys %s and %s of main and spare", KEY, other)
    (line,) = _lines(stream)
    assert line["message"] == "keys …9999 and …0042 of main and spare"


def test_the_longest_secret_is_replaced_first(configure: Configure) -> None:
    logger, stream = configure({"YOUTUBE_API_KEYS": f"{SHORT} {LONGER}"})
    logger.info("long %s, short %s", LONGER, SHORT)
    (line,) = _lines(stream)
    assert line["message"] == f"long {key_fingerprint(LONGER)}, short {key_fingerprint(SHORT)}"
    assert key_fingerprint(LONGER) == "…5678"


def test_server_passwords_and_the_cursor_secret_are_masked(configure: Configure) -> None:
    url = f"amqp://tubewatch:{AMQP_PASSWORD}@rabbit.internal:5672/"
    logger, stream = configure({"AMQP_URL": url, "CURSOR_SECRET": CURSOR_SECRET})
    logger.error("cannot connect to %s", url, extra={"cursor_key": CURSOR_SECRET})
    try:
        raise ConnectionError(f"refused: {url}")
    except ConnectionError:
        logger.exception("broker away")
    text = stream.getvalue()
    assert AMQP_PASSWORD not in text
    assert CURSOR_SECRET not in text
    first, second = _lines(stream)
    assert first["message"] == "cannot connect to amqp://tubewatch:***@rabbit.internal:5672/"
    assert first["cursor_key"] == "<CURSOR_SECRET>"
    assert "refused: amqp://tubewatch:***@rabbit.internal:5672/" in str(second["exc_info"])


def test_records_without_secrets_pass_unchanged(configure: Configure) -> None:
    logger, stream = configure({"YOUTUBE_API_KEYS": KEY, "CURSOR_SECRET": CURSOR_SECRET})
    logger.warning("published %d videos", 3, extra={"query": "cricket", "count": 3})
    (line,) = _lines(stream)
    assert (line["message"], line["query"], line["count"]) == ("published 3 videos", "cricket", 3)


def test_nothing_configured_masks_nothing(configure: Configure) -> None:
    logger, stream = configure({})
    logger.info("calling with %s", KEY)
    (line,) = _lines(stream)
    assert line["message"] == f"calling with {KEY}"
