"""``python -m services.indexer replay-dead [--dry-run] [--limit N]``: recover dead-lettered messages.

After a fix (a new event model, a corrected mapping), an operator puts the dead letters back on the
work queue. Each one is re-published straight to the work queue (through the default exchange, so no
other binding of the topic exchange sees it twice) with a fresh attempt count, and removed from the
dead-letter queue only once the broker confirmed the copy: a crash in between duplicates, never loses.
Only the messages present when the command starts are replayed, so a message that fails again and
comes back to the dead-letter queue is not replayed in a loop. ``--dry-run`` lists them and changes
nothing (they go back to the dead-letter queue in their order when the command ends).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, TextIO

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from services.common.topology import QueueNames, declare_index_queue
from services.indexer.settings import Settings
from services.indexer.settlement import ATTEMPTS_HEADER, DEAD_REASON_HEADER

logger = logging.getLogger(__name__)

REPLAYED_HEADER = "x-tubewatch-replayed"
# Headers describing the previous life of a dead letter; a replayed message starts afresh.
_DEAD_HEADERS = (DEAD_REASON_HEADER, ATTEMPTS_HEADER, "x-death", "x-first-death-exchange", "x-first-death-queue")
_PREVIEW_CHARS = 200


@dataclass
class ReplayReport:
    found: int
    replayed: int


async def replay_dead(settings: Settings, *, dry_run: bool, limit: int | None, out: TextIO) -> ReplayReport:
    """Replay (or list, with ``dry_run``) up to ``limit`` dead letters; one JSON line each on ``out``."""
    names = QueueNames(settings.amqp_exchange, settings.amqp_queue)
    connection = await aio_pika.connect(settings.amqp_url, client_properties={"connection_name": "indexer-replay"})
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await declare_index_queue(channel, names)
        dead_queue = await channel.declare_queue(names.dead_queue, durable=True, passive=True)
        waiting = dead_queue.declaration_result.message_count or 0
        wanted = waiting if limit is None else min(waiting, limit)
        replayed = 0
        found = 0
        # Fetched one by one and held unacked until replayed (or, in a dry run, until the channel
        # closes and the broker puts them back in order).
        while found < wanted:
            message = await dead_queue.get(no_ack=False, fail=False)
            if message is None:
                break
            found += 1
            out.write(json.dumps(describe(message), ensure_ascii=False) + "\n")
            if dry_run:
                continue
            await channel.default_exchange.publish(_fresh_copy(message), routing_key=names.queue)
            await message.ack()
            replayed += 1
        out.flush()
    logger.info(
        "dead letters listed" if dry_run else "dead letters replayed",
        extra={"queue": names.dead_queue, "found": found, "replayed": replayed},
    )
    return ReplayReport(found=found, replayed=replayed)


def describe(message: AbstractIncomingMessage) -> dict[str, Any]:
    """What an operator needs to judge a dead letter: id, reason, attempts, size and the body's start."""
    headers = message.headers or {}
    reason = headers.get(DEAD_REASON_HEADER)
    return {
        "message_id": message.message_id,
        "reason": reason.decode(errors="replace") if isinstance(reason, bytes) else reason,
        "attempts": headers.get(ATTEMPTS_HEADER),
        "replayed_before": headers.get(REPLAYED_HEADER, 0),
        "size": len(message.body),
        "body": message.body[:_PREVIEW_CHARS].decode("utf-8", errors="replace"),
    }


def _fresh_copy(message: AbstractIncomingMessage) -> aio_pika.Message:
    headers = {k: v for k, v in (message.headers or {}).items() if k not in _DEAD_HEADERS}
    previous = headers.get(REPLAYED_HEADER, 0)
    headers[REPLAYED_HEADER] = (previous if isinstance(previous, int) else 0) + 1
    return aio_pika.Message(
        body=message.body,
        headers=headers,
        message_id=message.message_id,
        content_type=message.content_type,
        timestamp=message.timestamp,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )
