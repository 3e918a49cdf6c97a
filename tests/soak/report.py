"""The soak's report: a chart (ingest rate, API latency and memory over time, fault windows shaded)
and a Markdown summary of the JSON report.

`python -m tests.soak.report REPORT.json OUT.md` writes the summary of a finished run (how
docs/soak-report.md is made from `make soak`'s report).
"""

from __future__ import annotations

import itertools
import json
import os
import sys
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib
import psutil

matplotlib.use("Agg")  # no display here: render straight to PNG
import matplotlib.pyplot as plt

if TYPE_CHECKING:
    from tests.soak.run import ApiSample, FaultWindow, Sample

RATE_SECONDS = 2.0
FAULT_COLOURS = {
    "kill_fetcher": "#f4a261",
    "kill_indexer": "#e76f51",
    "kill_api": "#e63946",
    "stop_elasticsearch": "#457b9d",
    "stop_mongodb": "#2a9d8f",
    "stop_rabbitmq": "#8d99ae",
    "pause_leader": "#b5838d",
    "kill_elasticsearch_primary": "#457b9d",
    "stepdown_mongodb": "#8ab17d",
    "kill_mongodb_primary": "#2a9d8f",
    "stop_rabbitmq_leader": "#8d99ae",
}


def write_chart(
    path: Path,
    samples: list[Sample],
    api: list[ApiSample],
    faults: list[FaultWindow],
    title: str = "tubewatch soak: ingest, API latency, memory; shaded: fault windows",
) -> None:
    fig, (ingest_ax, latency_ax, memory_ax) = plt.subplots(3, 1, figsize=(12, 10), sharex=True)

    counted = [(s.t, s.videos_in_mongo) for s in samples if s.videos_in_mongo is not None]
    # Rates over at least RATE_SECONDS: finer samples (the failover soak's) would show the indexer's
    # batches, not the flow.
    spaced = counted[:1]
    for t, count in counted[1:]:
        if t - spaced[-1][0] >= RATE_SECONDS:
            spaced.append((t, count))
    rates = [(t1, max(0.0, (c1 - c0) / (t1 - t0))) for (t0, c0), (t1, c1) in itertools.pairwise(spaced)]
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
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def reconciliation_lines(counts: dict[str, Any]) -> list[str]:
    """The reconciliation's table: what the emulator showed against each store and the API walk."""
    return [
        "## Reconciliation (the emulator's ground truth against every store)",
        "",
        "| | videos | missing | duplicated | extra |",
        "|---|---|---|---|---|",
        f"| made visible by the emulator | {counts['visible']} | | | |",
        f"| MongoDB | {counts['mongodb']['documents']} | {counts['mongodb']['missing']} | 0 (unique index) "
        f"| {counts['mongodb']['extra']} |",
        f"| Elasticsearch | {counts['elasticsearch']['documents']} | {counts['elasticsearch']['missing']} "
        f"| 0 (`_id` = video id) | {counts['elasticsearch']['extra']} |",
        f"| API cursor walk | {counts['api']['listed']} | {counts['api']['missing']} | {counts['api']['duplicated']} "
        f"| {counts['api']['extra']} |",
    ]


def footer_lines(report: dict[str, Any], chart: str) -> list[str]:
    """Both reports' end: the problems found, then the chart."""
    return [
        "",
        f"Problems: {'; '.join(report['problems']) if report['problems'] else 'none'}.",
        "",
        f"![Ingest rate, API latency and memory over time; shaded: fault windows]({chart})",
        "",
    ]


def write_summary(path: Path, report: dict[str, Any], chart: str = "soak-chart.png") -> None:
    """A Markdown summary of a soak report: verdict, reconciliation, faults, API, memory, chart."""
    counts, api, config = report["counts"], report["api"], report["config"]
    peak: dict[str, float] = {}
    for sample in report.get("samples", []):
        for name, rss in sample["rss_mib"].items():
            if rss is not None:
                peak[name] = max(peak.get(name, 0.0), rss)
    by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for fault in report["faults"]:
        by_kind[fault["kind"]].append(fault)
    machine = report.get("machine", {})
    lines = [
        "# Soak report",
        "",
        f"**{report['verdict']}**",
        "",
        f"Finished {report.get('finished_at', 'unknown')} on {machine.get('cpus', '?')} cores, "
        f"{machine.get('memory_gb', '?')} GB; {float(config['seconds']):.0f} s of chaos "
        f"({config['videos_per_minute']} new videos per minute per query, seed {config['seed']}), then draining. "
        "Made by `make soak` (`tests/soak/`), summarised with `python -m tests.soak.report`.",
        "",
        *reconciliation_lines(counts),
        "",
        f"Per query: {', '.join(f'{q} {n}' for q, n in counts['per_query'].items())}. "
        f"Queue depth at the end: {counts['queue_depth']}; dead letters: {counts['dead_letters']}.",
        "",
        "## Faults",
        "",
        "| fault | times | targets | longest window (s) |",
        "|---|---|---|---|",
    ]
    for kind, windows in sorted(by_kind.items()):
        longest = max(w["ended"] - w["started"] for w in windows)
        targets = ", ".join(sorted({w["target"] for w in windows}))
        lines.append(f"| {kind} | {len(windows)} | {targets} | {longest:.1f} |")
    lines += [
        "",
        f"Restarts by the harness: {', '.join(f'{n} {c}' for n, c in report.get('restarts', {}).items())}.",
        "",
        "## API under load",
        "",
        f"{api['requests']} requests (list, search, cursor walks) during the run; p50 {api['latency_ms_p50']} ms, "
        f"p99 {api['latency_ms_p99']} ms. Failed: {api['failed']}; of those, outside the windows where a dependency "
        f"or the API itself was down: {api['failed_outside_dependency_windows']}. While Elasticsearch was "
        f"down, {api['ok_during_es_downtime']} requests succeeded, {api['served_by_mongodb_during_es_downtime']} "
        "of them served from MongoDB.",
        "",
        "## Memory (peak RSS, MiB)",
        "",
        "| process | peak |",
        "|---|---|",
        *(f"| {name} | {value:.0f} |" for name, value in sorted(peak.items())),
        *footer_lines(report, chart),
    ]
    path.write_text("\n".join(lines))


