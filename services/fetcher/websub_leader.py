"""The leader's WebSub work, started when this fetcher takes the lead and cancelled when it stands down.

Two tasks on one AMQP channel of their own: the subscriptions' passes (``websub_subscriptions.py``)
and the consumer of the notice queue (``websub_notices.py``) whose batches the confirmer handles
(``websub_confirm.py``). A standby runs neither: it only receives pushes and forwards them. A lease
lost in a batch puts the batch back on the queue and the consumer starts again a second later,
unless the leader stood down meanwhile, which cancels both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from aio_pika.abc import AbstractRobustConnection

from services.common.topology import QueueType
from services.fetcher.leader import Role
from services.fetcher.lease import LeaseLostError
from services.fetcher.websub_confirm import BATCH_SIZE, PushConfirmer
from services.fetcher.websub_notices import NoticeConsumer
from services.fetcher.websub_subscriptions import WebSubSubscriptions

logger = logging.getLogger(__name__)

RESTART_SECONDS = 1.0


class WebSubLeaderWork:
    def __init__(
        self,
        *,
        amqp: Callable[[], AbstractRobustConnection],
        queue_name: str,
        subscriptions: WebSubSubscriptions,
        confirmer: PushConfirmer,
        queue_type: QueueType = "classic",
    ) -> None:
        self._amqp = amqp
        self._queue_name = queue_name
        self._queue_type = queue_type
        self.subscriptions = subscriptions
        self.confirmer = confirmer
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def on_role(self, role: Role) -> None:
        if role == "leader" and not self.running:
            self._task = asyncio.create_task(self._lead(), name="websub-leader")
        elif role != "leader" and self._task is not None:
            self._task.cancel()
            self._task = None

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _lead(self) -> None:
        passes = asyncio.create_task(self.subscriptions.run(), name="websub-subscriptions")
        try:
            while True:
                try:
                    await self._consume()
                except LeaseLostError:
                    # Cancelled by the role change that follows, or consuming again if the lease is kept.
                    logger.info("lease in doubt while handling pushes: their notices went back to the queue")
                except Exception:
                    logger.exception("push notice consumer failed; starting it again")
                await asyncio.sleep(RESTART_SECONDS)
        finally:
            passes.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await passes

    async def _consume(self) -> None:
        channel = await self._amqp().channel()
        consumer = NoticeConsumer(
            channel,
            self._queue_name,
            self.confirmer.handle,
            batch_ids=BATCH_SIZE,
            requeue_on=(LeaseLostError,),
            queue_type=self._queue_type,
        )
        try:
            await consumer.run()
        finally:
            with contextlib.suppress(Exception):
                await channel.close()
