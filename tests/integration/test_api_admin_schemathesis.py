"""Property-based testing of the admin API with a valid token (schemathesis): no 5xx, answers as documented.

The API runs as `python -m services.api` with ADMIN_TOKENS set; schemathesis generates valid and invalid
requests for every operation tagged admin from the served OpenAPI document, sending the token.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from elasticsearch import AsyncElasticsearch
from pymongo.asynchronous.database import AsyncDatabase

from services.common.settings import StackSettings
from tests.integration.admin_support import ADMIN_TOKEN, ADMIN_TOKENS
from tests.integration.api_support import TEST_CURSOR_SECRET, prepare_stores, served_api
from tests.integration.test_api_schemathesis import CHECKS


async def test_schemathesis_finds_no_server_error_in_the_admin_api(
    stack: StackSettings,
    mongo_db: AsyncDatabase[dict[str, Any]],
    es: AsyncElasticsearch,
    es_alias: str,
    tmp_path: Path,
) -> None:
    await prepare_stores(mongo_db, es, es_alias)
    async with served_api(
        stack,
        mongo_db.name,
        es_alias,
        tmp_path,
        AMQP_QUEUE=f"{es_alias}.absent",
        CURSOR_SECRET=TEST_CURSOR_SECRET,
        ADMIN_TOKENS=ADMIN_TOKENS,
        SEARCH_QUERIES="cricket,chess",
        LOG_LEVEL="WARNING",
    ) as api:
        command = [
            str(Path(sys.executable).with_name("schemathesis")),
            "run",
            f"{api.url}/api/openapi.json",
            "--include-tag",
            "admin",
            "--header",
            f"Authorization: Bearer {ADMIN_TOKEN}",
            "--checks",
            CHECKS,
            "--max-examples",
            "30",
            "--seed",
            "20261202",
            "--workers",
            "2",
            "--no-color",
            "--generation-database",
            "none",
            "--request-timeout",
            "20",
            "--max-time",
            "30",
        ]
        process = await asyncio.create_subprocess_exec(
            *command, cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        output, _ = await process.communicate()
    report = output.decode(errors="replace")
    assert process.returncode == 0, report[-6000:]
    log = api.log.read_text()
    assert "unexpected error answering a request" not in log, log[-3000:]
    assert ADMIN_TOKEN not in log and ADMIN_TOKEN not in report.replace(f"Bearer {ADMIN_TOKEN}", "")
