"""Property-based testing of the live API from its own served OpenAPI document (schemathesis).

The API runs as `python -m services.api` would in production; schemathesis generates valid and
invalid requests for every operation and checks: no 5xx, status codes, content types and headers
as documented, bodies that match the schema, and invalid input rejected.
"""

from __future__ import annotations

import asyncio
import random
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from elasticsearch import AsyncElasticsearch
from prometheus_client.parser import text_string_to_metric_families
from pymongo.asynchronous.database import AsyncDatabase

from services.common.settings import StackSettings
from tests.integration.api_support import TEST_CURSOR_SECRET, prepare_stores, served_api, spread_events, write

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "unsupported_method",
    ]
)
MIN_REQUESTS = 500


@pytest.fixture
async def live_api(
    stack: StackSettings,
    mongo_db: AsyncDatabase[dict[str, Any]],
    es: AsyncElasticsearch,
    es_alias: str,
    tmp_path: Path,
) -> AsyncIterator[str]:
    await write(await prepare_stores(mongo_db, es, es_alias), es, es_alias, spread_events(random.Random(8), 300))
    async with served_api(
        stack,
        mongo_db.name,
        es_alias,
        tmp_path,
        AMQP_QUEUE=f"{es_alias}.absent",
        CURSOR_SECRET=TEST_CURSOR_SECRET,
        API_WORKERS="1",
        LOG_LEVEL="WARNING",
    ) as api:
        yield api.url
    log = api.log
    # Malformed HTTP may be logged by aiohttp's parser; an exception of the API itself never.
    assert "unexpected error answering a request" not in log.read_text(), log.read_text()[-3000:]


async def _requests_answered(url: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/metrics") as response:
        text = await response.text()
    return int(
        sum(
            sample.value
            for family in text_string_to_metric_families(text)
            if family.name == "tubewatch_api_requests"
            for sample in family.samples
            if sample.name == "tubewatch_api_requests_total" and sample.labels["route"] != "/metrics"
        )
    )


async def test_schemathesis_finds_no_server_error_and_no_schema_violation(live_api: str, tmp_path: Path) -> None:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{live_api}/api/openapi.json",
        # Without ADMIN_TOKENS the admin API answers 404 to every method, as it must; it is fuzzed
        # with a token in test_api_admin_schemathesis.py.
        "--exclude-tag",
        "admin",
        "--checks",
        CHECKS,
        "--max-examples",
        "25",
        "--seed",
        "20261124",
        "--workers",
        "2",
        "--no-color",
        "--generation-database",
        "none",
        "--request-timeout",
        "20",
        "--max-time",
        "25",
    ]
    process = await asyncio.create_subprocess_exec(
        *command, cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await process.communicate()
    report = output.decode(errors="replace")
    assert process.returncode == 0, report[-6000:]
    answered = await _requests_answered(live_api)
    print(f"schemathesis: {answered} requests answered")
    assert answered >= MIN_REQUESTS, f"only {answered} requests were generated:\n{report[-3000:]}"
