"""Replaying a dead-letter queue: the ``replay-dead`` sub-command and its loop, as the indexer and the
notifier share them.

After an operator fixed what made messages dead letters, each one present when the replay starts is
taken off the dead-letter queue, listed (one JSON line on ``out``), re-published as a fresh copy (the
headers of its previous life dropped, ``x-tubewatch-replayed`` counted up) and acknowledged only
once the broker confirmed that copy: a crash in between duplicates a message, never loses one. Only
the messages present at the start are taken, so one that fails again and comes back is not replayed
in a loop. A dry run lists them and changes nothing: held unacknowledged, they go back to the queue
in their order when the channel closes.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TextIO

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue

REPLAYED_HEADER = "x-tubewatch-replayed"
# The broker's records of a message's dead-lettering: a client may not set them on a copy.
BROKER_DEATH_HEADERS = frozenset(
    {
        "x-death",
        "x-first-death-exchange",
        "x-first-death-queue",
        "x-first-death-reason",
        "x-last-death-exchange",
        "x-last-death-queue",
        "x-last-death-reason",
    }
)
_PREVIEW_CHARS = 200

# Publishes a copy and returns once the broker confirmed it (a channel with publisher confirms).
Publish = Callable[[aio_pika.Message], Awaitable[object]]


def add_replay_dead_command(commands: argparse._SubParsersAction[argparse.ArgumentParser], what: str) -> None:
    """``replay-dead [--dry-run] [--limit N]`` among a service's sub-commands; ``what`` its dead letters."""
    replay = commands.add_parser("replay-dead", help=f"re-publish dead-lettered {what} to the work queue")
    replay.add_argument("--dry-run", action="store_true", help="only list the dead letters (one JSON line each)")
    replay.add_argument("--limit", type=_positive_int, default=None, help="replay at most this many")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


@dataclass(frozen=True)
class DeadLetterHeaders:
    """A service's headers on its dead letters: where the reason and the attempts are, and what a
    replayed copy drops beside the broker's records (its reason, attempts and the like)."""

    reason: str
    attempts: str
    dropped: frozenset[str]
    # The listing's name for the message id ("message_id", "delivery_id").
    id_field: str = "message_id"


@dataclass
class ReplayReport:
    found: int
    replayed: int


async def replay_queue(
    dead_queue: AbstractQueue,
    publish: Publish,
    headers: DeadLetterHeaders,
    *,
    dry_run: bool,
    limit: int | None,
    out: TextIO,
) -> ReplayReport:
    """Replay (or list, with ``dry_run``) up to ``limit`` of the messages ``dead_queue`` holds now.

    ``dead_queue`` must have been declared (passively) on this call's channel, so its message count
    is the one at the start.
    """
    waiting = dead_queue.declaration_result.message_count or 0
    wanted = waiting if limit is None else min(waiting, limit)
    found = replayed = 0
    while found < wanted:
        message = await dead_queue.get(no_ack=False, fail=False)
        if message is None:
            break
        found += 1
        out.write(json.dumps(describe(message, headers), ensure_ascii=False) + "\n")
        if dry_run:
            continue
        await publish(fresh_copy(message, headers))
        await message.ack()
        replayed += 1
    out.flush()
    return ReplayReport(found=found, replayed=replayed)


def describe(message: AbstractIncomingMessage, headers: DeadLetterHeaders) -> dict[str, Any]:
    """What an operator needs to judge a dead letter: its id, reason, attempts, size and the body's start."""
    values = message.headers or {}
    return {
        headers.id_field: message.message_id,
        "reason": _text(values.get(headers.reason)),
        "attempts": values.get(headers.attempts),
        "replayed_before": values.get(REPLAYED_HEADER, 0),
        "size": len(message.body),
        "body": message.body[:_PREVIEW_CHARS].decode("utf-8", errors="replace"),
    }


def fresh_copy(message: AbstractIncomingMessage, headers: DeadLetterHeaders) -> aio_pika.Message:
    """The message as a first attempt: persistent, its id kept, its previous life's headers dropped."""
    dropped = headers.dropped | BROKER_DEATH_HEADERS
    kept = {k: v for k, v in (message.headers or {}).items() if k not in dropped}
    previous = kept.get(REPLAYED_HEADER, 0)
    kept[REPLAYED_HEADER] = (previous if isinstance(previous, int) else 0) + 1
    return aio_pika.Message(
        body=message.body,
        headers=kept,
        message_id=message.message_id,
        content_type=message.content_type,
        timestamp=message.timestamp,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )


def _text(value: object) -> object:
    return value.decode(errors="replace") if isinstance(value, bytes) else value
