"""The emulator as `python -m services.youtube_emulator` runs it: env settings, serving, clean Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _wait_healthy(session: aiohttp.ClientSession, base: str) -> None:
    for _ in range(100):
        try:
            async with session.get(f"{base}/healthz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError("the emulator did not become healthy within 10 s")


async def test_runs_from_the_environment_and_stops_on_sigint() -> None:
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("YOUTUBE_", "EMULATOR_"))},
        "EMULATOR_PORT": str(port),
        "SEARCH_QUERIES": "cricket,chess",
        "EMULATOR_SEARCH_CALLS_PER_DAY": "2",
        "EMULATOR_INVALID_KEYS": "revoked",
        "LOG_FORMAT": "json",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.youtube_emulator",
        cwd=PROJECT_ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            await _wait_healthy(session, base)
            params = {"part": "snippet", "q": "chess", "type": "video", "order": "date", "key": "demo"}
            statuses = []
            for _ in range(3):
                async with session.get(f"{base}/youtube/v3/search", params=params) as response:
                    statuses.append(response.status)
                    if response.status == 200:
                        body = await response.json()
                        assert body["items"]
                        assert "chess" in body["items"][0]["snippet"]["title"].casefold()
            assert statuses == [200, 200, 429]
            async with session.get(f"{base}/youtube/v3/search", params={**params, "key": "revoked"}) as response:
                assert response.status == 400
    finally:
        process.send_signal(signal.SIGINT)
        try:
            _, stderr = await asyncio.wait_for(process.communicate(), timeout=20)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
    assert process.returncode == 0
    assert b"Traceback" not in stderr
    assert b'"service": "youtube-emulator"' in stderr
