"""``python -m services.indexer [serve | reindex | replay-dead [--dry-run] [--limit N]]``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from services.common.clients import BATCH_ES_TIMEOUT_SECONDS, BATCH_MONGO_TIMEOUT_MS, open_elasticsearch, open_mongo
from services.common.dead_letter_replay import add_replay_dead_command
from services.common.logs import configure_logging
from services.common.service_app import run_service
from services.common.settings import load_settings
from services.indexer.app import create_app
from services.indexer.reindex import reindex
from services.indexer.replay import replay_dead
from services.indexer.settings import Settings

logger = logging.getLogger("services.indexer")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m services.indexer",
        description="Indexes video events from RabbitMQ into MongoDB and Elasticsearch (default: serve).",
    )
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="consume the queue and serve /healthz, /readyz and /metrics (the default)")
    commands.add_parser(
        "reindex",
        help="rebuild the Elasticsearch index from MongoDB into a new versioned index and swap the alias",
    )
    add_replay_dead_command(commands, "messages")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    settings = load_settings(Settings)
    configure_logging(settings.log_level, settings.log_format, service="indexer")
    if args.command == "reindex":
        asyncio.run(_reindex(settings))
    elif args.command == "replay-dead":
        asyncio.run(replay_dead(settings, dry_run=args.dry_run, limit=args.limit, out=sys.stdout))
    else:
        run_service(create_app(settings), settings.indexer_host, settings.indexer_port, "INDEXER_PORT")


async def _reindex(settings: Settings) -> None:
    async with (
        open_mongo(settings.mongodb_url, BATCH_MONGO_TIMEOUT_MS) as mongo,
        open_elasticsearch(settings.elasticsearch_url, BATCH_ES_TIMEOUT_SECONDS) as es,
    ):
        report = await reindex(settings, mongo[settings.mongodb_database], es, progress=True)
    logger.info(
        "reindex done",
        extra={
            "alias": report.alias,
            "index": report.new_index,
            "copied": report.copied,
            "caught_up": report.caught_up,
            "rejected": report.rejected_count,
            "seconds": round(report.seconds, 1),
        },
    )


if __name__ == "__main__":
    main()
