"""Serving the API: in this process, or as API_WORKERS processes sharing the port (SO_REUSEPORT).

With several workers, this process only supervises: it points prometheus-client's multiprocess
mode at a fresh directory, starts the workers (spawned: fresh interpreters that see that setting
when they import prometheus-client, and inherit no event loop or client), restarts one that dies,
and stops them all on SIGINT/SIGTERM.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import signal
import tempfile
import time
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from types import FrameType

from aiohttp.http_exceptions import HttpProcessingError
from prometheus_client import multiprocess

from services.api.app import create_app
from services.api.cursors import SECRET_FILE_NAME, load_or_create_secret
from services.api.metrics import MULTIPROC_ENV
from services.api.settings import Settings
from services.common.logs import configure_logging
from services.common.service_app import run_service
from services.common.settings import load_settings

logger = logging.getLogger(__name__)

_STOP_GRACE_SECONDS = 20.0
_RESTART_BACKOFF_SECONDS = 1.0
# A worker dying this soon after its start will not do better when restarted (bad port, settings).
_EARLY_EXIT_SECONDS = 10.0


class _StopRequestedError(Exception):
    pass


def serve(settings: Settings, *, reuse_port: bool) -> None:
    """Serve the API in this process; a port that cannot be bound stops it with one clear line."""
    run_service(
        create_app(settings),
        settings.api_host,
        settings.api_port,
        "API_PORT",
        reuse_port=reuse_port,
        access_log=False,
    )


def configure_api_logging(settings: Settings) -> None:
    configure_logging(settings.log_level, settings.log_format, service="api")
    # While Elasticsearch is down the transport warns on every probe; the API logs the outage once.
    logging.getLogger("elastic_transport.node_pool").setLevel(logging.ERROR)
    logging.getLogger("aiohttp.server").addFilter(ClientErrorFilter())


class ClientErrorFilter(logging.Filter):
    """aiohttp logs every request its HTTP parser refuses (a 1 MB line, a header flood, garbage) at
    ERROR with a traceback: the client's fault, not the server's, and a cheap way to flood the log.
    Such a record becomes one INFO line without the traceback; real server errors stay as they are.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError) and 400 <= (error.code or 0) < 500:
            record.msg = "refused a malformed request: %s %s"
            record.args = (error.code, " ".join(str(error.message).split())[:200])
            record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
            record.exc_info, record.exc_text = None, None
            return logging.getLogger(record.name).isEnabledFor(logging.INFO)
        return True


def run_worker() -> None:
    """A worker process's entry point (importable by name: spawned processes look it up)."""
    settings = load_settings(Settings)
    configure_api_logging(settings)
    serve(settings, reuse_port=True)


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _StopRequestedError


def supervise(settings: Settings) -> None:
    if settings.cursor_secret is None:
        load_or_create_secret(settings.state_dir / SECRET_FILE_NAME)  # once, before the workers read it
    metrics_dir = tempfile.mkdtemp(prefix="tubewatch-api-metrics-")
    os.environ[MULTIPROC_ENV] = metrics_dir
    context = multiprocessing.get_context("spawn")
    workers: list[BaseProcess] = []

    def start_worker(number: int) -> BaseProcess:
        process = context.Process(target=run_worker, name=f"api-worker-{number}", daemon=False)
        process.start()
        return process

    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    try:
        workers = [start_worker(n) for n in range(settings.api_workers)]
        started = [time.monotonic()] * len(workers)
        logger.info(
            "api serving",
            extra={"workers": settings.api_workers, "address": f"http://{settings.api_host}:{settings.api_port}"},
        )
        while True:
            wait([w.sentinel for w in workers])
            for number, process in enumerate(workers):
                if process.exitcode is not None:
                    if time.monotonic() - started[number] < _EARLY_EXIT_SECONDS:
                        raise SystemExit(f"tubewatch: api worker exited at start (code {process.exitcode})")
                    logger.error(
                        "api worker exited; starting another", extra={"pid": process.pid, "code": process.exitcode}
                    )
                    if process.pid is not None:
                        multiprocess.mark_process_dead(process.pid, metrics_dir)
                    time.sleep(_RESTART_BACKOFF_SECONDS)
                    workers[number] = start_worker(number)
                    started[number] = time.monotonic()
    except _StopRequestedError:
        logger.info("api stopping")
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for process in workers:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + _STOP_GRACE_SECONDS
        for process in workers:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
        shutil.rmtree(metrics_dir, ignore_errors=True)
