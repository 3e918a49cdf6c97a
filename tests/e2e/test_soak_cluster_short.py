"""The short failover soak (`make soak-cluster` runs the long one): on cluster mode's three-node
clusters, each node fault once under load, then every video reconciled and every read accounted for."""

from __future__ import annotations

import pytest

from deploy.localstack.cluster import Cluster
from services.common.settings import PROJECT_ROOT
from tests.soak.cluster_run import CLUSTER_FAULT_KINDS, ClusterSoak, cluster_config, failover_seconds
from tests.soak.run import SoakConfig

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]


async def test_losing_a_node_of_each_cluster_loses_nothing_and_fails_no_read(project_cluster: Cluster) -> None:
    # The four faults one after another (each after a quiet gap of a few seconds) outlast
    # `seconds`; a node killed or stopped stays down 2-4 s after its cluster has failed over, and
    # comes back while the next fault (on another cluster) goes on.
    config = cluster_config(
        SoakConfig(
            seconds=30,
            report_dir=PROJECT_ROOT / ".local" / "soak-cluster-short",
            fault_repeats=1,
            outage_seconds=(2.0, 4.0),
        )
    )
    soak = ClusterSoak(config, project_cluster, overlap=True)
    result = await soak.run()
    # The verdict names every problem: missing/duplicated/extra videos in either store or the API
    # walk, dead letters, any failed API read, a failover not seen, writes that paused longer than
    # the failover or did not resume, leaked keys, unclean stops.
    assert result.passed, result.verdict
    assert sorted(fault.kind for fault in result.faults) == sorted(CLUSTER_FAULT_KINDS)
    assert result.counts["visible"] > 0
    assert result.api["failed"] == 0
    for cost in soak.fault_costs():
        # Each fault was met under load, and its cluster was seen failing over.
        assert cost["reads"] > 0 and cost["reads_failed"] == 0, cost
        assert failover_seconds(cost) is not None, cost
