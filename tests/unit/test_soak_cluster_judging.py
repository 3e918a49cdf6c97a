"""How the failover soak judges a run from its samples: write pauses are charged to the right fault,
a pause longer than the failover (plus the pipeline's cadence) or writes that never resume fail
the run, and reads during each fault are counted."""

from __future__ import annotations

from pathlib import Path

from tests.soak.cluster_run import WRITE_PAUSE_SLACK_SECONDS, ClusterSoak, cluster_config
from tests.soak.run import ApiSample, FaultWindow, Sample, SoakConfig


def soak_with(counts: list[tuple[float, int]], faults: list[FaultWindow]) -> ClusterSoak:
    soak = ClusterSoak(cluster_config(SoakConfig(seconds=30, report_dir=Path("/nonexistent"))))
    soak.samples = [Sample(t, count, {}) for t, count in counts]
    soak.faults = faults
    return soak


def steady(start: float, end: float, count: int = 0) -> list[tuple[float, int]]:
    """A count growing every half second from ``start`` to ``end``."""
    steps = int((end - start) * 2)
    return [(start + i / 2, count + i) for i in range(steps + 1)]


def test_a_pause_is_charged_to_the_fault_it_overlaps_not_to_an_earlier_one_whose_recovery_it_meets() -> None:
    earlier = FaultWindow("kill_elasticsearch_primary", "es-1", 10.0, 40.0, {"primary_promoted_s": 0.6})
    later = FaultWindow("kill_mongodb_primary", "mongo-2", 44.0, 70.0, {"election_s": 13.0})
    # Writes stop at 43 s (just before the second fault) and come back at 57 s.
    counts = steady(0, 43) + steady(57, 90, count=200)
    soak = soak_with(counts, [earlier, later])
    costs = {cost["kind"]: cost for cost in soak.fault_costs()}
    assert costs["kill_mongodb_primary"]["write_pause_s"] == 14.0
    assert costs["kill_elasticsearch_primary"]["write_pause_s"] == 0.5
    assert all(cost["writes_resumed"] for cost in costs.values())
    assert soak.judge() == []  # 14 s is within the 13 s election and the slack


def test_writes_pausing_well_past_the_failover_fail_the_run() -> None:
    fault = FaultWindow("stop_rabbitmq_leader", "rabbit-1", 10.0, 30.0, {"leader_elected_s": 5.0})
    pause = 5.0 + WRITE_PAUSE_SLACK_SECONDS + 4
    counts = steady(0, 11) + steady(11 + pause, 60, count=100)
    [problem] = soak_with(counts, [fault]).judge()
    assert "stop_rabbitmq_leader on rabbit-1: writes paused" in problem and "failover (5.0 s)" in problem


def test_writes_that_never_resume_fail_the_run() -> None:
    fault = FaultWindow("kill_mongodb_primary", "mongo-1", 10.0, 30.0, {"election_s": 13.0})
    problems = soak_with(steady(0, 10), [fault]).judge()
    assert "kill_mongodb_primary on mongo-1: writes did not resume after the fault" in problems


def test_reads_during_a_fault_and_its_recovery_are_counted_with_their_failures() -> None:
    fault = FaultWindow("stepdown_mongodb", "mongo-1", 10.0, 12.0, {"election_s": 0.1})
    soak = soak_with(steady(0, 40), [fault])
    soak.api_samples = [
        ApiSample(5.0, "list", 200, 3.0, "elasticsearch"),  # before: not the fault's
        ApiSample(11.0, "list", 200, 40.0, "elasticsearch"),
        ApiSample(15.0, "search", 503, 2.0, ""),
        ApiSample(21.0, "walk", 200, 8.0, "elasticsearch"),  # 9 s after its end: still its recovery
        ApiSample(23.0, "list", 200, 1.0, "elasticsearch"),  # past the recovery
    ]
    [cost] = soak.fault_costs()
    assert (cost["reads"], cost["reads_failed"], cost["read_ms_max"]) == (2, 1, 40.0)
    assert soak.baseline()["reads"] == 1  # only the one after the recovery (the first is warm-up)
