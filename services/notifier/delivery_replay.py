"""``python -m services.notifier replay-dead [--dry-run] [--limit N]``: put dead-lettered deliveries back.

After the cause is fixed (a receiver that answered 400, a webhook URL that redirected, a receiver
down for longer than WEBHOOK_RETRY_HOURS), an operator replays the dead letters: each is re-published
to the work queue as a first attempt (its attempts, first failure and reason dropped), its
``delivery_id`` unchanged, as ``services.common.dead_letter_replay`` replays a queue: removed from
the dead-letter queue only once the broker confirmed the copy, only those present at the start,
``--dry-run`` lists them (one JSON line each) and changes nothing.
"""

from __future__ import annotations

import logging
from typing import TextIO

import aio_pika

from services.common.clients import connect_amqp
from services.common.dead_letter_replay import DeadLetterHeaders, ReplayReport, replay_queue
from services.common.topology import QueueType
from services.notifier.deliveries import (
    ATTEMPTS_HEADER,
    DEAD_REASON_HEADER,
    FIRST_FAILURE_HEADER,
    LAST_ERROR_HEADER,
    WORK_ROUTING_KEY,
    declare_delivery_topology,
)

logger = logging.getLogger(__name__)

DELIVERY_DEAD_LETTERS = DeadLetterHeaders(
    reason=DEAD_REASON_HEADER,
    attempts=ATTEMPTS_HEADER,
    dropped=frozenset({DEAD_REASON_HEADER, ATTEMPTS_HEADER, FIRST_FAILURE_HEADER, LAST_ERROR_HEADER}),
    id_field="delivery_id",
)


async def replay_dead(
    amqp_url: str,
    queue_prefix: str,
    *,
    dry_run: bool,
    limit: int | None,
    out: TextIO,
    queue_type: QueueType = "classic",
) -> ReplayReport:
    """Replay (or list, with ``dry_run``) up to ``limit`` dead deliveries of DELIVERY_QUEUE_PREFIX ``queue_prefix``.

    One JSON line each on ``out``.
    """
    connection = await connect_amqp(amqp_url, "notifier-replay")
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        topology = await declare_delivery_topology(channel, queue_prefix, queue_type=queue_type)
        dead_queue = await channel.declare_queue(topology.names.dead_queue, durable=True, passive=True)

        async def to_work_queue(message: aio_pika.Message) -> None:
            await topology.exchange.publish(message, routing_key=WORK_ROUTING_KEY)

        report = await replay_queue(
            dead_queue, to_work_queue, DELIVERY_DEAD_LETTERS, dry_run=dry_run, limit=limit, out=out
        )
    logger.info(
        "dead deliveries listed" if dry_run else "dead deliveries replayed",
        extra={"queue": topology.names.dead_queue, "found": report.found, "replayed": report.replayed},
    )
    return report
