"""The emulator's clock: real time plus an offset tests can move, or frozen at an instant.

Listeners hear every move (set, advance, freeze, reset), so a background task waiting for the
clock (the WebSub hub's delivery loop) wakes when a test moves a frozen clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Clock:
    def __init__(self, source: Callable[[], float] = time.time) -> None:
        self._source = source
        self._offset = 0.0
        self._frozen_at: float | None = None
        self._listeners: list[Callable[[], None]] = []

    def listen(self, callback: Callable[[], None]) -> None:
        self._listeners.append(callback)

    def unlisten(self, callback: Callable[[], None]) -> None:
        if callback in self._listeners:
            self._listeners.remove(callback)

    def _moved(self) -> None:
        for callback in self._listeners:
            callback()

    @property
    def frozen(self) -> bool:
        return self._frozen_at is not None

    @property
    def offset(self) -> float:
        """How far the clock is from real time (seconds; negative in the past)."""
        if self._frozen_at is not None:
            return self._frozen_at - self._source()
        return self._offset

    def now(self) -> float:
        if self._frozen_at is not None:
            return self._frozen_at
        return self._source() + self._offset

    def set(self, moment: float, *, frozen: bool | None = None) -> None:
        freeze = self.frozen if frozen is None else frozen
        if freeze:
            self._frozen_at = moment
        else:
            self._frozen_at = None
            self._offset = moment - self._source()
        self._moved()

    def advance(self, seconds: float) -> None:
        self.set(self.now() + seconds)

    def freeze(self, frozen: bool) -> None:
        self.set(self.now(), frozen=frozen)

    def reset(self) -> None:
        """Back to real time, running."""
        self._frozen_at = None
        self._offset = 0.0
        self._moved()
