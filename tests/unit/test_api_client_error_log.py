"""Requests aiohttp's parser refuses are logged as one INFO line, not an ERROR with a traceback."""

from __future__ import annotations

import logging

import pytest
from aiohttp.http_exceptions import BadHttpMessage, LineTooLong

from services.api.workers import ClientErrorFilter


def record_of(error: BaseException) -> logging.LogRecord:
    """The record aiohttp's ``log_exception`` makes for ``error``."""
    logger = logging.getLogger("aiohttp.server")
    exc_info = (type(error), error, error.__traceback__)
    return logger.makeRecord(
        logger.name, logging.ERROR, __file__, 1, "Error handling request from %s", ("127.0.0.1",), exc_info
    )


@pytest.mark.parametrize(
    "error", [LineTooLong(b"/api/v1/videos?q=" + b"a" * 500, 65536), BadHttpMessage("Too many headers received")]
)
def test_a_refused_request_is_one_info_line(error: BaseException, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="aiohttp.server")
    record = record_of(error)
    assert ClientErrorFilter().filter(record)
    assert record.levelno == logging.INFO and record.exc_info is None
    text = record.getMessage()
    assert text.startswith("refused a malformed request: 400 ")
    assert len(text) < 300 and "\n" not in text


def test_it_is_dropped_when_info_is_off(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="aiohttp.server")
    assert not ClientErrorFilter().filter(record_of(BadHttpMessage("garbage")))


def test_a_server_error_keeps_its_level_and_traceback() -> None:
    record = record_of(RuntimeError("a bug"))
    assert ClientErrorFilter().filter(record)
    assert record.levelno == logging.ERROR and record.exc_info is not None
