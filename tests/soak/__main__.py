"""`python -m tests.soak` (what `make soak` runs): a bounded chaos soak with a one-line verdict."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from services.common.settings import PROJECT_ROOT
from tests.soak.run import Soak, SoakConfig


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", "600")))
    parser.add_argument("--repeats", type=int, default=2, help="how often each kind of fault is inflicted")
    parser.add_argument("--report-dir", type=Path, default=PROJECT_ROOT / ".local" / "soak")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    result = asyncio.run(Soak(SoakConfig(args.seconds, args.report_dir, fault_repeats=args.repeats)).run())
    print(result.verdict)
    print(f"report: {args.report_dir / 'soak-report.json'}, chart: {args.report_dir / 'soak-chart.png'}")
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
