"""``make bench-api-levers``: what each Elasticsearch lever of the API's listings costs, measured alone.

Builds two private indexes of the same ``--videos`` synthetic videos (deploy/bench/api.py's), one
with the catalogue's settings as they are and one with the index sorted by (``published_at``,
``video_id``) descending, then sends each the same crowd of listing searches, written by the API's own
query builder (services/common/video_query.py): one- and two-word q, prefixes, channels, one-day
windows, plain pages, and deep pages (``search_after`` at random points of the catalogue), newest
first, ``size`` 21 as the API asks. Each index is measured with ``track_total_hits`` at the API's
1,000, off, and exact, with Elasticsearch's request cache off so every search runs. Reports, per
combination, searches a second at ``--concurrency`` in flight, and the p50/p99 of Elasticsearch's own
``took`` and of the round trip. Results in ``.local/bench/api-levers.json``.

A benchmark, not a test: figures depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from typing import Any

from elasticsearch import AsyncElasticsearch
from tqdm import tqdm

from deploy.bench.api import BASE_TIME, CHANNELS, COMMON_WORD, WORDS, make_event, stored_document
from services.common.catalogue import SEARCH_INDEX_MAPPINGS, SEARCH_INDEX_SETTINGS
from services.common.settings import PROJECT_ROOT, StackSettings
from services.common.timefmt import to_epoch_ms
from services.common.video_query import Filters, after_bound, build_query, sort_clauses
from services.indexer.es_bulk import bulk_index

RESULTS = PROJECT_ROOT / ".local" / "bench" / "api-levers.json"
PREFIX = "tubewatch-bench-levers"
INDEX_SORT = {"sort.field": ["published_at", "video_id"], "sort.order": ["desc", "desc"]}
TOTALS: dict[str, int | bool] = {"totals_1000": 1000, "totals_off": False, "totals_exact": True}


async def load(es: AsyncElasticsearch, indexes: list[str], count: int, batch: int) -> None:
    rng = random.Random(20261124)
    now = datetime.now(UTC)
    with tqdm(total=count, unit="videos", desc="loading", file=sys.stderr) as progress:
        for start in range(0, count, batch):
            docs = [stored_document(make_event(n, rng), now) for n in range(start, min(count, start + batch))]
            for index in indexes:
                rejected = await bulk_index(es, index, docs)
                if rejected:
                    raise SystemExit(f"bench-api-levers: rejected: {list(rejected.values())[:3]}")
            progress.update(len(docs))


def crowd_filters(rng: random.Random, count: int) -> list[tuple[str, Filters, list[Any] | None]]:
    """(kind, filters, search_after or None) drawn like a crowd's listings."""
    vocabulary = [*WORDS, COMMON_WORD]
    year_ms = 365 * 86_400_000
    first_ms = to_epoch_ms(BASE_TIME) - year_ms
    drawn: list[tuple[str, Filters, list[Any] | None]] = []
    for _ in range(count):
        kind = rng.choice(("q_words", "q_prefix", "channel", "day_window", "plain", "deep"))
        words = " ".join(rng.sample(vocabulary, rng.choice((1, 1, 2))))
        if kind == "q_words":
            drawn.append((kind, Filters(q=words), None))
        elif kind == "q_prefix":
            word = rng.choice(vocabulary)
            drawn.append((kind, Filters(q=word[: max(2, rng.randrange(2, len(word) + 1))]), None))
        elif kind == "channel":
            drawn.append((kind, Filters(channel_ids=(f"UC{rng.randrange(CHANNELS):022d}",)), None))
        elif kind == "day_window":
            day = first_ms + rng.randrange(365) * 86_400_000
            drawn.append((kind, Filters(published_after_ms=day, published_before_ms=day + 86_400_000), None))
        elif kind == "plain":
            drawn.append((kind, Filters(), None))
        else:
            at = first_ms + rng.randrange(year_ms)
            q = words if rng.random() < 0.3 else None
            drawn.append((kind, Filters(q=q), [at, "zzzzzzzzzzz"]))
    return drawn


async def measure(
    es: AsyncElasticsearch,
    index: str,
    crowd: list[tuple[str, Filters, list[Any] | None]],
    totals: int | bool,
    concurrency: int,
    *,
    bound_after: bool = True,
) -> dict[str, Any]:
    took: list[float] = []
    round_trip: list[float] = []
    took_by_kind: dict[str, list[float]] = {}
    queue = list(crowd)

    async def worker() -> None:
        while queue:
            kind, filters, after = queue.pop()
            body: dict[str, Any] = {
                "query": build_query(filters, None, scored=False),
                "sort": sort_clauses("-published_at"),
                "size": 21,
                "track_total_hits": totals,
            }
            if after is not None:
                body["search_after"] = after
                bound = after_bound("-published_at", after) if bound_after else None
                if bound is not None:
                    body["query"] = {"bool": {"filter": [bound], "must": [body["query"]]}}
            started = time.perf_counter()
            response = await es.search(index=index, body=body, request_cache=False, filter_path="took,hits.total")
            round_trip.append((time.perf_counter() - started) * 1000)
            took.append(float(response["took"]))
            took_by_kind.setdefault(kind, []).append(float(response["took"]))

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started

    def pct(values: list[float], p: int) -> float:
        return round(statistics.quantiles(values, n=100)[p - 1], 2)

    return {
        "searches_per_second": round(len(crowd) / elapsed),
        "took_p50_ms": pct(took, 50),
        "took_p99_ms": pct(took, 99),
        "round_trip_p50_ms": pct(round_trip, 50),
        "round_trip_p99_ms": pct(round_trip, 99),
        "took_by_kind_p50_p99_ms": {
            kind: [pct(values, 50), pct(values, 99)] for kind, values in sorted(took_by_kind.items())
        },
    }


async def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m deploy.bench.api_levers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=1_000_000)
    parser.add_argument("--searches", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--keep-data", action="store_true")
    args = parser.parse_args()
    stack = StackSettings()
    es = AsyncElasticsearch(stack.elasticsearch_url, request_timeout=120)
    indexes = {"unsorted": f"{PREFIX}-unsorted", "sorted": f"{PREFIX}-sorted"}
    try:
        present = [await es.indices.exists(index=name) for name in indexes.values()]
        counts = [
            int((await es.count(index=name))["count"]) if there else 0
            for name, there in zip(indexes.values(), present, strict=True)
        ]
        load_seconds = None
        if min(counts) < args.videos:
            for name in indexes.values():
                await es.indices.delete(index=name, ignore_unavailable=True)
            for label, name in indexes.items():
                settings = dict(SEARCH_INDEX_SETTINGS) | {"refresh_interval": "-1"}
                if label == "sorted":
                    settings |= INDEX_SORT
                await es.indices.create(index=name, settings=settings, mappings=SEARCH_INDEX_MAPPINGS)
            started = time.perf_counter()
            await load(es, list(indexes.values()), args.videos, args.batch)
            load_seconds = time.perf_counter() - started
            for name in indexes.values():
                await es.indices.put_settings(index=name, settings={"refresh_interval": None})
                await es.indices.refresh(index=name)
                await es.indices.forcemerge(index=name, max_num_segments=5)
        crowd = crowd_filters(random.Random(20261203), args.searches)
        measured: dict[str, Any] = {}
        for name in indexes.values():
            await measure(es, name, crowd[: args.searches // 5], 1000, args.concurrency)  # warm the caches
        # The two indexes one after the other for each setting, so a change of the machine's load during
        # the run touches both alike.
        for totals_label, totals in TOTALS.items():
            for bounded in (False, True):
                for label, name in indexes.items():
                    figures = await measure(es, name, crowd, totals, args.concurrency, bound_after=bounded)
                    key = f"{label}_{totals_label}" + ("_deep_bounded" if bounded else "")
                    measured[key] = figures
                    print(f"bench-api-levers: {key}: {json.dumps(figures)}", file=sys.stderr)
        results = {
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count()},
            "videos": args.videos,
            "searches": args.searches,
            "concurrency": args.concurrency,
            "load_seconds_both_indexes": round(load_seconds, 1) if load_seconds else None,
            "load_average_at_end": os.getloadavg(),
            "index_size_bytes": {
                label: int(
                    (await es.indices.stats(index=name, metric="store"))["_all"]["primaries"]["store"]["size_in_bytes"]
                )
                for label, name in indexes.items()
            },
            "measured": measured,
        }
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
        print(json.dumps(results, indent=2))
    finally:
        if not args.keep_data:
            for name in indexes.values():
                await es.indices.delete(index=name, ignore_unavailable=True)
        await es.close()


if __name__ == "__main__":
    asyncio.run(main())
