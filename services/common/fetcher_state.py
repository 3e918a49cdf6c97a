"""The fetcher's shared state in MongoDB: written by the fetcher, read by the API's status pages.

The API never calls the fetcher; it reads these documents. Keys appear only as fingerprints. The
planner's inputs are among them (each query's measured rates and costs, the budget and the bounds),
and ``plan_from_state`` turns them into the plan the fetcher polls by, so the API shows that plan
without asking the fetcher.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.common.freshness import FreshnessDigest, HourCounts
from services.common.poll_plan import ItemInputs, PlanInputs, PollPlan, Scheduling, plan_polls
from services.common.poll_stats import PollStats

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
# The units pool (channels.list, playlistItems.list, videos.list) beside it: _id = UNITS_BUDGET_ID.
UNITS_BUDGET_ID = "units"
# One document per followed channel, _id = the channel id (UC…).
CHANNEL_STATE_COLLECTION = "fetcher_channels"
# Most video ids a channel's document remembers (the newest by publish time are kept).
MAX_KNOWN_VIDEOS = 2000


class _StateDoc(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class WindowDoc(_StateDoc):
    """A stretch of publish times [after, before] (both inclusive) not walked yet."""

    after: AwareDatetime
    before: AwareDatetime


class PollStatsDoc(_StateDoc):
    """The decayed sums behind a query's measured upload rate and cost (services/common/poll_stats.py)."""

    videos: float = 0.0
    video_seconds: float = 0.0
    extra_calls: float = 0.0
    call_seconds: float = 0.0
    polls: int = 0

    @classmethod
    def of(cls, stats: PollStats) -> PollStatsDoc:
        return cls(
            videos=stats.videos,
            video_seconds=stats.video_seconds,
            extra_calls=stats.extra_calls,
            call_seconds=stats.call_seconds,
            polls=stats.polls,
        )

    def stats(self) -> PollStats:
        return PollStats(self.videos, self.video_seconds, self.extra_calls, self.call_seconds, self.polls)


class FreshnessHourDoc(_StateDoc):
    """One clock hour of a query's delays: bin index (as text) -> videos (services/common/freshness.py)."""

    hour: AwareDatetime
    counts: dict[str, int] = Field(default_factory=dict)


def freshness_docs(digest: FreshnessDigest) -> list[FreshnessHourDoc]:
    return [FreshnessHourDoc(hour=h.hour, counts={str(k): v for k, v in h.counts.items()}) for h in digest.hours]


def freshness_digest(docs: Iterable[FreshnessHourDoc]) -> FreshnessDigest:
    return FreshnessDigest([HourCounts(as_utc(d.hour), {int(k): v for k, v in d.counts.items()}) for d in docs])


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
    # What its polls measured (upload rate, calls per second of interval) and its share's weight.
    poll_stats: PollStatsDoc = Field(default_factory=PollStatsDoc)
    weight: float = 1.0
    # Delays from publishedAt to the broker's confirm of the videos it published, per hour.
    freshness: list[FreshnessHourDoc] = Field(default_factory=list)
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
    # The planner's inputs besides each query's: its bounds, the page cap and how queries share the budget.
    poll_interval_seconds: float = 0.0
    max_query_interval_seconds: float = 0.0
    max_calls_per_poll: float = 0.0
    scheduling: Scheduling = "rate"
    # The work items the plan shares the budget among (the fetcher's SEARCH_QUERIES).
    planned_queries: list[str] = Field(default_factory=list)
    # The calls left cannot poll every query every max_query_interval_seconds: intervals stretched.
    budget_too_small: bool = False
    lease_token: int = 0


# The followed channels as the leader last chose them: a single document, _id = FOLLOWS_ID.
FOLLOWS_COLLECTION = "fetcher_follows"
FOLLOWS_ID = "follows"


class AutoFollowDoc(_StateDoc):
    """A channel auto-follow chose: its rank among the candidates and the videos search found in the window."""

    channel_id: str
    rank: int
    count: int
    since: AwareDatetime  # the evaluation it joined in


class FollowsDoc(_StateDoc):
    """FOLLOW_CHANNELS and the auto-followed channels (services/fetcher/follows.py), best rank first."""

    id: str = Field(default=FOLLOWS_ID, alias="_id")
    explicit: list[str] = Field(default_factory=list)
    auto: list[AutoFollowDoc] = Field(default_factory=list)
    # AUTO_FOLLOW_CHANNELS and AUTO_FOLLOW_WINDOW_DAYS (as seconds) the set was chosen with.
    top_n: int = 0
    window_seconds: float = 0.0
    evaluated_at: AwareDatetime | None = None
    lease_token: int = 0


ChannelStatus = Literal["ok", "not_found"]


