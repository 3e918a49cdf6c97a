"""``python -m services.youtube_emulator``: serve the YouTube Data API stand-in."""

from __future__ import annotations

from aiohttp import web

from services.common.logs import configure_logging
from services.common.settings import load_settings
from services.youtube_emulator.app import create_app
from services.youtube_emulator.settings import Settings


def main() -> None:
    settings = load_settings(Settings)
    configure_logging(settings.log_level, settings.log_format, service="youtube-emulator")
    web.run_app(create_app(settings), host=settings.emulator_host, port=settings.emulator_port)


if __name__ == "__main__":
    main()
