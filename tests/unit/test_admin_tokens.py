"""ADMIN_TOKENS: parsed as label:token pairs, refused with a reason that never shows a token, masked in every log."""

from __future__ import annotations

import io
import logging

import pytest

from services.api.admin_auth import FailureThrottle, token_label
from services.api.admin_tokens import AdminToken, parse_admin_tokens
from services.api.settings import Settings
from services.common.logs import configure_logging

TOKEN = "t0ken-" + "x" * 30
COLON_TOKEN = "with:colons:" + "y" * 30


def test_pairs_split_at_the_first_colon_on_commas_and_whitespace() -> None:
    tokens = parse_admin_tokens(f"alice:{TOKEN}, ci:{COLON_TOKEN}\n")
    assert [(t.label, t.secret) for t in tokens] == [("alice", TOKEN), ("ci", COLON_TOKEN)]
    assert TOKEN not in repr(tokens)
    assert parse_admin_tokens("") == []


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (TOKEN, "label:token"),
        (f":{TOKEN}", "label:token"),
        ("alice:" + "z" * 31, "at least 32"),
        (f"alice:{TOKEN} alice:{COLON_TOKEN}", "used twice"),
        (f"alice:{TOKEN} bob:{TOKEN}", "listed twice"),
    ],
)
def test_a_bad_entry_is_refused_without_showing_its_token(value: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason) as error:
        parse_admin_tokens(value)
    assert TOKEN not in str(error.value)
    assert "z" * 31 not in str(error.value)


def test_settings_refuse_a_short_token_and_keep_the_value_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADMIN_TOKENS", f"alice:{TOKEN}")
    settings = Settings()
    assert [t.label for t in settings.admin_token_list] == ["alice"]
    assert TOKEN not in repr(settings)
    monkeypatch.setenv("ADMIN_TOKENS", "alice:short")
    with pytest.raises(ValueError, match="at least 32"):
        Settings()


def test_only_a_bearer_header_with_a_configured_token_names_its_label() -> None:
    tokens = [AdminToken("alice", TOKEN), AdminToken("bob", COLON_TOKEN)]
    assert token_label(tokens, f"Bearer {TOKEN}") == "alice"
    assert token_label(tokens, f"bearer {COLON_TOKEN}") == "bob"
    for header in (None, "", TOKEN, f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer ", f"Bearer {TOKEN[:-1]}"):
        assert token_label(tokens, header) is None, header


def test_failures_are_throttled_after_ten_a_minute_until_the_oldest_leaves_the_window() -> None:
    now = [1000.0]
    throttle = FailureThrottle(clock=lambda: now[0])
    for _ in range(10):
        assert throttle.retry_after() is None
        throttle.record_failure()
        now[0] += 1
    assert throttle.retry_after() == 50  # the first failure, at 1000, leaves the window at 1060
    now[0] = 1060.0
    assert throttle.retry_after() is None


def test_admin_tokens_are_masked_in_every_service_log() -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("DEBUG", "json", service="test", environ={"ADMIN_TOKENS": f"alice:{TOKEN},ci:{COLON_TOKEN}"})
        stream = io.StringIO()
        (handler,) = root.handlers
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(stream)
        logging.getLogger("tests.admin").warning("header was Bearer %s", TOKEN, extra={"other": COLON_TOKEN})
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    text = stream.getvalue()
    assert TOKEN not in text and COLON_TOKEN not in text
    assert "<admin token alice>" in text and "<admin token ci>" in text
