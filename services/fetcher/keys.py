"""The key pool: which key may make the next call, and what each key has spent today.

Quota belongs to a Google Cloud project, not to a key, so parking is per project: a daily
exhaustion answer parks every key of the project until the next midnight Pacific time. A key
whose answers say it is invalid or lacks access is disabled until the next quota day (and then
tried once more, so a key fixed in the Cloud console comes back without a restart).

A project has two pools: its search bucket (``search_calls_per_day``) and its units
(``units_per_day``: channels.list, playlistItems.list and videos.list, 1 unit a call). Each is
parked on its own: a spent search bucket leaves the units usable, and a spent units pool
(``park_units``) leaves search alone. Channel reads stop at ``units_reserve`` of the day's units,
which stay for videos.list.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from services.common.fetcher_state import KeyState, KeyStateDoc, as_utc
from services.fetcher.clock import next_reset, pacific_day
from services.fetcher.settings import KeyEntry

logger = logging.getLogger(__name__)


@dataclass
class _Key:
    entry: KeyEntry
    state: KeyState = "live"
    parked_until: datetime | None = None
    parked_reason: str | None = None
    disabled_reason: str | None = None
    # videos.list spends a separate unit pool under the current quota model: it can run dry alone.
    units_parked_until: datetime | None = None
    quota_day: date | None = None
    search_calls: int = 0
    units: int = 0


@dataclass(frozen=True)
class KeyCounts:
    live: int
    parked: int
    disabled: int


# What a unit call is for: reading a channel (stops at the reserve) or enriching new videos.
UnitPurpose = Literal["read", "enrich"]


class KeyPool:
    def __init__(
        self,
        entries: list[KeyEntry],
        search_calls_per_day: int,
        *,
        units_per_day: int = 10_000,
        units_reserve: float = 0.0,
    ) -> None:
        if not entries:
            raise ValueError("the key pool needs at least one key")
        self._keys = [_Key(entry) for entry in entries]
        self._by_fingerprint = {key.entry.fingerprint: key for key in self._keys}
        self.search_calls_per_day = search_calls_per_day
        self.units_per_day = units_per_day
        # Units of each project's day that channel reads leave to videos.list.
        self.units_reserved = round(units_per_day * units_reserve)
        self._next = 0
        self._next_units = 0
        self._dirty: set[str] = set()
        # A key changed state (parked, disabled, back): persist at once, not with the next batch.
        self.urgent = False

    # Reading ---------------------------------------------------------------------------------

    @property
    def entries(self) -> list[KeyEntry]:
        return [key.entry for key in self._keys]

    def projects(self) -> list[str]:
        return list(dict.fromkeys(key.entry.project for key in self._keys))

    def project_spent(self, project: str) -> int:
        return sum(key.search_calls for key in self._keys if key.entry.project == project)

    def project_left(self, project: str) -> int:
        return max(0, self.search_calls_per_day - self.project_spent(project))

    def calls_left(self, now: datetime) -> int:
        """Search calls the usable projects may still make today."""
        self.refresh(now)
        usable = {key.entry.project for key in self._keys if key.state == "live"}
        return sum(self.project_left(project) for project in usable)

    def calls_spent(self, now: datetime) -> int:
        self.refresh(now)
        return sum(key.search_calls for key in self._keys)

    def counts(self, now: datetime) -> KeyCounts:
        self.refresh(now)
        states = [key.state for key in self._keys]
        return KeyCounts(states.count("live"), states.count("parked"), states.count("disabled"))

    def resume_at(self, now: datetime) -> datetime | None:
        """When a search may be made again, or None while a key is usable now."""
        self.refresh(now)
        if any(key.state == "live" and self.project_left(key.entry.project) > 0 for key in self._keys):
            return None
        parked = [key.parked_until for key in self._keys if key.state == "parked" and key.parked_until]
        # Disabled keys are tried again on the next quota day.
        return min(parked) if parked else next_reset(now)

    def project_units_spent(self, project: str) -> int:
        return sum(key.units for key in self._keys if key.entry.project == project)

    def project_units_left(self, project: str, purpose: UnitPurpose = "enrich") -> int:
        """Units the project may still spend today on ``purpose`` (0 while its units are parked)."""
        keys = [key for key in self._keys if key.entry.project == project]
        if any(key.units_parked_until is not None for key in keys):
            return 0
        floor = self.units_reserved if purpose == "read" else 0
        return max(0, self.units_per_day - floor - self.project_units_spent(project))

    def units_left(self, now: datetime, purpose: UnitPurpose = "enrich") -> int:
        """Units the projects with a usable key may still spend today on ``purpose``."""
        self.refresh(now)
        usable = {key.entry.project for key in self._keys if key.state != "disabled"}
        return sum(self.project_units_left(project, purpose) for project in usable)

    def units_parked_until(self, project: str) -> datetime | None:
        moments = [k.units_parked_until for k in self._keys if k.entry.project == project and k.units_parked_until]
        return min(moments) if moments else None

    def units_resume_at(self, now: datetime) -> datetime | None:
        """When a channel read may be made again, or None while some key may make one now."""
        self.refresh(now)
        if self.units_left(now, "read") > 0:
            return None
        parked = [key.units_parked_until for key in self._keys if key.units_parked_until is not None]
        # Spent to the reserve, or disabled: the next quota day.
        return min(parked) if parked else next_reset(now)

    def state_of(self, fingerprint: str) -> KeyState:
        return self._by_fingerprint[fingerprint].state

    # Choosing --------------------------------------------------------------------------------

    def pick_search_key(self, now: datetime, prefer: KeyEntry | None = None) -> KeyEntry | None:
        """A live key of a project with calls left (``prefer`` if it still is one), round robin."""
        self.refresh(now)
        for project in self.projects():
            if self.project_left(project) == 0:
                self.park_project(project, next_reset(now), "daily budget spent", now)
        usable = [key for key in self._keys if key.state == "live"]
        if not usable:
            return None
        if prefer is not None and any(key.entry == prefer for key in usable):
            return prefer
        for offset in range(len(self._keys)):
            key = self._keys[(self._next + offset) % len(self._keys)]
            if key.state == "live":
                self._next = (self._keys.index(key) + 1) % len(self._keys)
                return key.entry
        return None

    def pick_units_key(self, now: datetime, purpose: UnitPurpose = "enrich") -> KeyEntry | None:
        """A key whose project has units left for ``purpose``, round robin over the usable ones.

        A key parked for search still makes unit calls: the two pools are spent apart. A disabled
        key makes none (YouTube refuses the key itself).
        """
        self.refresh(now)
        for offset in range(len(self._keys)):
            index = (self._next_units + offset) % len(self._keys)
            key = self._keys[index]
            if key.state != "disabled" and self.project_units_left(key.entry.project, purpose) > 0:
                self._next_units = (index + 1) % len(self._keys)
                return key.entry
        return None

    # Changing --------------------------------------------------------------------------------

    def charge_search(self, entry: KeyEntry, now: datetime) -> None:
        """Count a call before it is made: YouTube charges even for a call it then rejects."""
        key = self._key(entry, now)
        key.search_calls += 1
        self._dirty.add(entry.fingerprint)

    def charge_units(self, entry: KeyEntry, units: int, now: datetime) -> None:
        key = self._key(entry, now)
        key.units += units
        self._dirty.add(entry.fingerprint)

    def park_project(self, project: str, until: datetime, reason: str, now: datetime) -> None:
        self.refresh(now)
        for key in self._keys:
            if key.entry.project == project and key.state == "live":
                key.state = "parked"
                key.parked_until = until
                key.parked_reason = reason
                self._dirty.add(key.entry.fingerprint)
                self.urgent = True
                logger.warning(
                    "key parked until the quota resets",
                    extra={"key": key.entry.fingerprint, "project": project, "until": until.isoformat(), "why": reason},
                )

    def park_units(self, project: str, until: datetime, now: datetime) -> None:
        """The project's units are spent: its unit calls wait until ``until``; its searches go on."""
        self.refresh(now)
        for key in self._keys:
            if key.entry.project == project and key.units_parked_until is None:
                key.units_parked_until = until
                self._dirty.add(key.entry.fingerprint)
                self.urgent = True

    def disable(self, entry: KeyEntry, reason: str, now: datetime) -> None:
        key = self._key(entry, now)
        if key.state == "disabled":
            return
        key.state = "disabled"
        key.disabled_reason = reason
        key.parked_until = None
        self._dirty.add(entry.fingerprint)
        self.urgent = True
        # Loud, once: an operator has to fix the key (or its project) in the Cloud console.
        logger.error(
            "API key disabled: YouTube refuses it; fix it in the Google Cloud console",
            extra={"key": entry.fingerprint, "project": entry.project, "why": reason},
        )

    def refresh(self, now: datetime) -> None:
        """Start a new quota day where one began, and unpark keys whose parking ended."""
        today = pacific_day(now)
        for key in self._keys:
            if key.quota_day != today:
                key.quota_day = today
                key.search_calls = 0
                key.units = 0
                key.units_parked_until = None
                if key.state == "disabled":
                    key.state = "live"  # one more try on a new day
                    key.disabled_reason = None
                self._dirty.add(key.entry.fingerprint)
                self.urgent = True
            if key.state == "parked" and key.parked_until is not None and key.parked_until <= now:
                key.state, key.parked_until, key.parked_reason = "live", None, None
                self._dirty.add(key.entry.fingerprint)
                self.urgent = True
            if key.units_parked_until is not None and key.units_parked_until <= now:
                key.units_parked_until = None
                self._dirty.add(key.entry.fingerprint)

    def _key(self, entry: KeyEntry, now: datetime) -> _Key:
        self.refresh(now)
        return self._by_fingerprint[entry.fingerprint]

    # Persistence -----------------------------------------------------------------------------

    def take_dirty(self, now: datetime) -> list[KeyStateDoc]:
        """The documents of keys changed since the last call."""
        dirty, self._dirty = self._dirty, set()
        self.urgent = False
        return [self._doc(self._by_fingerprint[fp], now) for fp in sorted(dirty)]

    def all_docs(self, now: datetime) -> list[KeyStateDoc]:
        self.refresh(now)
        self._dirty.clear()
        self.urgent = False
        return [self._doc(key, now) for key in self._keys]

    def _doc(self, key: _Key, now: datetime) -> KeyStateDoc:
        return KeyStateDoc(
            fingerprint=key.entry.fingerprint,
            project=key.entry.project,
            state=key.state,
            parked_until=key.parked_until,
            parked_reason=key.parked_reason,
            disabled_reason=key.disabled_reason,
            units_parked_until=key.units_parked_until,
            quota_day=(key.quota_day or pacific_day(now)).isoformat(),
            search_calls_spent=key.search_calls,
            search_calls_per_day=self.search_calls_per_day,
            units_spent=key.units,
            updated_at=now,
        )

    def load(self, docs: list[KeyStateDoc], now: datetime) -> None:
        """Take over what a previous run persisted, so nothing is rediscovered by spending calls."""
        for doc in docs:
            key = self._by_fingerprint.get(doc.fingerprint)
            if key is None or doc.project != key.entry.project:
                continue  # a key no longer configured, or moved to another project
            key.quota_day = date.fromisoformat(doc.quota_day)
            key.search_calls = doc.search_calls_spent
            key.units = doc.units_spent
            key.state = doc.state
            key.parked_until = as_utc(doc.parked_until) if doc.parked_until else None
            key.parked_reason = doc.parked_reason
            key.disabled_reason = doc.disabled_reason
            key.units_parked_until = as_utc(doc.units_parked_until) if doc.units_parked_until else None
        self.refresh(now)
