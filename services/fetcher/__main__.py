from __future__ import annotations

from aiohttp import web

from services.common.logs import configure_logging
from services.common.settings import load_settings
from services.fetcher.app import create_app
from services.fetcher.redact import install_key_redaction
from services.fetcher.settings import Settings


def main() -> None:
    settings = load_settings(Settings)
    if not settings.youtube_api_keys:
        raise SystemExit(
            "tubewatch: invalid setting YOUTUBE_API_KEYS: no key given "
            "(set at least one, or use `make run` without keys for the emulator demo)"
        )
    configure_logging(settings.log_level, settings.log_format, service="fetcher")
    install_key_redaction(settings.key_entries)
    web.run_app(create_app(settings), host=settings.fetcher_host, port=settings.fetcher_port, print=None)


if __name__ == "__main__":
    main()