# The harness's name for each cluster's failover time (see tests/soak/cluster_run.py).
FAILOVER_KEYS = ("primary_promoted_s", "election_s", "leader_elected_s")


def _cell(value: Any, unit: str = "") -> str:
    return "-" if value is None else f"{value}{unit}"


def write_cluster_summary(path: Path, report: dict[str, Any], chart: str = "soak-cluster-chart.png") -> None:
    """A Markdown summary of a failover soak's report: verdict, reconciliation, each fault's cost."""
    counts, api, config = report["counts"], report["api"], report["config"]
    machine, base = report.get("machine", {}), report["baseline"]
    peak = report["cluster"].get("nodes_rss_mib_peak")
    nodes = f"The server nodes' RSS together peaked at {peak:,} MiB. " if peak else ""
    loads = [sample["load_1m"] for sample in report.get("samples", []) if sample.get("load_1m") is not None]
    load = f" (1-minute load average {sum(loads) / len(loads):.1f} mean, {max(loads):.1f} peak)" if loads else ""
    lines = [
        "# Failover soak report (three-node clusters)",
        "",
        f"**{report['verdict']}**",
        "",
        f"Finished {report.get('finished_at', 'unknown')} on {machine.get('cpus', '?')} cores, "
        f"{machine.get('memory_gb', '?')} GB{load}, with the {report['cluster']['size']}-node Elasticsearch, MongoDB "
        f"and RabbitMQ clusters of `make up CLUSTER={report['cluster']['size']}` on this one machine; "
        f"{float(config['seconds']):.0f} s of faults ({config['videos_per_minute']} new videos per minute per "
        f"query, seed {config['seed']}), then draining. One fetcher, one indexer and two API processes "
        "(`API_WORKERS=2`) with quorum queues, `w: majority` writes and every node's URL; three clients "
        "listing, searching and walking cursors throughout. Made by `make soak-cluster` (`tests/soak/`).",
        "",
        *reconciliation_lines(counts),
        "",
        f"Queue depth at the end: {counts['queue_depth']}; dead letters: {counts['dead_letters']}. {nodes}"
        f"API reads: {api['requests']}, failed: {api['failed']} (none is excused: a majority of every "
        f"cluster was up throughout); p50 {api['latency_ms_p50']} ms, p99 {api['latency_ms_p99']} ms.",
        "",
        "## What each fault cost",
        "",
        "Seconds from the fault's start, as the harness saw them: the failover (a primary shard promoted, "
        "a MongoDB primary elected, a quorum queue leader elected), the node started again, its cluster "
        "whole again (Elasticsearch green, every member back). Write pause: the longest time without "
        "MongoDB's video count growing, from the fault to 10 s after it. Reads: the API reads made "
        "meanwhile and their latency.",
        "",
        "| fault | node | failover (s) | restarted (s) | whole (s) | write pause (s) | reads | failed "
        "| p50 (ms) | p99 (ms) | max (ms) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for cost in report["fault_costs"]:
        failover = next((cost[key] for key in FAILOVER_KEYS if key in cost), None)
        lines.append(
            f"| {cost['kind']} | {cost['target']} | {_cell(failover)} | {_cell(cost.get('restarted_s'))} "
            f"| {_cell(cost.get('whole_s'))} | {_cell(cost['write_pause_s'])} | {cost['reads']} "
            f"| {cost['reads_failed']} | {_cell(cost['read_ms_p50'])} | {_cell(cost['read_ms_p99'])} "
            f"| {_cell(cost['read_ms_max'])} |"
        )
    lines += [
        f"| *no fault* | | | | | {_cell(base['write_pause_s'])} | {base['reads']} | | {_cell(base['read_ms_p50'])} "
        f"| {_cell(base['read_ms_p99'])} | {_cell(base['read_ms_max'])} |",
        *footer_lines(report, chart),
    ]
    path.write_text("\n".join(lines))


def summary_time(report_path: Path) -> str:
    return datetime.fromtimestamp(report_path.stat().st_mtime, UTC).strftime("%Y-%m-%d %H:%M UTC")


if __name__ == "__main__":
    source, target = Path(sys.argv[1]), Path(sys.argv[2])
    data = json.loads(source.read_text())
    data.setdefault("finished_at", summary_time(source))
    # Reports written before the machine was recorded: summarised on the machine that ran them.
    data.setdefault("machine", {"cpus": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30)})
    (write_cluster_summary if "fault_costs" in data else write_summary)(target, data)
