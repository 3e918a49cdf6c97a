"""``python -m services.youtube_emulator``: serve the YouTube Data API stand-in."""

from __future__ import annotations

from services.common.logs import configure_logging
from services.common.service_app import run_service
from services.common.settings import load_settings
from services.youtube_emulator.app import create_app
from services.youtube_emulator.settings import Settings


def main() -> None:
    settings = load_settings(Settings)
    configure_logging(settings.log_level, settings.log_format, service="youtube-emulator")
    run_service(create_app(settings), settings.emulator_host, settings.emulator_port, "EMULATOR_PORT")


if __name__ == "__main__":
    main()
