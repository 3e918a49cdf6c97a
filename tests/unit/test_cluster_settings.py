"""The servers' URL lists, the replica count and the queue type, as the settings read them."""

from __future__ import annotations

import os

import pytest

from services.common.settings import load_settings
from services.indexer.settings import Settings as IndexerSettings


@pytest.fixture(autouse=True)
def _no_server_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("AMQP_", "ELASTICSEARCH_")):
            monkeypatch.delenv(name)


def test_one_url_each_is_the_single_node_default() -> None:
    settings = IndexerSettings()
    assert settings.elasticsearch_hosts == ["http://127.0.0.1:9200"]
    assert settings.elasticsearch_replicas is None
    assert settings.elasticsearch_replica_count == 0
    assert settings.amqp_urls == ["amqp://guest:guest@127.0.0.1:5672/"]
    assert settings.amqp_queue_type == "classic"


def test_comma_separated_lists_give_every_node(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ELASTICSEARCH_URL", " http://127.0.0.1:9200/, http://127.0.0.1:9201 ,http://127.0.0.1:9202,")
    monkeypatch.setenv("AMQP_URL", "amqp://u:p@127.0.0.1:5672/,amqps://u:p@127.0.0.1:5673/")
    settings = IndexerSettings()
    assert settings.elasticsearch_hosts == ["http://127.0.0.1:9200", "http://127.0.0.1:9201", "http://127.0.0.1:9202"]
    assert settings.elasticsearch_url == "http://127.0.0.1:9200,http://127.0.0.1:9201,http://127.0.0.1:9202"
    assert settings.amqp_urls == ["amqp://u:p@127.0.0.1:5672/", "amqps://u:p@127.0.0.1:5673/"]


def test_replicas_default_to_one_with_several_nodes_and_an_explicit_value_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ELASTICSEARCH_URL", "http://127.0.0.1:9200,http://127.0.0.1:9201")
    assert IndexerSettings().elasticsearch_replica_count == 1
    monkeypatch.setenv("ELASTICSEARCH_REPLICAS", "2")
    assert IndexerSettings().elasticsearch_replica_count == 2
    monkeypatch.setenv("ELASTICSEARCH_URL", "http://127.0.0.1:9200")
    monkeypatch.setenv("ELASTICSEARCH_REPLICAS", "0")
    assert IndexerSettings().elasticsearch_replica_count == 0


def test_quorum_queues_are_chosen_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMQP_QUEUE_TYPE", "quorum")
    assert IndexerSettings().amqp_queue_type == "quorum"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        # The bad entry is named by its position, never echoed: it may hold a password.
        (
            "ELASTICSEARCH_URL",
            "http://127.0.0.1:9200,127.0.0.1:9201",
            "entry 2 of 2 must be a URL starting with http://",
        ),
        ("ELASTICSEARCH_URL", ",", "must be a URL starting with http:// or https://"),
        ("ELASTICSEARCH_URL", "ftp://127.0.0.1:9200", "must be a URL starting with http:// or https://"),
        ("AMQP_URL", "amqp://u:secret@127.0.0.1:5672/,http://u:secret@127.0.0.1:5673/", "entry 2 of 2 must be a URL"),
        ("AMQP_QUEUE_TYPE", "stream", "'classic' or 'quorum'"),
        ("ELASTICSEARCH_REPLICAS", "-1", "greater than or equal to 0"),
    ],
)
def test_a_bad_entry_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SystemExit) as excinfo:
        load_settings(IndexerSettings)
    message = str(excinfo.value.code)
    assert message.startswith(f"tubewatch: invalid setting {variable}: ")
    assert expected in message
    assert "secret" not in message
    assert "\n" not in message


def test_an_empty_replica_count_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ELASTICSEARCH_REPLICAS", "")
    assert IndexerSettings().elasticsearch_replica_count == 0
