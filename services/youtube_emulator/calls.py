"""The call log: every API call the emulator answered, newest kept, for operators and tests.

An entry names the key only by its fingerprint (services.common.redact), never the key itself,
and keeps every query parameter except ``key`` (and ``hub.secret`` of WebSub hub requests, which are
logged here too, as ``websub.*`` methods). Times are on the emulator's clock. The log holds
``EMULATOR_CALL_LOG_SIZE`` entries; older ones are dropped (``evicted`` counts them).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from services.common.redact import key_fingerprint
from services.youtube_emulator.timestamps import format_precise

# The API key, and a WebSub subscriber's hub.secret: neither is ever kept.
_SECRET_PARAMS = frozenset({"key", "hub.secret"})
_MAX_VALUE = 500


@dataclass(frozen=True, slots=True)
class Call:
    seq: int
    at: float
    method: str
    key: str | None  # a fingerprint
    project: str | None
    params: dict[str, str]
    status: int | None  # None: the connection was dropped
    outcome: str
    units: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": format_precise(self.at),
            "method": self.method,
            "key": self.key,
            "project": self.project,
            "params": self.params,
            "status": self.status,
            "outcome": self.outcome,
            "units": self.units,
        }


@dataclass(frozen=True, slots=True)
class CallFilter:
    methods: frozenset[str] | None = None
    project: str | None = None
    since: float | None = None  # inclusive, emulator clock
    after_seq: int | None = None  # exclusive: what a poller has not seen yet
    limit: int = 1000

    def matches(self, call: Call) -> bool:
        return (
            (self.methods is None or call.method in self.methods)
            and (self.project is None or call.project == self.project)
            and (self.since is None or call.at >= self.since)
            and (self.after_seq is None or call.seq > self.after_seq)
        )


class CallLog:
    def __init__(self, size: int) -> None:
        self._calls: deque[Call] = deque(maxlen=size)
        self._seq = 0
        self.evicted = 0

    def record(
        self,
        *,
        at: float,
        method: str,
        key: str | None,
        project: str | None,
        params: Mapping[str, str],
        status: int | None,
        outcome: str,
        units: int,
    ) -> Call:
        self._seq += 1
        kept = {name: value[:_MAX_VALUE] for name, value in params.items() if name not in _SECRET_PARAMS}
        call = Call(self._seq, at, method, key_fingerprint(key) if key else None, project, kept, status, outcome, units)
        if len(self._calls) == self._calls.maxlen:
            self.evicted += 1
        self._calls.append(call)
        return call

    def select(self, flt: CallFilter) -> list[Call]:
        """The matching calls, oldest first; the newest ``limit`` of them when more match."""
        matched = [call for call in self._calls if flt.matches(call)]
        return matched[-flt.limit :] if flt.limit > 0 else []

    @property
    def last_seq(self) -> int:
        return self._seq


def tally(calls: Iterable[Call]) -> dict[str, dict[str, Any]]:
    """Per method: how many calls, the units they spent, and how many ended in each outcome."""
    result: dict[str, dict[str, Any]] = {}
    for call in calls:
        entry = result.setdefault(call.method, {"calls": 0, "units": 0, "outcomes": Counter()})
        entry["calls"] += 1
        entry["units"] += call.units
        entry["outcomes"][call.outcome] += 1
    for entry in result.values():
        entry["outcomes"] = dict(sorted(entry["outcomes"].items()))
    return result
