"""No API key in any log line (DEBUG included), metric, health answer or state document.

A real fetcher process runs with real-looking keys (``AIza`` + 35 characters) through errors of
every kind: an invalid key, a spent daily quota, 5xx, short-term rate limits, dropped
connections, timeouts, a redirect to another host, and error bodies that echo the key back.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import aio_pika
from aiohttp import web
from pymongo.asynchronous.database import AsyncDatabase

from services.common.redact import key_fingerprint
from services.common.settings import StackSettings
from services.common.topology import QueueNames
from services.fetcher.youtube_client import API_KEY_HEADER
from services.youtube_emulator.testing import quiet_settings
from tests.integration.fetcher_support import (
    FetcherProcess,
    RecordedCall,
    fake_key,
    fetcher_env,
    queue_tap,
    running_emulator,
)
from tests.waiting import wait_until

GOOD, INVALID, SPENT = fake_key("leak-good"), fake_key("leak-invalid"), fake_key("leak-spent")
REDIRECTED, ECHOED = fake_key("leak-redirect"), fake_key("leak-echo")
KEYS = (GOOD, INVALID, SPENT, REDIRECTED, ECHOED)


def _hostile(request: web.Request, calls: list[RecordedCall]) -> web.StreamResponse | None:
    """Answers the emulator cannot give: a redirect elsewhere, and bodies that repeat the key."""
    key = request.headers.get(API_KEY_HEADER, "")
    if key == REDIRECTED:
        return web.Response(status=302, headers={"Location": f"http://127.0.0.2:9/steal?key={key}"})
    if key == ECHOED:
        mine = [c for c in calls if c.key == ECHOED]
        if len(mine) % 2:
            body = {"error": {"code": 500, "message": f"upstream said: bad key {key}", "errors": []}}
            return web.json_response(body, status=500)
        return web.Response(status=502, text=f"<html>proxy error for key={key}</html>", content_type="text/html")
    return None


async def test_no_key_in_logs_metrics_health_or_state(
    stack: StackSettings,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    amqp: aio_pika.abc.AbstractRobustConnection,
    tmp_path: Path,
) -> None:
    emulator_settings = quiet_settings(
        emulator_invalid_keys=[INVALID],
        emulator_key_budgets={SPENT: 1},
        emulator_fault_5xx=0.15,
        emulator_fault_rate_limit=0.1,
        emulator_fault_drop=0.1,
        emulator_fault_slow=0.1,
        emulator_slow_seconds=1.5,
        emulator_backfill_seconds=1800,
    )
    async with running_emulator(emulator_settings) as emulator, queue_tap(amqp, queue_names) as tap:
        emulator.intercept = _hostile
        env = fetcher_env(
            stack,
            queue_names,
            mongo_db.name,
            emulator,
            youtube_api_keys=" ".join(KEYS),
            log_level="DEBUG",
            log_format="json",
            youtube_request_timeout_seconds=1,
            initial_lookback_seconds=1800,
            poll_interval_seconds=0.2,
        )
        fetcher = FetcherProcess(env, tmp_path / "fetcher.log")
        await fetcher.start()
        try:

            async def every_error_met() -> bool:
                if not _kinds(emulator.calls) >= {"invalid", "spent", "redirect", "echo", "5xx", "rate", "ok"}:
                    return False
                # dropped connections and responses slower than the fetcher's timeout
                text = await (await emulator.client.get("/metrics")).text()
                return 'outcome="dropped"}' in text and "emulator_slowed_calls_total{" in text

            await wait_until(every_error_met, within=120, what=f"every kind of error (log: {fetcher.log})")
            metrics_text = (await fetcher.get("/metrics"))[1]
            health_text = (await fetcher.get("/healthz"))[1]
            ready_text = (await fetcher.get("/readyz"))[1]
            fetcher.signal(signal.SIGTERM)
            assert await fetcher.wait(within=60) == 0
        finally:
            await fetcher.stop()
        emulator_metrics = await (await emulator.client.get("/metrics")).text()

    raw_log = fetcher.log.read_text()
    # JSON lines escape non-ASCII (the fingerprints' "…"); read them back as text too.
    log = "\n".join(
        json.dumps(json.loads(line), ensure_ascii=False) if line.startswith("{") else line
        for line in raw_log.splitlines()
    )
    state = await _dump(mongo_db)
    places = {
        "raw log": raw_log,
        "log": log,
        "metrics": metrics_text,
        "healthz": health_text,
        "readyz": ready_text,
        "mongo": state,
    }
    for key in KEYS:
        for where, text in places.items():
            assert key not in text, f"key {key_fingerprint(key)} leaked into {where}"
    # The capture is real: DEBUG lines, errors of each kind, fingerprints where keys were meant.
    assert '"level": "DEBUG"' in log
    assert "API key disabled" in log and key_fingerprint(INVALID) in log
    assert "refused to follow a 302 redirect" in log
    assert "TimeoutError" in log
    assert "non-JSON body" in log and "[key]" in log  # echoed keys were masked before logging
    # Dropped connections happened (aiohttp retries a request once when the server closed a
    # kept-alive connection under it, so the fetcher may not even have noticed).
    assert 'emulator_api_calls_total{endpoint="search",outcome="dropped"}' in emulator_metrics
    assert "tubewatch_fetcher_api_calls_total" in metrics_text
    assert tap.messages, "nothing was published"


def _kinds(calls: list[RecordedCall]) -> set[str]:
    kinds = set()
    for call in calls:
        if call.key == INVALID and call.status == 400:
            kinds.add("invalid")
        elif call.key == SPENT and call.status == 429:
            kinds.add("spent")
        elif call.key == REDIRECTED:
            kinds.add("redirect")
        elif call.key == ECHOED:
            kinds.add("echo")
        elif call.status in (500, 503) and call.reasons[:1] == ("backendError",):
            kinds.add("5xx")
        elif call.reasons[:1] in (("rateLimitExceeded",), ("userRateLimitExceeded",)):
            kinds.add("rate")
        elif call.key == GOOD and call.status == 200:
            kinds.add("ok")
    return kinds


async def _dump(db: AsyncDatabase[dict[str, Any]]) -> str:
    docs = []
    for name in await db.list_collection_names():
        docs += [doc async for doc in db[name].find()]
    return json.dumps(docs, default=str)
