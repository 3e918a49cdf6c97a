"""``python -m services.notifier [serve | replay-dead [--dry-run] [--limit N]]``."""

from __future__ import annotations

import argparse
import asyncio
import sys

from services.common.dead_letter_replay import add_replay_dead_command
from services.common.logs import configure_logging
from services.common.service_app import run_service
from services.common.settings import load_settings
from services.notifier.app import create_app
from services.notifier.delivery_replay import replay_dead
from services.notifier.settings import Settings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m services.notifier",
        description="Matches newly stored videos against the saved searches and delivers them to their webhooks"
        " (default: serve).",
    )
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="match, deliver and serve /healthz, /readyz and /metrics (the default)")
    add_replay_dead_command(commands, "deliveries")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    settings = load_settings(Settings)
    configure_logging(settings.log_level, settings.log_format, service="notifier")
    if args.command == "replay-dead":
        asyncio.run(
            replay_dead(
                settings.amqp_url,
                settings.delivery_queue_prefix,
                dry_run=args.dry_run,
                limit=args.limit,
                out=sys.stdout,
                queue_type=settings.amqp_queue_type,
            )
        )
    else:
        run_service(create_app(settings), settings.notifier_host, settings.notifier_port, "NOTIFIER_PORT")


if __name__ == "__main__":
    main()
