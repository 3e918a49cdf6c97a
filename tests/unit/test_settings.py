from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from services.common.settings import PROJECT_ROOT, load_settings
from services.fetcher.settings import Settings as FetcherSettings


def test_keys_split_on_commas_and_whitespace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YOUTUBE_API_KEYS", " key-one,key-two\n key-three  ,, ")
    monkeypatch.setenv("SEARCH_QUERIES", "cricket, world cup ,")
    settings = FetcherSettings()
    assert settings.youtube_api_keys == ["key-one", "key-two", "key-three"]
    assert settings.search_queries == ["cricket", "world cup"]


def test_defaults_match_the_documented_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("YOUTUBE_", "SEARCH_", "AMQP_", "MONGODB_", "POLL_")):
            monkeypatch.delenv(name)
    settings = FetcherSettings()
    assert settings.youtube_api_keys == []
    assert settings.youtube_api_url == "https://www.googleapis.com/youtube/v3"
    assert settings.search_queries == ["cricket"]
    assert settings.poll_interval_seconds == 10
    assert settings.amqp_url == "amqp://guest:guest@127.0.0.1:5672/"
    assert settings.amqp_exchange == "tubewatch.videos"
    assert settings.amqp_queue == "tubewatch.videos.index"
    assert settings.mongodb_url == "mongodb://127.0.0.1:27017/?replicaSet=rs0"
    assert settings.mongodb_database == "tubewatch"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("POLL_INTERVAL_SECONDS", "often"),
        ("POLL_INTERVAL_SECONDS", "-1"),
        ("AMQP_URL", "http://127.0.0.1:5672/"),
        ("LOG_LEVEL", "chatty"),
        ("SOURCES_FROM_ENV", "sometimes"),
    ],
)
def test_a_wrong_value_names_the_variable(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SystemExit) as excinfo:
        load_settings(FetcherSettings)
    message = str(excinfo.value.code)
    assert message.startswith(f"tubewatch: invalid setting {variable}:")
    assert "\n" not in message


@pytest.mark.parametrize("service", ["api", "indexer", "fetcher", "notifier", "youtube_emulator"])
def test_a_service_with_a_wrong_value_exits_with_one_line_and_no_traceback(service: str) -> None:
    env = {**os.environ, "LOG_LEVEL": "chatty", "YOUTUBE_API_KEYS": "k"}
    result = subprocess.run(
        [sys.executable, "-m", f"services.{service}"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("tubewatch: invalid setting LOG_LEVEL: ")
    assert "Traceback" not in result.stderr


def test_a_busy_port_is_one_clear_line_naming_the_variable() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {**os.environ, "EMULATOR_PORT": str(port)}
        result = subprocess.run(
            [sys.executable, "-m", "services.youtube_emulator"],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert f"tubewatch: cannot listen on 127.0.0.1:{port} (set EMULATOR_PORT)" in result.stderr
