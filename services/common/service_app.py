"""What every tubewatch service serves the same way: /healthz, /readyz and /metrics."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.log import access_logger as aiohttp_access_logger
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from services.common.topology import QueueMismatchError

# A readiness check returns (ok, detail); detail is shown in /readyz.
ReadinessCheck = Callable[[], Awaitable[tuple[bool, str]]]

READINESS_CHECKS: web.AppKey[dict[str, ReadinessCheck]] = web.AppKey("readiness_checks", dict)
METRICS_REGISTRY: web.AppKey[CollectorRegistry] = web.AppKey("metrics_registry", CollectorRegistry)


def add_service_routes(app: web.Application, registry: CollectorRegistry) -> None:
    """Register /healthz (liveness), /readyz (dependencies) and /metrics (Prometheus text)."""
    app[METRICS_REGISTRY] = registry
    app[READINESS_CHECKS] = {}
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", _metrics)


def add_readiness_check(app: web.Application, name: str, check: ReadinessCheck) -> None:
    app[READINESS_CHECKS][name] = check


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _readyz(request: web.Request) -> web.Response:
    results: dict[str, dict[str, object]] = {}
    for name, check in request.app[READINESS_CHECKS].items():
        try:
            ok, detail = await check()
        except Exception as exc:  # a failing check is a "not ready", never a 500
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        results[name] = {"ok": ok, "detail": detail}
    ready = all(r["ok"] for r in results.values())
    return web.json_response(
        {"status": "ready" if ready else "not_ready", "checks": results}, status=200 if ready else 503
    )


async def _metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS_REGISTRY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def run_service(
    app: web.Application,
    host: str,
    port: int,
    port_variable: str,
    *,
    reuse_port: bool = False,
    access_log: bool = True,
) -> None:
    """Serve ``app`` until SIGINT/SIGTERM; a port that cannot be bound, or a queue RabbitMQ holds with
    other arguments (``QueueMismatchError``, raised at start), is one clear line, not a traceback.

    ``reuse_port``: share the port with other processes (SO_REUSEPORT). ``access_log`` False: no
    access logger at all, rather than aiohttp's (whose lines the logging setup filters out).
    """
    logging.getLogger("tubewatch").info("listening on http://%s:%s", host, port)
    try:
        web.run_app(
            app,
            host=host,
            port=port,
            reuse_port=reuse_port or None,
            print=None,
            access_log=aiohttp_access_logger if access_log else None,
        )
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise SystemExit(f"tubewatch: cannot listen on {host}:{port} (set {port_variable}): {reason}") from None
    except QueueMismatchError as exc:
        raise SystemExit(f"tubewatch: {exc}") from None