class KnownVideoDoc(_StateDoc):
    """A video of the channel already published (or too old to publish), by id: newness is judged by id."""

    video_id: str
    published_at: AwareDatetime


class ChannelStateDoc(_StateDoc):
    """A followed channel as the fetcher reads it: its uploads playlist, what it knows and its plan."""

    channel_id: str = Field(alias="_id")
    # ok: read by its uploads playlist; not_found: channels.list does not know the id (not read again
    # until the configuration, config_digest, changes).
    status: ChannelStatus = "ok"
    config_digest: str | None = None
    # items[0].contentDetails.relatedPlaylists.uploads, asked once from channels.list.
    uploads_playlist_id: str | None = None
    # Where its first read started (now - INITIAL_LOOKBACK_SECONDS): nothing published earlier goes out.
    origin: AwareDatetime | None = None
    # Ids already published (or met below the origin), newest first, at most MAX_KNOWN_VIDEOS.
    known_videos: list[KnownVideoDoc] = Field(default_factory=list)
    last_read_at: AwareDatetime | None = None
    # The last read of every page of its uploads playlist (daily: a late-published video sits low).
    last_deep_read_at: AwareDatetime | None = None
    # A read found videos not all confirmed yet, or was cut short (a crash, an error, the page cap):
    # what lies below the known ids may not be, so the next read is a deep one.
    unsettled: bool = False
    videos_published: int = 0
    # Units its last read spent (playlistItems.list pages).
    units_last_read: int = 0
    # What its reads measured (upload rate, units per second of interval) and its planned interval.
    poll_stats: PollStatsDoc = Field(default_factory=PollStatsDoc)
    interval_seconds: float | None = None
    # Delays from videoPublishedAt to the broker's confirm of the videos it published, per hour.
    freshness: list[FreshnessHourDoc] = Field(default_factory=list)
    updated_at: AwareDatetime | None = None
    lease_token: int = 0


class ProjectUnitsDoc(_StateDoc):
    """One Cloud project's units pool today."""

    project: str
    units_spent: int = 0
    units_left: int = 0
    # A 403 quotaExceeded on a unit call: its unit calls wait until then (its searches go on).
    parked_until: AwareDatetime | None = None


class UnitsBudgetDoc(_StateDoc):
    """The units pool as the leader last planned channel reads by it (_id UNITS_BUDGET_ID in BUDGET_COLLECTION)."""

    id: str = Field(default=UNITS_BUDGET_ID, alias="_id")
    units_per_day: int
    reserve_for_enrichment: float
    # Units the usable projects may still spend on channel reads today (the reserve kept aside).
    read_units_left_today: int
    units_left_today: int
    units_spent_today: int
    reset_at: AwareDatetime
    projects: list[ProjectUnitsDoc] = Field(default_factory=list)
    min_channel_interval_seconds: float = 0.0
    max_channel_interval_seconds: float = 0.0
    # The followed channels the plan shares the units among.
    planned_channels: list[str] = Field(default_factory=list)
    # The units left cannot read every channel every max_channel_interval_seconds: intervals stretched.
    budget_too_small: bool = False
    # Every project's unit calls are parked: no channel read until resume_at.
    all_units_parked: bool = False
    resume_at: AwareDatetime | None = None
    leader: str | None = None
    updated_at: AwareDatetime
    lease_token: int = 0


def as_utc(moment: datetime) -> datetime:
    """MongoDB returns naive UTC datetimes unless the client is tz_aware; normalise either way."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def plan_inputs(budget: BudgetDoc, queries: Iterable[QueryStateDoc]) -> PlanInputs:
    """The planner's inputs as the fetcher saw them when it saved ``budget``."""
    items = [
        ItemInputs(
            name=q.query,
            upload_rate=q.poll_stats.stats().upload_rate,
            extra_calls_per_second=q.poll_stats.stats().extra_calls_per_second,
            weight=q.weight,
            max_calls_per_poll=budget.max_calls_per_poll or float("inf"),
        )
        for q in queries
    ]
    return PlanInputs(
        items=items,
        calls_left=budget.calls_left_today,
        seconds_to_reset=max(0.0, (as_utc(budget.reset_at) - as_utc(budget.updated_at)).total_seconds()),
        min_interval=budget.poll_interval_seconds,
        max_interval=budget.max_query_interval_seconds,
    )


def plan_from_state(budget: BudgetDoc, queries: Iterable[QueryStateDoc]) -> PollPlan | None:
    """The plan the fetcher polls by, rebuilt from its saved inputs (None if it saved none)."""
    if budget.poll_interval_seconds <= 0 or not budget.planned_queries:
        return None  # written by a fetcher that did not plan per query
    known = {q.query: q for q in queries}
    planned = [known.get(name) or QueryStateDoc(query=name) for name in budget.planned_queries]
    return plan_polls(plan_inputs(budget, planned), budget.scheduling)
