"""`python -m tests.soak` (what `make soak` runs): a bounded chaos soak with a one-line verdict;
with ``--cluster`` (`make soak-cluster`) the failover soak on cluster mode's three-node clusters."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from services.common.settings import PROJECT_ROOT
from tests.soak.cluster_run import ClusterSoak, cluster_config
from tests.soak.run import Soak, SoakConfig


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", "600")))
    parser.add_argument("--repeats", type=int, default=2, help="how often each kind of fault is inflicted")
    parser.add_argument("--cluster", action="store_true", help="the failover soak on the three-node clusters")
    parser.add_argument("--report-dir", type=Path, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    kind = ClusterSoak if args.cluster else Soak
    report_dir = args.report_dir or PROJECT_ROOT / ".local" / ("soak-cluster" if args.cluster else "soak")
    config = SoakConfig(args.seconds, report_dir, fault_repeats=args.repeats)
    if args.cluster:
        config = cluster_config(config)
    result = asyncio.run(kind(config).run())
    print(result.verdict)
    stem = kind.report_stem
    print(f"report: {report_dir / f'{stem}-report.json'}, chart: {report_dir / f'{stem}-chart.png'}")
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
