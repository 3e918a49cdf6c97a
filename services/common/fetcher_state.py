"""The fetcher's shared state in MongoDB: written by the fetcher, read by the API's status pages.

The API never calls the fetcher; it reads these documents. Keys appear only as fingerprints.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

# One document per configured search query, _id = the query text.
QUERY_STATE_COLLECTION = "fetcher_queries"
# One document per API key, _id = the key's fingerprint (never the key).
KEY_STATE_COLLECTION = "fetcher_keys"
# The leader lease: a single document, _id = LEASE_ID.
LEASE_COLLECTION = "fetcher_lease"
LEASE_ID = "fetcher"
# The quota budget as the leader last computed it: a single document, _id = BUDGET_ID.
BUDGET_COLLECTION = "fetcher_budget"
BUDGET_ID = "budget"


class _StateDoc(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class WindowDoc(_StateDoc):
    """A stretch of publish times [after, before] (both inclusive) not walked yet."""

    after: AwareDatetime
    before: AwareDatetime


class QueryStateDoc(_StateDoc):
    query: str = Field(alias="_id")
    # Newest publishedAt whose messages the broker confirmed; head polls start here.
    watermark: AwareDatetime | None = None
    last_poll_at: AwareDatetime | None = None
    last_sweep_at: AwareDatetime | None = None
    videos_published: int = 0
    # Where the first poll of this query started (now - INITIAL_LOOKBACK_SECONDS); nothing older is read.
    origin: AwareDatetime | None = None
    # The watermark when the last late sweep started; the next sweep reaches OVERLAP_SECONDS below it.
    sweep_floor: AwareDatetime | None = None
    # Windows a walk could not finish (page cap, errors, quota): walked in later cycles, oldest last.
    gaps: list[WindowDoc] = Field(default_factory=list)
    search_calls_last_cycle: int = 0
    updated_at: AwareDatetime | None = None
    # Fencing token of the leader that wrote this document: a stale leader's write is refused.
    lease_token: int = 0


KeyState = Literal["live", "parked", "disabled"]


class KeyStateDoc(_StateDoc):
    fingerprint: str = Field(alias="_id")
    project: str
    state: KeyState = "live"
    parked_until: AwareDatetime | None = None
    parked_reason: str | None = None
    disabled_reason: str | None = None
    # The project's videos.list units are spent (enrichment pauses; search goes on).
    units_parked_until: AwareDatetime | None = None
    # Pacific-time day (YYYY-MM-DD) the spend below belongs to.
    quota_day: str
    search_calls_spent: int = 0
    # The project's daily search budget (YOUTUBE_SEARCH_CALLS_PER_DAY), shared by its keys.
    search_calls_per_day: int = 0
    # videos.list units (1 per call).
    units_spent: int = 0
    updated_at: AwareDatetime
    lease_token: int = 0


class LeaseDoc(_StateDoc):
    id: str = Field(default=LEASE_ID, alias="_id")
    holder: str  # e.g. "hostname:pid:random"
    token: int  # fencing token, increases on every change of holder
    expires_at: AwareDatetime
    renewed_at: AwareDatetime


class BudgetDoc(_StateDoc):
    id: str = Field(default=BUDGET_ID, alias="_id")
    calls_left_today: int
    effective_interval_seconds: float
    reset_at: AwareDatetime
    keys_live: int
    keys_parked: int
    keys_disabled: int
    updated_at: AwareDatetime
    calls_spent_today: int = 0
    search_calls_per_day: int = 0
    projects: int = 0
    # Estimated search calls per cycle (head polls plus amortised late sweeps, for all queries).
    calls_per_cycle: float = 0.0
    # Every key is parked or disabled: no call until resume_at.
    all_keys_parked: bool = False
    resume_at: AwareDatetime | None = None
    leader: str | None = None
    lease_token: int = 0


def as_utc(moment: datetime) -> datetime:
    """MongoDB returns naive UTC datetimes unless the client is tz_aware; normalise either way."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
