"""``python -m services.indexer replay-dead [--dry-run] [--limit N]``: recover dead-lettered messages.

After a fix (a new event model, a corrected mapping), an operator puts the dead letters back on the
work queue. Each one is re-published straight to the work queue (through the default exchange, so no
other binding of the topic exchange sees it twice) with a fresh attempt count, as
``services.common.dead_letter_replay`` replays a queue: removed from the dead-letter queue only once
the broker confirmed the copy, only those present at the start, ``--dry-run`` lists them and changes
nothing.
"""

from __future__ import annotations

import logging
from typing import TextIO

import aio_pika

from services.common.clients import connect_amqp
from services.common.dead_letter_replay import DeadLetterHeaders, ReplayReport, replay_queue
from services.common.topology import QueueNames, declare_index_queue
from services.indexer.settings import Settings
from services.indexer.settlement import ATTEMPTS_HEADER, DEAD_REASON_HEADER

logger = logging.getLogger(__name__)

INDEX_DEAD_LETTERS = DeadLetterHeaders(
    reason=DEAD_REASON_HEADER, attempts=ATTEMPTS_HEADER, dropped=frozenset({DEAD_REASON_HEADER, ATTEMPTS_HEADER})
)


async def replay_dead(settings: Settings, *, dry_run: bool, limit: int | None, out: TextIO) -> ReplayReport:
    """Replay (or list, with ``dry_run``) up to ``limit`` dead letters; one JSON line each on ``out``."""
    names = QueueNames(settings.amqp_exchange, settings.amqp_queue, settings.amqp_queue_type)
    connection = await connect_amqp(settings.amqp_url, "indexer-replay")
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await declare_index_queue(channel, names)
        dead_queue = await channel.declare_queue(names.dead_queue, durable=True, passive=True)

        async def to_work_queue(message: aio_pika.Message) -> None:
            await channel.default_exchange.publish(message, routing_key=names.queue)

        report = await replay_queue(
            dead_queue, to_work_queue, INDEX_DEAD_LETTERS, dry_run=dry_run, limit=limit, out=out
        )
    logger.info(
        "dead letters listed" if dry_run else "dead letters replayed",
        extra={"queue": names.dead_queue, "found": report.found, "replayed": report.replayed},
    )
    return report
