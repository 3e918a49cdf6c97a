"""``python -m services.notifier replay-dead [--dry-run] [--limit N]``: put dead-lettered deliveries back.

After the cause is fixed (a receiver that answered 400, a webhook URL that redirected, a receiver
down for longer than WEBHOOK_RETRY_HOURS), an operator replays the dead letters: each is re-published
to the work queue as a first attempt (its attempts, first failure and reason dropped) and removed
from the dead-letter queue only once the broker confirmed the copy: a crash in between repeats a
delivery (its ``delivery_id`` unchanged), never loses one. Only the dead letters present when the
command starts are replayed, so one that fails again is not replayed in a loop. ``--dry-run`` lists
them (one JSON line each) and changes nothing.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, TextIO

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from services.notifier.deliveries import (
    ATTEMPTS_HEADER,
    DEAD_REASON_HEADER,
    FIRST_FAILURE_HEADER,
    LAST_ERROR_HEADER,
    WORK_ROUTING_KEY,
    declare_delivery_topology,
)

logger = logging.getLogger(__name__)

REPLAYED_HEADER = "x-tubewatch-replayed"
# Headers of a dead letter's previous life; a replayed delivery starts afresh.
_DEAD_HEADERS = (
    DEAD_REASON_HEADER,
    ATTEMPTS_HEADER,
    FIRST_FAILURE_HEADER,
    LAST_ERROR_HEADER,
    "x-death",
    "x-first-death-exchange",
    "x-first-death-queue",
    "x-first-death-reason",
    "x-last-death-exchange",
    "x-last-death-queue",
    "x-last-death-reason",
)
_PREVIEW_CHARS = 200


@dataclass
class ReplayReport:
    found: int
    replayed: int


async def replay_dead(
    amqp_url: str, queue_prefix: str, *, dry_run: bool, limit: int | None, out: TextIO
) -> ReplayReport:
    """Replay (or list, with ``dry_run``) up to ``limit`` dead deliveries of DELIVERY_QUEUE_PREFIX ``queue_prefix``.

    One JSON line each on ``out``.
    """
    connection = await aio_pika.connect(amqp_url, client_properties={"connection_name": "notifier-replay"})
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        topology = await declare_delivery_topology(channel, queue_prefix)
        dead_queue = await channel.declare_queue(topology.names.dead_queue, durable=True, passive=True)
        waiting = dead_queue.declaration_result.message_count or 0
        wanted = waiting if limit is None else min(waiting, limit)
        found = replayed = 0
        # Taken one by one and held unacked until replayed (in a dry run, until the channel closes
        # and the broker puts them back in their order).
        while found < wanted:
            message = await dead_queue.get(no_ack=False, fail=False)
            if message is None:
                break
            found += 1
            out.write(json.dumps(describe(message), ensure_ascii=False) + "\n")
            if dry_run:
                continue
            await topology.exchange.publish(_fresh_copy(message), routing_key=WORK_ROUTING_KEY)
            await message.ack()
            replayed += 1
        out.flush()
    logger.info(
        "dead deliveries listed" if dry_run else "dead deliveries replayed",
        extra={"queue": topology.names.dead_queue, "found": found, "replayed": replayed},
    )
    return ReplayReport(found=found, replayed=replayed)


def describe(message: AbstractIncomingMessage) -> dict[str, Any]:
    """What an operator needs to judge a dead delivery: its id, reason, attempts and the body's start."""
    headers = message.headers or {}
    return {
        "delivery_id": message.message_id,
        "reason": _text(headers.get(DEAD_REASON_HEADER)),
        "attempts": headers.get(ATTEMPTS_HEADER),
        "replayed_before": headers.get(REPLAYED_HEADER, 0),
        "size": len(message.body),
        "body": message.body[:_PREVIEW_CHARS].decode("utf-8", errors="replace"),
    }


def _text(value: object) -> object:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def _fresh_copy(message: AbstractIncomingMessage) -> aio_pika.Message:
    headers = {k: v for k, v in (message.headers or {}).items() if k not in _DEAD_HEADERS}
    previous = headers.get(REPLAYED_HEADER, 0)
    headers[REPLAYED_HEADER] = (previous if isinstance(previous, int) else 0) + 1
    return aio_pika.Message(
        body=message.body,
        headers=headers,
        message_id=message.message_id,
        content_type=message.content_type,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )
