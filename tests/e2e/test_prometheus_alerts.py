"""Prometheus watching the real services: the metrics it is asked about exist, and an outage alerts.

Private MongoDB and Elasticsearch (never the shared ones), the services as `make run` starts them,
and the local stack's Prometheus on a free port scraping them every second (tests/e2e/monitoring_support.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from elasticsearch import AsyncElasticsearch
from pymongo import AsyncMongoClient

from services.common.settings import StackSettings
from services.common.topology import QueueNames
from tests.e2e.monitoring_support import (
    PrivatePrometheus,
    Services,
    dashboard_expressions,
    exposed_names,
    private_prometheus,
    queried_names,
    rule_expressions,
    running_services,
)
from tests.private_stack import PrivateStack
from tests.waiting import wait_until

SCRAPED_JOBS = {"prometheus", "api", "fetcher", "indexer", "notifier", "emulator"}


@pytest.fixture
async def services(
    private_stack: PrivateStack,
    stack: StackSettings,
    queue_names: QueueNames,
    unique_name: str,
    tmp_path: Path,
) -> AsyncIterator[Services]:
    """The services over a database and alias of this test on the private stores, removed afterwards."""
    database = unique_name.replace("-", "_")
    try:
        async with running_services(
            private_stack, stack.amqp_url, queue_names, database, unique_name, tmp_path / "services.log"
        ) as running:
            yield running
    finally:
        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(private_stack.mongodb_url)
        es = AsyncElasticsearch(private_stack.elasticsearch_url, request_timeout=60)
        try:
            await mongo.drop_database(database)
            found = await es.indices.get(index=f"{unique_name}*", allow_no_indices=True, expand_wildcards="all")
            if found.body:
                await es.indices.delete(index=",".join(found.body))
        finally:
            await es.close()
            await mongo.close()


async def keep_listing(session: aiohttp.ClientSession, api: str, stop: asyncio.Event) -> None:
    """A reader of the API the whole time, as the dashboard would be (any answer will do)."""
    while not stop.is_set():
        try:
            async with session.get(f"{api}/api/v1/videos", params={"limit": "5"}) as response:
                await response.read()
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)


@pytest.mark.timeout(600)
async def test_every_metric_the_rules_and_the_dashboard_query_exists_in_the_services(services: Services) -> None:
    queried = {name: queried_names(expr) for name, expr in rule_expressions().items() | dashboard_expressions().items()}
    recorded = {name for name in rule_expressions() if ":" in name}
    wanted = set().union(*queried.values()) - recorded - {"up"}
    assert wanted, "no metric names found in the rules and the dashboard"
    exposed: set[str] = set()
    stop = asyncio.Event()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        reader = asyncio.create_task(keep_listing(session, services.url("API_PORT"), stop))

        async def all_exposed() -> bool:
            # Some series appear only once their service has done the thing (a call, a batch, a request).
            exposed.clear()
            for port in services.ports:
                async with session.get(f"{services.url(port)}/metrics") as response:
                    exposed.update(exposed_names(await response.text()))
            return wanted <= exposed

        try:
            await wait_until(all_exposed, within=120, what="every queried metric in some service's /metrics")
        except pytest.fail.Exception:
            missing = {name: sorted(names - exposed - recorded - {"up"}) for name, names in queried.items()}
            pytest.fail(f"queried but exposed by no service: { {k: v for k, v in missing.items() if v} }")
        finally:
            stop.set()
            await reader
    # Recorded names the dashboard and alerts use are recorded by a rule.
    used_recorded = {name for names in queried.values() for name in names if ":" in name}
    assert used_recorded <= recorded, sorted(used_recorded - recorded)


@pytest.mark.timeout(900)
async def test_stopping_elasticsearch_makes_the_degraded_alert_pend_then_fire_and_resolve_when_it_is_back(
    services: Services, private_stack: PrivateStack, tmp_path: Path
) -> None:
    stop = asyncio.Event()
    async with (
        private_prometheus(services, tmp_path / "prometheus") as prometheus,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
    ):
        reader = asyncio.create_task(keep_listing(session, services.url("API_PORT"), stop))
        try:
            await watch_the_outage(prometheus, session, private_stack)
        finally:
            stop.set()
            await reader


async def watch_the_outage(prometheus: PrivatePrometheus, session: aiohttp.ClientSession, stack: PrivateStack) -> None:
    async def scraping_everything() -> bool:
        return await prometheus.targets_up(session) == SCRAPED_JOBS

    await wait_until(scraping_everything, within=60, what="Prometheus scraping every service")

    async def served_by_elasticsearch() -> bool:
        # No value at all while no list was ever served from MongoDB; 0 once one was, long enough ago.
        served = (await prometheus.api(session, "query?query=sum by (store) (tubewatch_api_served_total)"))["result"]
        ratio = (await prometheus.api(session, "query?query=tubewatch:api_served_from_mongodb:ratio2m"))["result"]
        from_es = any(s["metric"].get("store") == "elasticsearch" and float(s["value"][1]) > 0 for s in served)
        return from_es and (not ratio or float(ratio[0]["value"][1]) == 0.0)

    await wait_until(served_by_elasticsearch, within=60, what="lists served by Elasticsearch alone")
    assert await prometheus.alert_state(session, "TubewatchApiDegraded") == "inactive"

    await asyncio.to_thread(stack.stop, "elasticsearch")
    try:
        seen: list[str] = []

        async def reached(state: str) -> bool:
            current = await prometheus.alert_state(session, "TubewatchApiDegraded")
            if not seen or seen[-1] != current:
                seen.append(current)
            return current == state

        await wait_until(lambda: reached("pending"), within=120, what="TubewatchApiDegraded pending")
        await wait_until(lambda: reached("firing"), within=60, what="TubewatchApiDegraded firing")
        assert seen[-2:] == ["pending", "firing"], seen
    finally:
        await asyncio.to_thread(stack.start, "elasticsearch")

    async def resolved() -> bool:
        return await prometheus.alert_state(session, "TubewatchApiDegraded") == "inactive"

    await wait_until(resolved, within=180, what="TubewatchApiDegraded resolved after Elasticsearch is back")
    firing = {
        a["labels"]["alertname"] for a in (await prometheus.api(session, "alerts"))["alerts"] if a["state"] == "firing"
    }
    assert "TubewatchServiceDown" not in firing, "a service went down during the outage"
