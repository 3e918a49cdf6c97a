"""Leadership: take the lease (or stand by), keep it, load the state, and run the scheduler.

Only the fetcher holding the lease (``lease.py``) calls YouTube or publishes. A standby tries
again often enough to take over within the TTL plus one poll interval. On taking the lease with
a new token the leader reads the state again from MongoDB (another leader may have moved it on
meanwhile), and its first cycle catches up. A lost lease stands the leader down at once; a stop
finishes the cycle in hand and releases the lease, so a standby takes over without waiting.

What the schedulers search and read is the sources in MongoDB (``sources_watch.py``): a new
leader loads them before its schedulers load their items, and while it leads it watches them
and applies every change at once, waking the schedulers. Only the leader watches.

Beside the search scheduler, ``others`` (the followed channels' scheduler, on the units pool)
turn under the same lease, each at its own pace: a long wait of one never delays the other.
``on_role`` listeners hear every change of role (the WebSub side subscribes and reads pushes
only while leading).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Literal

from services.fetcher.clock import Clock
from services.fetcher.keys import KeyPool
from services.fetcher.lease import LeaderLease, LeaseLostError
from services.fetcher.metrics import FetcherMetrics
from services.fetcher.scheduler import Scheduler
from services.fetcher.sources_watch import SourcesWatch
from services.fetcher.store import FetcherStore

logger = logging.getLogger(__name__)

Role = Literal["starting", "leader", "standby"]


class Leader:
    def __init__(
        self,
        *,
        lease: LeaderLease,
        scheduler: Scheduler,
        pool: KeyPool,
        store: FetcherStore,
        clock: Clock,
        metrics: FetcherMetrics,
        poll_interval_seconds: float,
        others: Sequence[Scheduler] = (),
        sources: SourcesWatch | None = None,
        on_role: Sequence[Callable[[Role], None]] = (),
    ) -> None:
        self.lease = lease
        # Told every change of role (the WebSub side runs only while leading).
        self._on_role = list(on_role)
        self.sources = sources
        self._watch: asyncio.Task[None] | None = None
        self.scheduler = scheduler
        self.others = list(others)
        self._pool = pool
        self._store = store
        self._clock = clock
        self._metrics = metrics
        self._poll_interval = poll_interval_seconds
        self._stopping = False
        self._wake = asyncio.Event()
        self.role: Role = "starting"
        # The lease token the in-memory state belongs to: a new token means another leader may
        # have moved the state on in between, so it is read again from MongoDB.
        self._state_token: int | None = None

    def stop(self) -> None:
        """Finish the cycle in hand, then return from ``run``."""
        self._stopping = True
        self._wake.set()

    def wake(self) -> None:
        """End every scheduler's sleep (the sources changed): due items, a new one among them, run now."""
        self._wake.set()

    async def run(self) -> None:
        renewer = asyncio.create_task(self._keep_lease(), name="lease-renewer")
        try:
            while not self._stopping:
                self._wake.clear()
                if self._stopping:
                    break
                if not self.lease.held() and not await self._lead():
                    # A standby tries often enough to take over within the TTL plus one poll interval.
                    await self._pause(min(self._poll_interval, self.lease.ttl_seconds / 4))
                    continue
                try:
                    await self._turns()
                except LeaseLostError as exc:
                    self._stand_down(str(exc))
                except Exception:
                    # MongoDB or RabbitMQ away mid-cycle: what was confirmed is recorded or will
                    # be walked again; try again after a pause rather than let the loop die.
                    logger.exception("poll cycle failed; retrying")
                    await self._pause(self._poll_interval)
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
            await self._stop_watching()
            try:
                await self.lease.release()
            except Exception as exc:
                logger.warning("could not release the lease; it expires by itself", extra={"error": repr(exc)})
            self._metrics.leader.set(0)

    async def _turns(self) -> None:
        """A turn of the scheduler; with others, every scheduler turns on its own until woken or one fails."""
        if not self.others:
            await self.scheduler.turn(self._wake)
            return
        tasks = [asyncio.create_task(self._keep_turning(s)) for s in (self.scheduler, *self.others)]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        except asyncio.CancelledError:
            for task in tasks:  # a stop past its grace: no cycle is finished
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        self._wake.set()  # one ended (woken, or failed): the others finish the cycle in hand
        results = await asyncio.gather(*tasks, return_exceptions=True)
        if not self._stopping:
            self._wake.clear()
        errors = [r for r in results if isinstance(r, BaseException)]
        lost = [e for e in errors if isinstance(e, LeaseLostError)]
        if lost or errors:
            raise (lost or errors)[0]

    async def _keep_turning(self, scheduler: Scheduler) -> None:
        while not self._wake.is_set():
            await scheduler.turn(self._wake)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    async def _lead(self) -> bool:
        try:
            acquired = await self.lease.try_acquire()
            if acquired and self.lease.token != self._state_token:
                await self._load_state()
                self._state_token = self.lease.token
        except Exception as exc:
            logger.warning("lease or state request to MongoDB failed; standing by", extra={"error": repr(exc)[:500]})
            self.lease.stand_down()
            self._be("standby")
            return False
        if not acquired:
            if self.role != "standby":
                logger.info("standing by: another fetcher holds the leader lease", extra={"holder": self.lease.holder})
            self._be("standby")
            return False
        self._be("leader")
        for scheduler in (self.scheduler, *self.others):
            scheduler.catch_up()
        if self.sources is not None and (self._watch is None or self._watch.done()):
            self._watch = asyncio.create_task(self.sources.run(self.wake), name="sources-watch")
        return True

    async def _stop_watching(self) -> None:
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch

    def _be(self, role: Role) -> None:
        changed, self.role = role != self.role, role
        if changed:
            for listener in self._on_role:
                listener(role)
        self._metrics.leader.set(1 if role == "leader" else 0)
        if role != "leader" and self._watch is not None:
            self._watch.cancel()  # only the leader watches; the next one loads the set afresh
            self._watch = None

    def _stand_down(self, why: str) -> None:
        logger.warning("standing down: the leader lease is lost", extra={"why": why})
        self.lease.stand_down()
        self._be("standby")

    async def _keep_lease(self) -> None:
        while True:
            await asyncio.sleep(self.lease.ttl_seconds / 3)
            if self.lease.token is None:
                continue
            try:
                kept = await self.lease.renew()
            except Exception as exc:
                logger.warning("could not renew the leader lease", extra={"error": repr(exc)})
                kept = self.lease.held()
            if not kept:
                self._wake.set()

    async def _load_state(self) -> None:
        """A new leader starts from what the previous one persisted (it may have been us)."""
        now = self._clock.now()
        self._pool.load(await self._store.load_keys(), now)
        if self.sources is not None:
            await self.sources.reload("leading")
        for scheduler in (self.scheduler, *self.others):
            await scheduler.load(now)
