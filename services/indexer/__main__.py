from __future__ import annotations

from aiohttp import web

from services.common.logs import configure_logging
from services.common.settings import load_settings
from services.indexer.app import create_app
from services.indexer.settings import Settings


def main() -> None:
    settings = load_settings(Settings)
    configure_logging(settings.log_level, settings.log_format, service="indexer")
    web.run_app(create_app(settings), host=settings.indexer_host, port=settings.indexer_port, print=None)


if __name__ == "__main__":
    main()
