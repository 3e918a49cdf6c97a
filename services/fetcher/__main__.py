"""``python -m services.fetcher``: load the settings, configure logging, serve until stopped."""

from __future__ import annotations

from services.common.logs import configure_logging
from services.common.service_app import run_service
from services.common.settings import load_settings
from services.fetcher.app import create_app
from services.fetcher.settings import Settings


def main() -> None:
    settings = load_settings(Settings)
    if not settings.youtube_api_keys:
        raise SystemExit(
            "tubewatch: invalid setting YOUTUBE_API_KEYS: no key given "
            "(set at least one, or use `make run` without keys for the emulator demo)"
        )
    # Every configured key (and every other secret) is replaced in the logs by what may be shown.
    configure_logging(settings.log_level, settings.log_format, service="fetcher")
    run_service(create_app(settings), settings.fetcher_host, settings.fetcher_port, "FETCHER_PORT")


if __name__ == "__main__":
    main()
