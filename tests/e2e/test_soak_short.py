"""The short chaos soak (`make soak` runs the long one): every fault once, then every video reconciled."""

from __future__ import annotations

from services.common.settings import PROJECT_ROOT
from tests.private_stack import PrivateStack
from tests.soak.run import Soak, SoakConfig


async def test_short_soak_loses_nothing_duplicates_nothing_and_leaks_no_key(private_stack: PrivateStack) -> None:
    # The seven faults one after another (each after its quiet gap) outlast `seconds`: the run lasts
    # as long as they do. A stopped server stays down 2-4 s on top of its stop and start: its clients
    # meet refused connections at once, so every recovery path still runs.
    config = SoakConfig(
        seconds=30,
        report_dir=PROJECT_ROOT / ".local" / "soak-short",
        fault_repeats=1,
        outage_seconds=(2.0, 4.0),
    )
    # On the session's private servers (already up for the outage tests): the soak stops and starts
    # each of them, and leaves them running.
    result = await Soak(config, private_stack).run()
    # The verdict names every problem: missing/duplicated/extra videos, dead letters, unexcused API
    # errors, reads not served from MongoDB during the ES outage, leaked keys, unclean stops.
    assert result.passed, result.verdict
    assert {fault.kind for fault in result.faults} == {
        "kill_fetcher",
        "kill_indexer",
        "kill_api",
        "stop_elasticsearch",
        "stop_mongodb",
        "stop_rabbitmq",
        "pause_leader",
    }
    assert result.counts["visible"] > 0
