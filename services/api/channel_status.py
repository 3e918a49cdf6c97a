"""/api/v1/status's followed channels, auto-follow and units pool: their models and how they are read.

Read from the fetcher's documents in MongoDB (services/common/fetcher_state.py), never from the
fetcher: ``fetcher_follows`` says which channels are followed and why (FOLLOW_CHANNELS, or
auto-follow's rank and count), each channel's ``fetcher_channels`` document how it is read (status,
planned interval, last read), its ``fetcher_websub`` document its WebSub push
(services/common/websub_state.py, never its secret), and the ``units`` document of
``fetcher_budget`` the units pool of each Cloud project. A channel the fetcher has not read yet
shows null there, and one with no subscription (push off, or not subscribed yet) a null ``push``;
nothing saved yet (a fresh install, a fetcher that follows no channel, MongoDB down) shows an empty
list and nulls.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from services.common.fetcher_state import (
    BUDGET_COLLECTION,
    CHANNEL_STATE_COLLECTION,
    FOLLOWS_COLLECTION,
    FOLLOWS_ID,
    UNITS_BUDGET_ID,
    ChannelStateDoc,
    FollowsDoc,
    UnitsBudgetDoc,
    as_utc,
)
from services.common.timefmt import format_rfc3339
from services.common.websub_state import PUBLIC_PROJECTION, WEBSUB_COLLECTION, Subscription

logger = logging.getLogger(__name__)

_SECONDS_PER_DAY = 86_400
DocT = TypeVar("DocT", bound=BaseModel)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PushStatus(_Model):
    state: Literal["subscribed", "pending", "failing"] = Field(
        description="subscribed: the lease runs (a renewal may be pending); pending: awaiting the hub's "
        "verification; failing: the last request was refused or never verified (retried after a backoff)."
    )
    lease_expires_at: datetime | None = Field(description="When the lease runs out unless renewed.")
    last_push_at: datetime | None = Field(description="The last push accepted (by any fetcher process).")
    pushes_accepted: int
    pushes_ignored: dict[str, int] = Field(
        description="Pushes ignored, by reason: bad_signature, content_type, oversized, malformed_xml, "
        "forbidden_xml, wrong_channel, empty."
    )
    failures: int = Field(description="Requests refused, failed or never verified since the last success.")
    next_attempt_at: datetime | None = Field(description="failing: when the request is tried again.")
    last_error: str | None = Field(description="failing: what the hub answered (or why it could not be asked).")


class FollowedChannel(_Model):
    channel_id: str = Field(examples=["UCiWLfSweyRNmLpgEHekhoAg"])
    reason: Literal["explicit", "auto"] = Field(
        description="explicit: named in FOLLOW_CHANNELS; auto: chosen by auto-follow (rank and count)."
    )
    rank: int | None = Field(description="auto: the channel's rank by videos search found in the window; else null.")
    count: int | None = Field(description="auto: videos of the channel search found in the window; else null.")
    auto_since: datetime | None = Field(description="auto: when auto-follow chose it (it stayed since); else null.")
    status: Literal["ok", "not_found"] | None = Field(
        description="ok: read by its uploads playlist; not_found: channels.list does not know it (not read again "
        "until the configuration changes); null: not read yet."
    )
    interval_seconds: float | None = Field(description="Seconds between two reads of its uploads, as planned.")
    last_read_at: datetime | None
    last_deep_read_at: datetime | None = Field(description="The last read of every page of its uploads (daily).")
    videos_published: int | None = Field(description="Videos the fetcher published from its uploads.")
    push: PushStatus | None = Field(
        description="Its WebSub subscription (WEBSUB_CALLBACK_URL set); null when push is off or not asked yet."
    )


class AutoFollowStatus(_Model):
    channels: int = Field(description="AUTO_FOLLOW_CHANNELS the set was chosen with (0: auto-follow off).")
    window_days: float = Field(description="AUTO_FOLLOW_WINDOW_DAYS: the window counted over.")
    evaluated_at: datetime | None = Field(description="When the set was last chosen (hourly).")


class ProjectUnits(_Model):
    project: str
    units_spent: int
    units_left: int
    parked_until: datetime | None = Field(
        description="A spent pool (403 quotaExceeded): the project's unit calls wait until then; its searches go on."
    )


class UnitsPool(_Model):
    units_per_day: int = Field(description="YOUTUBE_UNITS_PER_DAY of each Cloud project.")
    reserve_for_enrichment: float = Field(description="UNITS_RESERVE_FOR_ENRICHMENT: kept for videos.list.")
    units_left_today: int
    read_units_left_today: int = Field(description="Units channel reads may still spend today (the reserve aside).")
    units_spent_today: int
    resets_at: datetime
    projects: list[ProjectUnits]
    max_channel_interval_seconds: float
    budget_too_small: bool = Field(
        description="true while the units left cannot read every channel every max_channel_interval_seconds."
    )
    all_units_parked: bool
    resume_at: datetime | None
    updated_at: datetime


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else format_rfc3339(as_utc(moment))


def _parsed(model: type[DocT], doc: dict[str, Any] | None) -> DocT | None:
    if doc is None:
        return None
    try:
        return model.model_validate(doc)
    except ValidationError:
        logger.warning(
            "ignoring a malformed fetcher state document", extra={"model": model.__name__, "id": doc.get("_id")}
        )
        return None


def _subscription(doc: dict[str, Any]) -> Subscription | None:
    try:
        return Subscription.from_doc(doc)
    except (KeyError, TypeError, ValueError):
        logger.warning("ignoring a malformed websub subscription document", extra={"id": str(doc.get("_id"))})
        return None


def _push(sub: Subscription | None, now: datetime) -> dict[str, Any] | None:
    if sub is None:
        return None
    return {
        "state": sub.state(now),
        "lease_expires_at": _time(sub.lease_expires_at),
        "last_push_at": _time(sub.last_push_at),
        "pushes_accepted": sub.pushes_accepted,
        "pushes_ignored": sub.pushes_ignored,
        "failures": sub.failures,
        "next_attempt_at": _time(sub.next_attempt_at) if sub.failures else None,
        "last_error": sub.last_error,
    }


def _followed(
    follows: FollowsDoc, channels: dict[str, ChannelStateDoc], pushes: dict[str, Subscription], now: datetime
) -> list[dict[str, Any]]:
    entries: list[tuple[str, str, Any]] = [(c, "explicit", None) for c in follows.explicit]
    entries += [(a.channel_id, "auto", a) for a in follows.auto]
    followed = []
    for channel_id, reason, auto in entries:
        state = channels.get(channel_id)
        followed.append(
            {
                "channel_id": channel_id,
                "reason": reason,
                "rank": auto.rank if auto else None,
                "count": auto.count if auto else None,
                "auto_since": _time(auto.since) if auto else None,
                "status": state.status if state else None,
                "interval_seconds": state.interval_seconds if state else None,
                "last_read_at": _time(state.last_read_at) if state else None,
                "last_deep_read_at": _time(state.last_deep_read_at) if state else None,
                "videos_published": state.videos_published if state else None,
                "push": _push(pushes.get(channel_id), now),
            }
        )
    return followed


def _units(units: UnitsBudgetDoc) -> dict[str, Any]:
    return {
        "units_per_day": units.units_per_day,
        "reserve_for_enrichment": units.reserve_for_enrichment,
        "units_left_today": units.units_left_today,
        "read_units_left_today": units.read_units_left_today,
        "units_spent_today": units.units_spent_today,
        "resets_at": _time(units.reset_at),
        "projects": [
            {
                "project": p.project,
                "units_spent": p.units_spent,
                "units_left": p.units_left,
                "parked_until": _time(p.parked_until),
            }
            for p in sorted(units.projects, key=lambda p: p.project)
        ],
        "max_channel_interval_seconds": units.max_channel_interval_seconds,
        "budget_too_small": units.budget_too_small,
        "all_units_parked": units.all_units_parked,
        "resume_at": _time(units.resume_at),
        "updated_at": _time(units.updated_at),
    }


async def channel_status(db: AsyncDatabase[dict[str, Any]], now: datetime) -> dict[str, Any]:
    """The ``followed_channels``, ``auto_follow`` and ``units`` fields of the status's fetcher section."""
    try:
        follows = _parsed(FollowsDoc, await db[FOLLOWS_COLLECTION].find_one({"_id": FOLLOWS_ID}))
        units = _parsed(UnitsBudgetDoc, await db[BUDGET_COLLECTION].find_one({"_id": UNITS_BUDGET_ID}))
        ids = [*follows.explicit, *(a.channel_id for a in follows.auto)] if follows else []
        raw = await db[CHANNEL_STATE_COLLECTION].find({"_id": {"$in": ids}}, {"known_videos": 0}).to_list()
        raw_subs = await db[WEBSUB_COLLECTION].find({"channel_id": {"$in": ids}}, PUBLIC_PROJECTION).to_list()
    except PyMongoError as exc:
        logger.warning("status: mongodb unavailable", extra={"error": f"{type(exc).__name__}: {exc}"})
        follows, units, raw, raw_subs = None, None, [], []
    channels = {s.channel_id: s for s in (_parsed(ChannelStateDoc, d) for d in raw) if s is not None}
    pushes = {s.channel_id: s for s in (_subscription(d) for d in raw_subs) if s is not None}
    return {
        "followed_channels": _followed(follows, channels, pushes, now) if follows else [],
        "auto_follow": (
            {
                "channels": follows.top_n,
                "window_days": round(follows.window_seconds / _SECONDS_PER_DAY, 3),
                "evaluated_at": _time(follows.evaluated_at),
            }
            if follows
            else None
        ),
        "units": _units(units) if units else None,
    }
