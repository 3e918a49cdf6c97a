"""How the clients are set up for clustered servers: every node given, the writes' concern, retries."""

from __future__ import annotations

from services.common.clients import (
    INTERACTIVE_MONGO_TIMEOUT_MS,
    SERVICE_MONGO_TIMEOUT_MS,
    mongo_client,
    open_elasticsearch,
    split_urls,
)
from services.common.topology import queue_arguments


async def test_mongo_writes_wait_for_a_journaled_majority_and_retry_once() -> None:
    client = mongo_client("mongodb://127.0.0.1:1,127.0.0.1:2/?replicaSet=rs0")
    try:
        assert client.write_concern.document == {"w": "majority", "j": True}
        assert client.options.retry_writes and client.options.retry_reads
        # A background service waits out an election (about 10-12 s) rather than failing.
        assert client.options.server_selection_timeout == SERVICE_MONGO_TIMEOUT_MS / 1000 >= 15
    finally:
        await client.close()
    api = mongo_client("mongodb://127.0.0.1:1/", INTERACTIVE_MONGO_TIMEOUT_MS)
    try:
        assert api.options.server_selection_timeout == 3
    finally:
        await api.close()


async def test_elasticsearch_gets_every_node_and_retries_enough_to_try_each() -> None:
    hosts = ",".join(f"http://127.0.0.1:{9200 + i}" for i in range(5))
    async with open_elasticsearch(hosts) as es:
        assert sorted(node.base_url for node in es.transport.node_pool.all()) == split_urls(hosts)
        assert es._max_retries == 4
    async with open_elasticsearch("http://127.0.0.1:9200") as es:
        assert es._max_retries == 3
    async with open_elasticsearch("http://127.0.0.1:9200,http://127.0.0.1:9201", max_retries=1) as es:
        assert es._max_retries == 1


def test_classic_queues_keep_their_arguments() -> None:
    assert queue_arguments("classic") == {}
    assert queue_arguments("classic", dead_letter_exchange="q.dead") == {"x-dead-letter-exchange": "q.dead"}
    assert queue_arguments("classic", message_ttl_ms=500, dead_letter_exchange="x", dead_letter_routing_key="work") == {
        "x-message-ttl": 500,
        "x-dead-letter-exchange": "x",
        "x-dead-letter-routing-key": "work",
    }


def test_quorum_queues_dead_letter_at_least_once() -> None:
    assert queue_arguments("quorum") == {"x-queue-type": "quorum"}
    assert queue_arguments("quorum", dead_letter_exchange="q.dead") == {
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": "q.dead",
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }
    delay = queue_arguments("quorum", message_ttl_ms=500, dead_letter_exchange="x", dead_letter_routing_key="work")
    assert delay["x-message-ttl"] == 500 and delay["x-dead-letter-routing-key"] == "work"
    assert delay["x-dead-letter-strategy"] == "at-least-once"
