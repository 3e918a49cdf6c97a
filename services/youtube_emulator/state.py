"""Everything one emulator holds: clock, world, quota ledger, call log, faults, the WebSub hub's
books and the runtime knobs."""

from __future__ import annotations

import random
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from services.youtube_emulator.calls import CallLog
from services.youtube_emulator.clock import Clock
from services.youtube_emulator.faults import FaultInjector, FaultPolicy
from services.youtube_emulator.hostile import HostileInjector, HostilePolicy
from services.youtube_emulator.quota import QuotaLedger, QuotaPolicy
from services.youtube_emulator.settings import QuotaModel, Settings, normalize_query
from services.youtube_emulator.websub_hub import Hub
from services.youtube_emulator.websub_policy import HubPolicy
from services.youtube_emulator.websub_watch import PublicationWatch
from services.youtube_emulator.world import World, WorldParams

_Fraction = Field(ge=0.0, le=1.0)


class Behaviour(BaseModel):
    """Knobs that change how calls are answered, not which videos exist (POST /admin/config)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    quota_model: QuotaModel
    search_calls_per_day: int = Field(ge=0)
    units_per_day: int = Field(ge=0)
    key_projects: dict[str, str]
    key_budgets: dict[str, int]
    project_budgets: dict[str, int]
    key_unit_budgets: dict[str, int]
    project_unit_budgets: dict[str, int]
    invalid_keys: list[str]
    fault_rate_limit: float = _Fraction
    fault_5xx: float = _Fraction
    fault_slow: float = _Fraction
    fault_drop: float = _Fraction
    slow_seconds: float = Field(ge=0.0)
    hostile_truncated: float = _Fraction
    hostile_wrong_types: float = _Fraction
    hostile_missing_fields: float = _Fraction
    hostile_huge_page: float = _Fraction
    hostile_redirect: float = _Fraction
    hostile_absurd_dates: float = _Fraction
    duplicate_rate: float = _Fraction
    empty_last_page_rate: float = _Fraction
    result_cap: int = Field(ge=1)
    region_code: str = Field(pattern=r"^[A-Z]{2}$")

    @classmethod
    def from_settings(cls, settings: Settings) -> Behaviour:
        return cls(
            quota_model=settings.emulator_quota_model,
            search_calls_per_day=settings.emulator_search_calls_per_day,
            units_per_day=settings.emulator_units_per_day,
            key_projects=dict(settings.emulator_key_projects),
            key_budgets=dict(settings.emulator_key_budgets),
            project_budgets=dict(settings.emulator_project_budgets),
            key_unit_budgets=dict(settings.emulator_key_unit_budgets),
            project_unit_budgets=dict(settings.emulator_project_unit_budgets),
            invalid_keys=list(settings.emulator_invalid_keys),
            fault_rate_limit=settings.emulator_fault_rate_limit,
            fault_5xx=settings.emulator_fault_5xx,
            fault_slow=settings.emulator_fault_slow,
            fault_drop=settings.emulator_fault_drop,
            slow_seconds=settings.emulator_slow_seconds,
            hostile_truncated=settings.emulator_hostile_truncated,
            hostile_wrong_types=settings.emulator_hostile_wrong_types,
            hostile_missing_fields=settings.emulator_hostile_missing_fields,
            hostile_huge_page=settings.emulator_hostile_huge_page,
            hostile_redirect=settings.emulator_hostile_redirect,
            hostile_absurd_dates=settings.emulator_hostile_absurd_dates,
            duplicate_rate=settings.emulator_duplicate_rate,
            empty_last_page_rate=settings.emulator_empty_last_page_rate,
            result_cap=settings.emulator_result_cap,
            region_code=settings.emulator_region_code,
        )

    def quota_policy(self) -> QuotaPolicy:
        return QuotaPolicy(
            model=self.quota_model,
            search_calls_per_day=self.search_calls_per_day,
            units_per_day=self.units_per_day,
            key_projects=self.key_projects,
            key_budgets=self.key_budgets,
            project_budgets=self.project_budgets,
            key_unit_budgets=self.key_unit_budgets,
            project_unit_budgets=self.project_unit_budgets,
        )

    def hostile_policy(self) -> HostilePolicy:
        return HostilePolicy(
            truncated=self.hostile_truncated,
            wrong_types=self.hostile_wrong_types,
            missing_fields=self.hostile_missing_fields,
            huge_page=self.hostile_huge_page,
            redirect=self.hostile_redirect,
            absurd_dates=self.hostile_absurd_dates,
        )

    def fault_policy(self) -> FaultPolicy:
        return FaultPolicy(
            rate_limit=self.fault_rate_limit,
            server_error=self.fault_5xx,
            slow=self.fault_slow,
            drop=self.fault_drop,
            slow_seconds=self.slow_seconds,
        )


class WorldOverrides(BaseModel):
    """What POST /admin/reset may change about the world; unset fields come from the settings."""

    model_config = ConfigDict(extra="forbid")

    seed: int | None = None
    queries: list[str] | None = Field(default=None, min_length=1)
    videos_per_minute: float | None = Field(default=None, gt=0, le=600)
    query_videos_per_minute: dict[str, float] | None = None
    backfill_seconds: int | None = Field(default=None, ge=0)
    channels: int | None = Field(default=None, ge=1, le=1000)
    late_fraction: float | None = Field(default=None, ge=0.0, le=1.0)
    late_max_seconds: int | None = Field(default=None, ge=0)
    live_fraction: float | None = Field(default=None, ge=0.0, le=1.0)
    channel_zipf_exponent: float | None = Field(default=None, ge=0.0, le=5.0)
    scheduled_fraction: float | None = Field(default=None, ge=0.0, le=1.0)
    scheduled_max_seconds: int | None = Field(default=None, ge=0)
    private_fraction: float | None = Field(default=None, ge=0.0, le=1.0)
    deleted_fraction: float | None = Field(default=None, ge=0.0, le=1.0)
    search_lag_seconds: int | None = Field(default=None, ge=0)


def world_params(settings: Settings, overrides: WorldOverrides | None = None) -> WorldParams:
    o = overrides or WorldOverrides()

    def pick(value: Any, default: Any) -> Any:
        return default if value is None else value

    return WorldParams(
        seed=pick(o.seed, settings.emulator_seed),
        queries=tuple(pick(o.queries, settings.stream_queries)),
        videos_per_minute=pick(o.videos_per_minute, settings.emulator_videos_per_minute),
        backfill_seconds=pick(o.backfill_seconds, settings.emulator_backfill_seconds),
        channels=pick(o.channels, settings.emulator_channels),
        late_fraction=pick(o.late_fraction, settings.emulator_late_fraction),
        late_max_seconds=pick(o.late_max_seconds, settings.emulator_late_max_seconds),
        live_fraction=pick(o.live_fraction, settings.emulator_live_fraction),
        channel_zipf_exponent=pick(o.channel_zipf_exponent, settings.emulator_channel_zipf_exponent),
        scheduled_fraction=pick(o.scheduled_fraction, settings.emulator_scheduled_fraction),
        scheduled_max_seconds=pick(o.scheduled_max_seconds, settings.emulator_scheduled_max_seconds),
        private_fraction=pick(o.private_fraction, settings.emulator_private_fraction),
        deleted_fraction=pick(o.deleted_fraction, settings.emulator_deleted_fraction),
        search_lag_seconds=pick(o.search_lag_seconds, settings.emulator_search_lag_seconds),
        query_rates=tuple(
            sorted(
                (normalize_query(q), float(r))
                for q, r in pick(o.query_videos_per_minute, settings.emulator_query_videos_per_minute).items()
            )
        ),
    )


class EmulatorState:
    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or Clock()
        self.behaviour = Behaviour.from_settings(settings)
        self.world = World(world_params(settings), self.clock.now())
        self.ledger = QuotaLedger(self.behaviour.quota_policy())
        self.faults = FaultInjector(self.behaviour.fault_policy(), self.world.params.seed)
        self.hostile = HostileInjector(self.behaviour.hostile_policy(), self.world.params.seed)
        self.quirks = random.Random(self.world.params.seed + 1)
        self.calls = CallLog(settings.emulator_call_log_size)
        self._high_water = self.clock.now()
        self.hub = Hub(HubPolicy.from_settings(settings), self.world.params.seed)
        self.watch = PublicationWatch(self.world, self.clock.now())

    def reset(self, *, now: float | None = None, frozen: bool = False, overrides: WorldOverrides | None = None) -> None:
        """A fresh world: clock, videos, injected videos, spend, knobs and RNGs as at start-up."""
        if now is None:
            self.clock.reset()
            self.clock.freeze(frozen)
        else:
            self.clock.set(now, frozen=frozen)
        self.behaviour = Behaviour.from_settings(self.settings)
        self.world = World(world_params(self.settings, overrides), self.clock.now())
        self.ledger = QuotaLedger(self.behaviour.quota_policy())
        self.faults = FaultInjector(self.behaviour.fault_policy(), self.world.params.seed)
        self.hostile = HostileInjector(self.behaviour.hostile_policy(), self.world.params.seed)
        self.quirks = random.Random(self.world.params.seed + 1)
        self.calls = CallLog(self.settings.emulator_call_log_size)
        self._high_water = self.clock.now()
        # Subscriptions belong to the world they watch: a reset forgets them, as a new hub would.
        self.hub = Hub(HubPolicy.from_settings(self.settings), self.world.params.seed)
        self.watch = PublicationWatch(self.world, self.clock.now())

    def configure(self, patch: dict[str, Any]) -> Behaviour:
        """Apply a partial update (maps and lists are replaced whole); raises ValidationError."""
        self.behaviour = Behaviour.model_validate({**self.behaviour.model_dump(), **patch})
        self.ledger.policy = self.behaviour.quota_policy()
        self.faults.policy = self.behaviour.fault_policy()
        self.hostile.policy = self.behaviour.hostile_policy()
        return self.behaviour

    def now(self) -> float:
        now = self.clock.now()
        self._high_water = max(self._high_water, now)
        return now

    def high_water(self) -> float:
        """The latest instant the clock has shown: what has been visible "so far"."""
        return max(self._high_water, self.now())


STATE: web.AppKey[EmulatorState] = web.AppKey("youtube_emulator_state", EmulatorState)
