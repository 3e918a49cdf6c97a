"""`python -m services.api`: one process, or API_WORKERS processes sharing the port (see workers.py)."""

from __future__ import annotations

from services.api.settings import Settings
from services.api.workers import configure_api_logging, serve, supervise
from services.common.settings import load_settings


def main() -> None:
    settings = load_settings(Settings)
    configure_api_logging(settings)
    if settings.api_workers == 1:
        serve(settings, reuse_port=False)
    else:
        supervise(settings)


if __name__ == "__main__":
    main()
