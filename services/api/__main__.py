from __future__ import annotations

from aiohttp import web

from services.api.app import create_app
from services.api.settings import Settings
from services.common.logs import configure_logging
from services.common.settings import load_settings


def main() -> None:
    settings = load_settings(Settings)
    configure_logging(settings.log_level, settings.log_format, service="api")
    web.run_app(create_app(settings), host=settings.api_host, port=settings.api_port, print=None)


if __name__ == "__main__":
    main()
