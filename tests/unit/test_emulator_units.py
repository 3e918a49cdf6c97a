"""Building blocks: page tokens, timestamps, ids, escaping, settings, clock."""

from __future__ import annotations

import pytest

from services.youtube_emulator.clock import Clock
from services.youtube_emulator.content import html_escape, search_snippet
from services.youtube_emulator.errors import render_json
from services.youtube_emulator.ids import VideoIdCodec, channel_id, etag, project_number
from services.youtube_emulator.settings import Settings
from services.youtube_emulator.timestamps import format_timestamp, parse_rfc3339
from services.youtube_emulator.tokens import PageToken, decode_page_token
from services.youtube_emulator.video import iso_duration


@pytest.mark.parametrize(
    ("offset", "previous", "token"),
    [
        (1, False, "CAEQAA"),
        (50, False, "CDIQAA"),
        (50, True, "CDIQAQ"),
        (500, False, "CPQDEAA"),
        (500, True, "CPQDEAE"),
    ],
)
def test_page_tokens_match_youtube(offset: int, previous: bool, token: str) -> None:
    assert PageToken(offset, previous).encode() == token
    assert decode_page_token(token) == PageToken(offset, previous)


@pytest.mark.parametrize("token", ["", "!!!", "CAEQAg", "GAE", "CAEQAAgB", "CIAAAAAAAAAAAAAB", "x" * 80])
def test_bad_page_tokens(token: str) -> None:
    with pytest.raises(ValueError):
        decode_page_token(token)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z"),
        ("2000-04-04T15:51:12.000Z", "2000-04-04T15:51:12Z"),
        ("2015-05-01T00:00:00+01:00", "2015-04-30T23:00:00Z"),
        ("2015-05-01T00:00:00-07:30", "2015-05-01T07:30:00Z"),
        ("2015-05-01T00:00:00.123456789Z", "2015-05-01T00:00:00Z"),
    ],
)
def test_accepted_timestamps(text: str, expected: str) -> None:
    parsed = parse_rfc3339(text)
    assert parsed is not None
    assert format_timestamp(parsed) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2024-01-01T00:00:00",
        "garbage",
        "2024-01-01",
        "2024-02-30T00:00:00Z",
        "2024-01-01T24:00:00Z",
        "2024-01-01T00:00:00.Z",
        "2024-01-01T00:00:00.1234567890Z",
        "2024-01-01T00:00:00+0100",
        "2024-01-01 00:00:00Z",
    ],
)
def test_rejected_timestamps(text: str) -> None:
    assert parse_rfc3339(text) is None


def test_video_id_codec_round_trip_and_shape() -> None:
    codec = VideoIdCodec(seed=1)
    ids = {codec.encode(tag, index) for tag in (0, 77, 0xFFFF) for index in (0, 1, 2**39)}
    assert len(ids) == 9
    for video_id in ids:
        assert len(video_id) == 11
        # 64 bits in 11 characters: the last one takes only 16 values, as on YouTube
        assert video_id[-1] in "AEIMQUYcgkosw048"
    assert codec.decode(codec.encode(77, 123)) == (77, 123)
    assert VideoIdCodec(seed=2).decode(codec.encode(77, 123)) != (77, 123)
    assert codec.decode("short") is None
    assert codec.decode("aB3dE5fG7h!") is None


def test_channel_ids_etags_project_numbers() -> None:
    cid = channel_id(1, "Some Channel")
    assert cid.startswith("UC")
    assert len(cid) == 24
    assert cid[-1] in "AQgw"
    assert len(etag("anything", 1, 2)) == 27
    assert etag("a") != etag("b")
    assert project_number("projA") == project_number("projA")
    assert len(project_number("projB")) == 12


def test_html_escape_and_snippet() -> None:
    assert html_escape('Kohli\'s 50th & "that" <b>') == "Kohli&#39;s 50th &amp; &quot;that&quot; &lt;b&gt;"
    assert html_escape("&amp;") == "&amp;amp;"
    long = "word " * 60
    snippet = search_snippet(long)
    assert snippet.endswith(" ...")
    assert len(snippet) <= 164
    assert search_snippet("short\n\ntext") == "short text"


def test_render_json_escapes_angle_brackets() -> None:
    assert render_json({"m": "<a>"}, pretty=False) == b'{"m":"\\u003ca\\u003e"}'
    assert render_json({"m": "é"}, pretty=False) == '{"m":"é"}'.encode()


def test_iso_durations() -> None:
    assert iso_duration(0) == "P0D"
    assert iso_duration(45) == "PT45S"
    assert iso_duration(761) == "PT12M41S"
    assert iso_duration(3600) == "PT1H"
    assert iso_duration(3723) == "PT1H2M3S"


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SEARCH_QUERIES", "EMULATOR_QUERIES", "EMULATOR_KEY_PROJECTS", "EMULATOR_KEY_BUDGETS"):
        monkeypatch.delenv(name, raising=False)
    defaults = Settings()
    assert defaults.emulator_port == 8090
    assert defaults.stream_queries == ["cricket"]
    assert defaults.emulator_quota_model == "search_bucket"
    assert defaults.emulator_search_calls_per_day == 100
    assert defaults.emulator_units_per_day == 10_000
    monkeypatch.setenv("SEARCH_QUERIES", "cricket, Formula 1 ")
    monkeypatch.setenv("EMULATOR_QUERIES", "CRICKET,tennis")
    monkeypatch.setenv("EMULATOR_KEY_PROJECTS", "k1:projA,k2:projA, k3:projB")
    monkeypatch.setenv("EMULATOR_KEY_BUDGETS", "good1:2,good2:100")
    monkeypatch.setenv("EMULATOR_INVALID_KEYS", "bad1 bad2")
    monkeypatch.setenv("EMULATOR_QUOTA_MODEL", "units")
    settings = Settings()
    assert settings.stream_queries == ["cricket", "Formula 1", "tennis"]
    assert settings.emulator_key_projects == {"k1": "projA", "k2": "projA", "k3": "projB"}
    assert settings.emulator_key_budgets == {"good1": 2, "good2": 100}
    assert settings.emulator_invalid_keys == ["bad1", "bad2"]
    assert settings.emulator_quota_model == "units"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("EMULATOR_KEY_BUDGETS", "good1"),
        ("EMULATOR_KEY_BUDGETS", "good1:-1"),
        ("EMULATOR_FAULT_5XX", "1.5"),
        ("EMULATOR_QUOTA_MODEL", "free"),
        ("EMULATOR_VIDEOS_PER_MINUTE", "0"),
    ],
)
def test_bad_settings(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError):
        Settings()


def test_clock() -> None:
    real = [1000.0]
    clock = Clock(lambda: real[0])
    assert clock.now() == 1000.0
    clock.advance(50)
    real[0] += 10
    assert clock.now() == 1060.0
    clock.set(5000.0, frozen=True)
    real[0] += 10
    assert clock.now() == 5000.0
    clock.advance(5)
    assert clock.now() == 5005.0
    clock.freeze(False)
    real[0] += 1
    assert clock.now() == 5006.0
    clock.reset()
    assert clock.now() == real[0]
