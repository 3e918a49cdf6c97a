"""Daily quota per Cloud project, reset at midnight America/Los_Angeles of the emulator's clock.

Two models: ``search_bucket`` (since 2026-06: 100 search.list calls per project and
day, answered with a 429 when spent; every other method, here channels.list, playlistItems.list
and videos.list, spends 1 unit of a separate 10,000-unit pool, answered with a 403 quotaExceeded
when spent) and ``units`` (legacy: one 10,000-unit pool, search.list 100 units, the rest 1).
A spent pool refuses only the calls that spend it: a spent search bucket leaves unit calls working
and the other way round (youtube-channels.md §1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from services.youtube_emulator import errors
from services.youtube_emulator.ids import project_number
from services.youtube_emulator.timestamps import format_timestamp

PACIFIC = ZoneInfo("America/Los_Angeles")
SEARCH_UNITS = 100
VIDEOS_UNITS = 1  # videos.list, channels.list and playlistItems.list alike, whatever maxResults

Method = Literal["search", "videos", "channels", "playlistItems"]
METHODS: tuple[Method, ...] = ("search", "videos", "channels", "playlistItems")
Resource = Literal["search", "units"]


def pacific_day(epoch: float) -> date:
    return datetime.fromtimestamp(epoch, tz=PACIFIC).date()


def next_reset(epoch: float) -> float:
    """The next midnight in Los Angeles (DST-aware: 08:00 or 07:00 UTC)."""
    tomorrow = pacific_day(epoch) + timedelta(days=1)
    return datetime.combine(tomorrow, time(0), tzinfo=PACIFIC).timestamp()


class QuotaPolicy(BaseModel):
    model: Literal["search_bucket", "units"] = "search_bucket"
    search_calls_per_day: int = Field(default=100, ge=0)
    units_per_day: int = Field(default=10_000, ge=0)
    key_projects: dict[str, str] = Field(default_factory=dict)
    # In the model's own currency: search calls (search_bucket) or units (units).
    key_budgets: dict[str, int] = Field(default_factory=dict)
    project_budgets: dict[str, int] = Field(default_factory=dict)
    # Always in units, whichever the model: the pool channels, playlistItems and videos calls spend.
    key_unit_budgets: dict[str, int] = Field(default_factory=dict)
    project_unit_budgets: dict[str, int] = Field(default_factory=dict)


@dataclass
class Spend:
    search_calls: int = 0
    videos_calls: int = 0
    channels_calls: int = 0
    playlist_items_calls: int = 0
    units: int = 0
    rejected: int = 0

    def count(self, method: Method) -> None:
        if method == "search":
            self.search_calls += 1
        elif method == "videos":
            self.videos_calls += 1
        elif method == "channels":
            self.channels_calls += 1
        else:
            self.playlist_items_calls += 1

    def as_dict(self) -> dict[str, int]:
        return {
            "search_calls": self.search_calls,
            "videos_calls": self.videos_calls,
            "channels_calls": self.channels_calls,
            "playlist_items_calls": self.playlist_items_calls,
            "units": self.units,
            "rejected": self.rejected,
        }


@dataclass
class _Day:
    day: date
    keys: dict[str, Spend] = field(default_factory=dict)
    projects: dict[str, Spend] = field(default_factory=dict)


class QuotaLedger:
    def __init__(self, policy: QuotaPolicy) -> None:
        self.policy = policy
        self._day: _Day | None = None

    def project_of(self, key: str) -> str:
        return self.policy.key_projects.get(key, key)

    def reset(self) -> None:
        self._day = None

    def _today(self, now: float) -> _Day:
        day = pacific_day(now)
        if self._day is None or self._day.day != day:
            # Counters belong to one Pacific day; any move into another day starts afresh.
            self._day = _Day(day)
        return self._day

    def _metered(self, method: Method) -> tuple[Resource, int]:
        """Which resource a call spends and how much of it."""
        if self.policy.model == "units":
            return "units", SEARCH_UNITS if method == "search" else VIDEOS_UNITS
        return ("search", 1) if method == "search" else ("units", VIDEOS_UNITS)

    def _primary(self) -> Resource:
        return "search" if self.policy.model == "search_bucket" else "units"

    def project_limit(self, project: str, resource: Resource) -> int:
        if resource == "units" and project in self.policy.project_unit_budgets:
            return self.policy.project_unit_budgets[project]
        if resource == self._primary() and project in self.policy.project_budgets:
            return self.policy.project_budgets[project]
        return self.policy.search_calls_per_day if resource == "search" else self.policy.units_per_day

    def key_limit(self, key: str, resource: Resource) -> int | None:
        if resource == "units" and key in self.policy.key_unit_budgets:
            return self.policy.key_unit_budgets[key]
        if resource == self._primary():
            return self.policy.key_budgets.get(key)
        return None

    def cost(self, method: Method) -> int:
        """What one call of ``method`` spends in its own currency (search calls or units)."""
        return self._metered(method)[1]

    def units_of(self, method: Method) -> int:
        """The units one call of ``method`` takes from the unit pool (0: it spends the search bucket)."""
        resource, cost = self._metered(method)
        return cost if resource == "units" else 0

    def charge(self, key: str, method: Method, now: float) -> errors.ApiError | None:
        """Spend for one call; return the quota error if the key's project (or key) is out."""
        today = self._today(now)
        project = self.project_of(key)
        key_spend = today.keys.setdefault(key, Spend())
        project_spend = today.projects.setdefault(project, Spend())
        resource, cost = self._metered(method)

        def used(spend: Spend) -> int:
            return spend.search_calls if resource == "search" else spend.units

        key_limit = self.key_limit(key, resource)
        over_key = key_limit is not None and used(key_spend) + cost > key_limit
        if over_key or used(project_spend) + cost > self.project_limit(project, resource):
            key_spend.rejected += 1
            project_spend.rejected += 1
            if resource == "search":
                return errors.search_quota_exceeded(project_number(project))
            return errors.quota_exceeded()
        for spend in (key_spend, project_spend):
            spend.count(method)
            if resource == "units":
                spend.units += cost
        return None

    def snapshot(self, now: float) -> dict[str, object]:
        today = self._today(now)
        primary = self._primary()

        def used(spend: Spend) -> int:
            return spend.search_calls if primary == "search" else spend.units

        keys: dict[str, object] = {}
        for key, spend in sorted(today.keys.items()):
            limit = self.key_limit(key, primary)
            keys[key] = {
                "project": self.project_of(key),
                **spend.as_dict(),
                "budget": limit,
                "units_budget": self.key_limit(key, "units"),
            }
        projects: dict[str, object] = {}
        for project, spend in sorted(today.projects.items()):
            limit = self.project_limit(project, primary)
            units_limit = self.project_limit(project, "units")
            projects[project] = {
                **spend.as_dict(),
                "budget": limit,
                "remaining": max(0, limit - used(spend)),
                "units_budget": units_limit,
                "units_remaining": max(0, units_limit - spend.units),
                "project_number": project_number(project),
            }
        return {
            "quota_model": self.policy.model,
            "budget_unit": "search_calls" if primary == "search" else "units",
            "day": today.day.isoformat(),
            "resets_at": format_timestamp(next_reset(now)),
            "keys": keys,
            "projects": projects,
        }
