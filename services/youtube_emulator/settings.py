"""The emulator's environment contract: shared host/port/logging plus ``EMULATOR_*`` knobs."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode

from services.common.settings import EmulatorSettings, LoggingSettings, SearchQuerySettings, split_list

QuotaModel = Literal["search_bucket", "units"]

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


def parse_mapping(value: object) -> dict[str, str]:
    """Parse ``a:x,b:y`` (or an already-built mapping) into a dict; the last colon splits."""
    if isinstance(value, dict):
        return {str(k).strip(): str(v).strip() for k, v in value.items()}
    result: dict[str, str] = {}
    for item in split_list(value, r"[,\s]+"):
        name, sep, mapped = item.rpartition(":")
        if not sep or not name or not mapped:
            raise ValueError(f"expected NAME:VALUE pairs, got {item!r}")
        result[name] = mapped
    return result


# The fetcher's query list (SEARCH_QUERIES) is the emulator's default set of streams, so a demo
# needs one variable.
class Settings(EmulatorSettings, SearchQuerySettings, LoggingSettings):
    emulator_queries: Annotated[list[str], NoDecode] = Field(default_factory=list)

    emulator_seed: int = 20261124
    emulator_videos_per_minute: float = Field(default=6.0, gt=0, le=600)
    # ``query:rate`` pairs, comma-separated (a query may hold spaces): that query's own upload rate.
    emulator_query_videos_per_minute: Annotated[dict[str, float], NoDecode] = Field(default_factory=dict)
    emulator_backfill_seconds: int = Field(default=3600, ge=0)
    emulator_channels: int = Field(default=20, ge=1, le=1000)
    # Channel k (0-based) uploads with weight 1/(k+1)**exponent: 1.04 puts ~60% with the top 20 of 300.
    emulator_channel_zipf_exponent: float = Field(default=1.04, ge=0.0, le=5.0)
    emulator_region_code: str = Field(default="US", pattern=r"^[A-Z]{2}$")

    # Quirks of the world (who is visible when) and of paging.
    emulator_late_fraction: Fraction = 0.05
    emulator_late_max_seconds: int = Field(default=600, ge=0)
    emulator_live_fraction: Fraction = 0.02
    emulator_scheduled_fraction: Fraction = 0.02
    emulator_scheduled_max_seconds: int = Field(default=21_600, ge=0)
    emulator_private_fraction: Fraction = 0.01
    emulator_deleted_fraction: Fraction = 0.005
    emulator_search_lag_seconds: int = Field(default=0, ge=0)
    emulator_duplicate_rate: Fraction = 0.02
    emulator_empty_last_page_rate: Fraction = 0.05
    emulator_result_cap: int = Field(default=500, ge=1)

    # Quota.
    emulator_quota_model: QuotaModel = "search_bucket"
    emulator_search_calls_per_day: int = Field(default=100, ge=0)
    emulator_units_per_day: int = Field(default=10_000, ge=0)
    emulator_key_projects: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    emulator_key_budgets: Annotated[dict[str, int], NoDecode] = Field(default_factory=dict)
    emulator_project_budgets: Annotated[dict[str, int], NoDecode] = Field(default_factory=dict)
    # Unit-pool (channels, playlistItems, videos) budgets per key or project, in either model.
    emulator_key_unit_budgets: Annotated[dict[str, int], NoDecode] = Field(default_factory=dict)
    emulator_project_unit_budgets: Annotated[dict[str, int], NoDecode] = Field(default_factory=dict)
    emulator_invalid_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # How many recent API calls GET /admin/calls keeps.
    emulator_call_log_size: int = Field(default=20_000, ge=1)

    # Faults (probabilities per API call, drawn from a seeded RNG).
    emulator_fault_rate_limit: Fraction = 0.0
    emulator_fault_5xx: Fraction = 0.0
    emulator_fault_slow: Fraction = 0.0
    emulator_fault_drop: Fraction = 0.0
    emulator_slow_seconds: float = Field(default=5.0, ge=0)

    # The emulated WebSub hub (websub_*.py): push delay, faults, verification delay, leases.
    emulator_websub_delay_min_seconds: float = Field(default=1.0, ge=0)
    emulator_websub_delay_max_seconds: float = Field(default=20.0, ge=0)
    emulator_websub_lost_fraction: Fraction = 0.05
    emulator_websub_duplicate_fraction: Fraction = 0.0
    emulator_websub_flood_fraction: Fraction = 0.0
    emulator_websub_flood_size: int = Field(default=10, ge=1, le=200)
    emulator_websub_subscribe_503_fraction: Fraction = 0.0
    emulator_websub_lose_all_channels: Annotated[list[str], NoDecode] = Field(default_factory=list)
    emulator_websub_verify_delay_seconds: float = Field(default=0.2, ge=0, le=60)
    emulator_websub_default_lease_seconds: int = Field(default=432_000, ge=1)
    emulator_websub_max_lease_seconds: int = Field(default=864_000, ge=1)

    # Hostile answers (probability per successful call): see hostile.py.
    emulator_hostile_truncated: Fraction = 0.0
    emulator_hostile_wrong_types: Fraction = 0.0
    emulator_hostile_missing_fields: Fraction = 0.0
    emulator_hostile_huge_page: Fraction = 0.0
    emulator_hostile_redirect: Fraction = 0.0
    emulator_hostile_absurd_dates: Fraction = 0.0

    @field_validator("emulator_queries", mode="before")
    @classmethod
    def _split_emulator_queries(cls, value: object) -> list[str]:
        return split_list(value, r",")

    @field_validator("emulator_invalid_keys", "emulator_websub_lose_all_channels", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> list[str]:
        return split_list(value, r"[,\s]+")

    @field_validator(
        "emulator_key_projects",
        "emulator_key_budgets",
        "emulator_project_budgets",
        "emulator_key_unit_budgets",
        "emulator_project_unit_budgets",
        mode="before",
    )
    @classmethod
    def _mapping(cls, value: object) -> dict[str, str]:
        return parse_mapping(value)

    @field_validator("emulator_query_videos_per_minute", mode="before")
    @classmethod
    def _query_rates(cls, value: object) -> dict[str, str]:
        if isinstance(value, dict):
            return {normalize_query(str(k)): str(v) for k, v in value.items()}
        rates: dict[str, str] = {}
        for item in split_list(value, r","):
            query, sep, rate = item.rpartition(":")
            if not sep or not normalize_query(query) or not rate.strip():
                raise ValueError(f"expected QUERY:VIDEOS_PER_MINUTE pairs, got {item!r}")
            rates[normalize_query(query)] = rate.strip()
        return rates

    @model_validator(mode="after")
    def _shares_fit(self) -> Settings:
        if self.emulator_private_fraction + self.emulator_deleted_fraction > 1:
            raise ValueError("EMULATOR_PRIVATE_FRACTION + EMULATOR_DELETED_FRACTION must not exceed 1")
        if self.emulator_websub_delay_max_seconds < self.emulator_websub_delay_min_seconds:
            raise ValueError("EMULATOR_WEBSUB_DELAY_MAX_SECONDS must not be below EMULATOR_WEBSUB_DELAY_MIN_SECONDS")
        if self.emulator_websub_default_lease_seconds > self.emulator_websub_max_lease_seconds:
            raise ValueError("EMULATOR_WEBSUB_DEFAULT_LEASE_SECONDS must not exceed EMULATOR_WEBSUB_MAX_LEASE_SECONDS")
        return self

    @field_validator("emulator_query_videos_per_minute")
    @classmethod
    def _rates_in_range(cls, value: dict[str, float]) -> dict[str, float]:
        if any(not 0 < rate <= 600 for rate in value.values()):
            raise ValueError("each query's videos per minute must be > 0 and <= 600")
        return value

    @field_validator(
        "emulator_key_budgets", "emulator_project_budgets", "emulator_key_unit_budgets", "emulator_project_unit_budgets"
    )
    @classmethod
    def _non_negative(cls, value: dict[str, int]) -> dict[str, int]:
        if any(budget < 0 for budget in value.values()):
            raise ValueError("budgets must be >= 0")
        return value

    @property
    def stream_queries(self) -> list[str]:
        """SEARCH_QUERIES then EMULATOR_QUERIES, without case-insensitive duplicates."""
        seen: set[str] = set()
        queries: list[str] = []
        for query in [*self.search_queries, *self.emulator_queries]:
            key = normalize_query(query)
            if key and key not in seen:
                seen.add(key)
                queries.append(" ".join(query.split()))
        return queries


def normalize_query(query: str) -> str:
    """How a ``q`` is compared with a stream's query: case- and whitespace-insensitively."""
    return " ".join(query.split()).casefold()
