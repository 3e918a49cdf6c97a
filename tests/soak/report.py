"""The soak's chart: ingest rate, API latency and memory over time, with the fault windows shaded."""

from __future__ import annotations

import itertools
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # no display here: render straight to PNG
import matplotlib.pyplot as plt

if TYPE_CHECKING:
    from tests.soak.run import ApiSample, FaultWindow, Sample

FAULT_COLOURS = {
    "kill_fetcher": "#f4a261",
    "kill_indexer": "#e76f51",
    "kill_api": "#e63946",
    "stop_elasticsearch": "#457b9d",
    "stop_mongodb": "#2a9d8f",
    "stop_rabbitmq": "#8d99ae",
    "pause_leader": "#b5838d",
}


def write_chart(path: Path, samples: list[Sample], api: list[ApiSample], faults: list[FaultWindow]) -> None:
    fig, (ingest_ax, latency_ax, memory_ax) = plt.subplots(3, 1, figsize=(12, 10), sharex=True)

    counted = [(s.t, s.videos_in_mongo) for s in samples if s.videos_in_mongo is not None]
    rates = [(t1, max(0.0, (c1 - c0) / (t1 - t0))) for (t0, c0), (t1, c1) in itertools.pairwise(counted) if t1 > t0]
    if rates:
        ingest_ax.plot(*zip(*rates, strict=True), color="#264653")
    ingest_ax.set_ylabel("videos/s into MongoDB")

    buckets: dict[int, list[float]] = defaultdict(list)
    for sample in api:
        if sample.status == 200:
            buckets[int(sample.t // 5) * 5].append(sample.latency_ms)
    if buckets:
        xs = sorted(buckets)
        p50 = [sorted(buckets[x])[len(buckets[x]) // 2] for x in xs]
        p99 = [sorted(buckets[x])[min(len(buckets[x]) - 1, int(0.99 * len(buckets[x])))] for x in xs]
        latency_ax.plot(xs, p50, label="p50", color="#2a9d8f")
        latency_ax.plot(xs, p99, label="p99", color="#e76f51")
    errors = [s.t for s in api if s.status == 0 or s.status >= 500]
    if errors:
        latency_ax.scatter(errors, [0] * len(errors), marker="x", color="#e63946", label="failed request")
    latency_ax.set_ylabel("API latency (ms)")
    latency_ax.legend(loc="upper right")

    names = sorted({name for s in samples for name in s.rss_mib})
    for name in names:
        points = [(s.t, s.rss_mib[name]) for s in samples if s.rss_mib.get(name) is not None]
        if points:
            memory_ax.plot(*zip(*points, strict=True), label=name)
    memory_ax.set_ylabel("RSS (MiB)")
    memory_ax.set_xlabel("seconds since start")
    memory_ax.legend(loc="upper right", ncol=3, fontsize="small")

    seen: set[str] = set()
    for fault in faults:
        for ax in (ingest_ax, latency_ax, memory_ax):
            ax.axvspan(
                fault.started,
                max(fault.ended, fault.started + 0.5),
                alpha=0.25,
                color=FAULT_COLOURS.get(fault.kind, "grey"),
                label=None if fault.kind in seen or ax is not ingest_ax else fault.kind,
            )
        seen.add(fault.kind)
    ingest_ax.legend(loc="upper right", ncol=4, fontsize="small")
    fig.suptitle("tubewatch soak: ingest, API latency, memory; shaded: fault windows")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
