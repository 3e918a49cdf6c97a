"""``python -m services.indexer`` on a port that is taken: one clear line naming the variable."""

from __future__ import annotations

import asyncio
import socket
import sys
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from services.common.settings import PROJECT_ROOT, StackSettings
from services.common.topology import QueueNames
from tests.integration.indexer_support import settings_env, shared_stack_settings


async def test_a_busy_indexer_port_is_one_clear_line_naming_the_variable(
    stack: StackSettings, queue_names: QueueNames, mongo_db: AsyncDatabase[dict[str, Any]], es_alias: str
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        settings = shared_stack_settings(
            stack, queue_names, mongo_db.name, es_alias, indexer_host="127.0.0.1", indexer_port=port
        )
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.indexer",
            cwd=PROJECT_ROOT,
            env=settings_env(settings),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    text = stderr.decode()
    assert process.returncode != 0
    assert "Traceback" not in text
    assert f"tubewatch: cannot listen on 127.0.0.1:{port} (set INDEXER_PORT)" in text
